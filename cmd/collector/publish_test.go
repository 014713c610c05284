package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/fleet"
	"github.com/restrack/restrack/internal/ctest"
	"github.com/restrack/restrack/internal/pgtest"
)

func TestMain(m *testing.M) {
	// The test binary is the collector when asked, so a test can run it as
	// a daemon and stop it with a signal.
	if os.Getenv("RESTRACK_COLLECTOR_MAIN") == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func TestCollectorPublishesWhileItDrainsAndStatusShowsIt(t *testing.T) {
	pg := pgtest.Start(t)
	shim := filepath.Join(ctest.RepoRoot(t), "build", "librestrack.so")
	if _, err := os.Stat(shim); err != nil {
		t.Skipf("needs the shim: make build/librestrack.so (%v)", err)
	}
	dir := t.TempDir()
	ringPath, storeDir := filepath.Join(dir, "r.ring"), filepath.Join(dir, "store")
	daemon := exec.Command(os.Args[0], "-ring", ringPath, "-rendezvous", "none", "-store", storeDir, "-socket", "none", "-drain-interval", "50ms",
		"-publish", pg.DSN(), "-host-id", "beta", "-publish-interval", "200ms")
	daemon.Env = append(os.Environ(), "RESTRACK_COLLECTOR_MAIN=1")
	daemon.Stderr = os.Stderr
	require.NoError(t, daemon.Start())
	defer func() { _ = daemon.Process.Kill() }()
	require.Eventually(t, func() bool { _, err := os.Stat(ringPath); return err == nil }, 10*time.Second, 20*time.Millisecond)

	target := filepath.Join(dir, "written")
	w := exec.Command("sh", "-c", "echo x > "+target)
	w.Env = append(os.Environ(), "LD_PRELOAD="+shim, "RESTRACK_RING="+ringPath, "RESTRACK_MODE=ring")
	require.NoError(t, w.Run())

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN())
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.Eventually(t, func() bool {
		var n int64
		err := conn.QueryRow(ctx, `SELECT count(*) FROM restrack.accesses a JOIN restrack.files f USING (host_id, file_id)
			WHERE a.host_id = 'beta' AND f.path = $1 AND a.write`, []byte(target)).Scan(&n)
		return err == nil && n == 1
	}, 20*time.Second, 100*time.Millisecond, "the daemon published the write of %s", target)

	require.NoError(t, daemon.Process.Signal(syscall.SIGTERM))
	require.NoError(t, daemon.Wait())
	st, ok, err := fleet.ReadStatus(storeDir)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "beta", st.HostID)
	assert.False(t, st.LastSuccess.IsZero())
}
