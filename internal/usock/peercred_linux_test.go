package usock

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/internal/ctest"
)

// The socket's file mode keeps other users out; the peer-credential check
// is the second wall. Opening the mode up shows the check alone refuses a
// process of another uid.
func TestSocketRefusesAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	// Not t.TempDir: its parent is private to this user.
	dir, err := os.MkdirTemp("", "restrack-usock-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	// The test binary, copied where the other user can run it.
	bin := ctest.CopySelf(t, dir)

	sock := filepath.Join(dir, "c.sock")
	srv, err := Listen(sock)
	require.NoError(t, err)
	srv.Handle("status", func(context.Context, json.RawMessage) (any, error) { return "secret", nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.Serve(ctx) }()
	require.NoError(t, os.Chmod(sock, 0o777))

	cmd := exec.Command(bin, "-test.run=^$", sock)
	cmd.Env = append(os.Environ(), "RESTRACK_TEST_HELPER=query")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	got, err := cmd.CombinedOutput()
	require.NoError(t, err, string(got))
	assert.Contains(t, string(got), "permission denied: this collector serves only uid 0")
	assert.False(t, strings.Contains(string(got), "secret"))

	require.NoError(t, Query(context.Background(), sock, "status", nil, nil), "its own user is served")
}
