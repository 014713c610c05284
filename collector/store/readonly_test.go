package store

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/internal/ctest"

	"github.com/restrack/restrack/ring"
)

// The test binary doubles as a reader run as another user
// (TestAStoreInADirectoryTheReaderCannotWriteIsReadable).
func TestMain(m *testing.M) {
	if os.Getenv("RESTRACK_TEST_HELPER") == "read-store" {
		os.Exit(helperReadStore(os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

func helperReadStore(dir string) int {
	s, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer s.Close()
	ctx := context.Background()
	st, err := s.Stats(ctx)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	tr, err := s.Trace(ctx)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	n := 0
	if err := s.Events(ctx, EventFilter{}, func(*Event) error { n++; return nil }); err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Printf("records=%d processes=%d accesses=%d events=%d\n", st.Records, len(tr.Processes), len(tr.Accesses), n)
	return 0
}

// A store shipped to someone else (another user, a read-only mount) must
// stay readable: SQLite wants to create restrack.db-shm beside a WAL
// database even to read it, which failed with "attempt to write a readonly
// database" in a 555 directory.
func TestAStoreInADirectoryTheReaderCannotWriteIsReadable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read the store as another user")
	}
	// Not t.TempDir: its parent is private to this user.
	top, err := os.MkdirTemp("", "restrack-ro-store-")
	require.NoError(t, err)
	t.Cleanup(func() { os.Chmod(filepath.Join(top, "store"), 0o755); os.RemoveAll(top) })
	require.NoError(t, os.Chmod(top, 0o755))
	dir := filepath.Join(top, "store")
	s, err := Open(dir, Options{})
	require.NoError(t, err)
	mustCommit(t, s, 2, proc(10, 1, 100, "/bin/app", "app"), ev(10, 100, 200, ring.OpOpen, ring.AccessRead, 3, "/etc/hostname"))
	require.NoError(t, s.Close())
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		require.NoError(t, os.Chmod(filepath.Join(dir, e.Name()), 0o644))
	}
	require.NoError(t, os.Chmod(dir, 0o555))

	bin := ctest.CopySelf(t, top)

	cmd := exec.Command(bin, "-test.run=^$", dir)
	cmd.Env = append(os.Environ(), "RESTRACK_TEST_HELPER=read-store")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	got, err := cmd.CombinedOutput()
	require.NoError(t, err, "reading as nobody: %s", got)
	assert.Equal(t, "records=2 processes=1 accesses=1 events=1\n", string(got))
	_, err = os.Stat(filepath.Join(dir, DBName+"-shm"))
	assert.True(t, os.IsNotExist(err), "the reader left nothing behind")
}
