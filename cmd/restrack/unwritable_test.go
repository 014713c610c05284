package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustCopy(tb testing.TB, from, to string, mode os.FileMode) {
	tb.Helper()
	in, err := os.Open(from)
	require.NoError(tb, err)
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, mode)
	require.NoError(tb, err)
	_, err = io.Copy(out, in)
	require.NoError(tb, err)
	require.NoError(tb, out.Close())
}

// A store directory the user cannot write is a clear error before CMD
// runs. Root writes anywhere, so as root the test runs restrack as nobody.
func TestRunIntoAnUnwritableStoreDirectory(t *testing.T) {
	// Not t.TempDir: its parent is private to this user.
	dir, err := os.MkdirTemp("", "restrack-unwritable-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin, shim := filepath.Join(dir, "restrack.test"), filepath.Join(dir, "librestrack.so")
	mustCopy(t, os.Args[0], bin, 0o755)
	mustCopy(t, mustShim(t), shim, 0o755)
	ro := filepath.Join(dir, "ro")
	require.NoError(t, os.Mkdir(ro, 0o555))

	cmd := exec.Command(bin, "run", "--shim", shim, "--store", filepath.Join(ro, "store"), "--", "true")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "RESTRACK_TEST_MAIN=1")
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, stderr.String())
	assert.Equal(t, exitRunFailed, ee.ExitCode())
	assert.Contains(t, stderr.String(), "permission denied")
	assert.Contains(t, stderr.String(), filepath.Join(ro, "store"))
}
