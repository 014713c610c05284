package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/collector"
	"github.com/restrack/restrack/internal/ctest"
	"github.com/restrack/restrack/internal/usock"
)

// Issue 11: with /dev/shm full, a traced cat died of SIGBUS (its ring had
// holes that the tmpfs could no longer back). Here the collector's rings
// live on a 256 KiB tmpfs of its own mount namespace, filled up after the
// ring is made and before the traced programs run: they must behave exactly
// as untraced, and a uid whose ring cannot be made is counted, not harmed.
func TestAFullShmNeverHarmsATracedProgram(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a private mount namespace with a small tmpfs")
	}
	for _, tool := range []string{"unshare", "nsenter", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (util-linux)", tool)
		}
	}
	shim := filepath.Join(ctest.RepoRoot(t), "build", "librestrack.so")
	if _, err := os.Stat(shim); err != nil {
		t.Skipf("needs the shim: make build/librestrack.so (%v)", err)
	}
	dir := t.TempDir()
	// nobody must reach the rendezvous socket inside (t.TempDir's parent is 0700).
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	require.NoError(t, os.Chmod(dir, 0o755))
	shm, sock, qsock := filepath.Join(dir, "shm"), filepath.Join(dir, "rdv.sock"), filepath.Join(dir, "q.sock")
	require.NoError(t, os.Mkdir(shm, 0o755))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	daemon := exec.CommandContext(ctx, "unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs -o size=256k tmpfs "$0" && exec "$@"`, shm,
		os.Args[0], "-rendezvous", sock, "-ring-dir", filepath.Join(shm, "rings"), "-ring-size", "65536",
		"-store", filepath.Join(dir, "store"), "-socket", qsock, "-drain-interval", "10ms")
	daemon.Env = append(os.Environ(), "RESTRACK_COLLECTOR_MAIN=1")
	var stderr strings.Builder
	daemon.Stderr = &stderr
	require.NoError(t, daemon.Start())
	defer func() { _ = daemon.Process.Kill(); _ = daemon.Wait() }()
	require.Eventually(t, func() bool {
		_, e1 := os.Stat(sock)
		_, e2 := os.Stat(qsock)
		return e1 == nil && e2 == nil
	}, 20*time.Second, 20*time.Millisecond, "the collector did not start: %s", &stderr)

	traced := func(args ...string) *exec.Cmd {
		c := exec.CommandContext(ctx, args[0], args[1:]...)
		c.Env = append(os.Environ(), "LD_PRELOAD="+shim, collector.EnvSocket+"="+sock, "RESTRACK_RING=")
		return c
	}
	stats := func() map[uint32]collector.UIDStats {
		var st []collector.UIDStats
		require.NoError(t, usock.Query(ctx, qsock, "rendezvous", nil, &st))
		m := map[uint32]collector.UIDStats{}
		for _, s := range st {
			m[s.UID] = s
		}
		return m
	}
	require.NoError(t, traced("true").Run())
	require.Equal(t, uint64(1), stats()[0].Registered, "root's ring is made: %s", &stderr)

	// Fill the tmpfs behind the collector's back, as another program would.
	fill := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(daemon.Process.Pid), "-m",
		"dd", "if=/dev/zero", "of="+filepath.Join(shm, "fill"), "bs=4096")
	out, _ := fill.CombinedOutput() // ends with ENOSPC, as intended
	require.Contains(t, string(out), "No space left", "the tmpfs is full")

	// Enough records to wrap the 64 KiB ring many times: every page of it
	// is written to while the tmpfs has no page left to give.
	want, err := os.ReadFile("/etc/hostname")
	require.NoError(t, err)
	loop := traced("sh", "-c", `for i in $(seq 200); do cat /etc/hostname; done`)
	got, err := loop.Output()
	require.NoError(t, err, "the traced loop exits 0 (a SIGBUS would be rc 135)")
	assert.Equal(t, strings.Repeat(string(want), 200), string(got))

	// A uid whose ring cannot be made now: it runs untraced, and it is said.
	nobody := traced("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "cat", "/etc/hostname")
	got, err = nobody.Output()
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "nobody's cat behaves as untraced")
	st := stats()
	if s, ok := st[65534]; assert.True(t, ok, "uid 65534 is accounted for: %+v", st) {
		assert.Equal(t, uint64(0), s.Registered)
		assert.Equal(t, uint64(1), s.Untraced, "the process that could not be traced is counted")
		assert.NotEmpty(t, s.Reason, "and why")
	}

	var status collector.Status
	require.NoError(t, usock.Query(ctx, qsock, "status", nil, &status))
	assert.Greater(t, status.Records, uint64(200), "root's records kept flowing through the full tmpfs")
	require.NoError(t, daemon.Process.Signal(syscall.SIGTERM))
	require.NoError(t, daemon.Wait(), "the collector exits 0 at SIGTERM: %s", &stderr)
}
