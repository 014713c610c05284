package serve

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/internal/usock"
	"github.com/restrack/restrack/planner"
	"github.com/restrack/restrack/ring"
)

// mustServe writes a small trace into a store that stays open for writing
// (as the daemon's does) and serves plan and explain on a socket: sh (100)
// starts a service (200) writing a log that a tail (300) reads.
func mustServe(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	st, err := store.Open(dir, store.Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() { st.Close() })
	proc := func(pid, ppid int32, start uint64, exe string) ring.Record {
		return ring.Record{Type: ring.TypeProc, Op: ring.OpProcStart, PID: pid, PPID: ppid, StartNs: start, TimeNs: start,
			Str1: []byte(exe), Str2: []byte("/"), Str3: []byte(exe)}
	}
	ev := func(pid int32, start uint64, access uint8, path string) ring.Record {
		return ring.Record{Type: ring.TypeEvent, Op: ring.OpOpenat, Access: access, PID: pid, TID: pid, StartNs: start,
			TimeNs: start + 1, Result: 3, Str1: []byte(path)}
	}
	recs := []ring.Record{
		proc(100, 1, 1000, "/bin/sh"), proc(200, 100, 2000, "/usr/local/bin/service"), proc(300, 100, 3000, "/usr/bin/tail"),
		ev(200, 2000, ring.AccessWrite, "/srv/service.log"), ev(300, 3000, ring.AccessRead, "/srv/service.log"),
	}
	require.NoError(tb, st.Commit(context.Background(), recs, store.Checkpoint{
		SourceInfo: store.SourceInfo{ID: 1, Kind: "ring", Path: "/dev/shm/test"}, Position: uint64(len(recs))}))

	// Unix socket paths are short: keep it out of the long test temp dir.
	sockDir, err := os.MkdirTemp("", "rtserve")
	require.NoError(tb, err)
	tb.Cleanup(func() { os.RemoveAll(sockDir) })
	srv, err := usock.Listen(filepath.Join(sockDir, "s"))
	require.NoError(tb, err)
	for name, h := range Handlers() {
		srv.Handle(name, h(st))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	return srv.Path()
}

func TestSocketCommands(t *testing.T) {
	sock := mustServe(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("plan answers with the plan restrack plan --json prints", func(t *testing.T) {
		var pl planner.Plan
		require.NoError(t, usock.Query(ctx, sock, "plan", PlanArgs{AP: "300"}, &pl))
		require.Len(t, pl.APs, 2)
		assert.Equal(t, int32(200), pl.APs[1].Root)
		require.Len(t, pl.MoveFiles, 1)
		assert.Equal(t, "/srv/service.log", pl.MoveFiles[0].Path)
	})
	t.Run("explain answers with the chain", func(t *testing.T) {
		var res ExplainResult
		require.NoError(t, usock.Query(ctx, sock, "explain", ExplainArgs{PlanArgs: PlanArgs{AP: "300"}, PID: "200"}, &res))
		assert.Equal(t, []string{
			"process 200 (service) moves: it is the root of AP 200.",
			"AP 200 moves because it writes /srv/service.log, which AP 300 (moving) reads.",
			"AP 300 is the AP you asked to move.",
		}, res.Lines)
	})
	t.Run("ps answers with the process tree restrack ps --json prints", func(t *testing.T) {
		var res PSResult
		require.NoError(t, usock.Query(ctx, sock, "ps", nil, &res))
		require.Len(t, res.Processes, 3)
		assert.Equal(t, int32(100), res.Processes[0].PID)
		assert.True(t, res.Processes[0].APRoot)
		assert.Equal(t, 1, res.Processes[1].Depth)
	})
	for _, tt := range []struct {
		name, cmd string
		args      any
		err       string
	}{
		{"an unknown pid is an error the client sees", "plan", PlanArgs{AP: "999"}, "no process with pid 999"},
		{"a plan without ap says what is missing", "plan", PlanArgs{}, `"ap" is required`},
		{"a request without args says what to send", "plan", nil, "missing args"},
		{"explain needs one of file and pid", "explain", ExplainArgs{PlanArgs: PlanArgs{AP: "300"}}, `exactly one of "file" and "pid"`},
		{"a bad ignore rule is an error", "plan", PlanArgs{AP: "300", Ignore: []string{"a/b"}}, "ignore rule"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := usock.Query(ctx, sock, tt.cmd, tt.args, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
}
