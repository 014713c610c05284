package fleet

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/internal/pgtest"
	"github.com/restrack/restrack/trace"
)

// synthTrace is a host's trace: n processes, each reading a shared file and
// writing its own.
func synthTrace(n int) *trace.Trace {
	tr := &trace.Trace{}
	for i := 0; i < n; i++ {
		k := trace.ProcKey{PID: int32(100 + i), StartNs: uint64(1000 + i)}
		tr.Processes = append(tr.Processes, trace.Process{Key: k, PPID: 1, Exe: "/bin/w", Argv: []string{"w", fmt.Sprint(i)}, LastNs: 5})
		tr.Accesses = append(tr.Accesses,
			trace.Access{Proc: k, Path: "/mnt/a/shared", Op: "openat", Count: 1},
			trace.Access{Proc: k, Path: fmt.Sprintf("/var/out/%d", i), Op: "openat", Write: true, Count: 2})
	}
	return tr
}

func noMounts() (Mounts, error) {
	return Mounts{{Root: "/", MountPoint: "/mnt/a", FSType: "fuse.sshfs", Source: "srv:/export"}}, nil
}

func newTestPublisher(t *testing.T, dsn, host, dir string) *Publisher {
	t.Helper()
	p, err := NewPublisher(Config{DSN: dsn, HostID: host, StoreDir: dir, BatchRows: 7, Mounts: noMounts, Timeout: 5e9})
	require.NoError(t, err)
	return p
}

type counts struct{ hosts, procs, files, accs, calls int64 }

func countRows(t *testing.T, dsn string) counts {
	t.Helper()
	var c counts
	pgtest.QueryRow(t, dsn, `SELECT (SELECT count(*) FROM restrack.hosts), (SELECT count(*) FROM restrack.processes),
		(SELECT count(*) FROM restrack.files), (SELECT count(*) FROM restrack.accesses), (SELECT coalesce(sum(count), 0) FROM restrack.accesses)`,
		nil, &c.hosts, &c.procs, &c.files, &c.accs, &c.calls)
	return c
}

func TestPublishIsIncrementalIdempotentAndSurvivesTheDatabaseGoingAway(t *testing.T) {
	pg := pgtest.Start(t)
	ctx := context.Background()
	dir := t.TempDir()
	tr := synthTrace(10)

	p := newTestPublisher(t, pg.DSN(), "alpha", dir)
	res, err := p.Publish(ctx, tr)
	require.NoError(t, err)
	assert.Equal(t, 11+10+20, res.Pushed, "11 files, 10 processes, 20 accesses")
	assert.Equal(t, counts{1, 10, 11, 20, 30}, countRows(t, pg.DSN()))

	t.Run("nothing changed: nothing is pushed", func(t *testing.T) {
		res, err := p.Publish(ctx, tr)
		require.NoError(t, err)
		assert.Equal(t, 0, res.Pushed)
	})
	t.Run("a changed aggregate is pushed alone and replaces, not adds", func(t *testing.T) {
		tr.Accesses[1].Count = 5
		res, err := p.Publish(ctx, tr)
		require.NoError(t, err)
		assert.Equal(t, 1, res.Pushed)
		assert.Equal(t, counts{1, 10, 11, 20, 33}, countRows(t, pg.DSN()))
	})
	t.Run("a new publisher on the same store resumes from the cursor", func(t *testing.T) {
		p2 := newTestPublisher(t, pg.DSN(), "alpha", dir)
		res, err := p2.Publish(ctx, tr)
		require.NoError(t, err)
		assert.Equal(t, 0, res.Pushed)
	})
	t.Run("database down: an error, the backlog waits, nothing is lost or doubled when it is back", func(t *testing.T) {
		more := synthTrace(30)
		pg.Stop()
		res, err := p.Publish(ctx, more)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "the local store keeps everything")
		assert.Equal(t, 20+20+40+1, res.Pending, "the 20 new processes, their 20 files, 40 accesses and the changed one wait")
		st, ok, err := ReadStatus(dir)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, 81, st.Pending)
		assert.NotEmpty(t, st.LastError)
		assert.False(t, st.PendingSince.IsZero(), "the lag is measured from the first unpublished pass")
		metrics := map[string]float64{}
		for _, m := range p.Metrics() {
			metrics[metricName(t, m)] = testutil.ToFloat64(m)
		}
		assert.Equal(t, 81.0, metrics["restrack_fleet_pending_rows"])
		assert.Greater(t, metrics["restrack_fleet_lag_seconds"], 0.0)
		assert.Equal(t, 1.0, metrics["restrack_fleet_errors_total"])

		pg.StartAgain()
		res, err = p.Publish(ctx, more)
		require.NoError(t, err)
		assert.Equal(t, 0, res.Pending)
		// Access 1's count went back from 5 to 2 in `more`: it is pushed too.
		assert.Equal(t, 81, res.Pushed)
		assert.Equal(t, counts{1, 30, 31, 60, 90}, countRows(t, pg.DSN()))
		st, _, err = ReadStatus(dir)
		require.NoError(t, err)
		assert.Zero(t, st.Pending)
		assert.Empty(t, st.LastError)
	})
	t.Run("a second store publishing under the same host id is refused", func(t *testing.T) {
		other := newTestPublisher(t, pg.DSN(), "alpha", t.TempDir())
		_, err := other.Publish(ctx, synthTrace(2))
		require.ErrorIs(t, err, ErrHostTaken)
		assert.Contains(t, err.Error(), "give it its own -host-id")
		assert.Equal(t, counts{1, 30, 31, 60, 90}, countRows(t, pg.DSN()), "the refused publisher wrote nothing")
	})
	t.Run("a recreated database gets everything again", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, pg.DSN())
		require.NoError(t, err)
		_, err = conn.Exec(ctx, "DROP SCHEMA restrack CASCADE")
		require.NoError(t, err)
		conn.Close(ctx)
		more := synthTrace(30)
		res, err := p.Publish(ctx, more)
		require.NoError(t, err)
		assert.Equal(t, 31+30+60, res.Pushed)
		assert.Equal(t, counts{1, 30, 31, 60, 90}, countRows(t, pg.DSN()))
	})
}

func TestPostgresStoppedMidPassLosesNothingAndDoublesNothing(t *testing.T) {
	pg := pgtest.Start(t)
	ctx := context.Background()
	dir := t.TempDir()
	tr := synthTrace(300) // 301 files, 300 processes, 600 accesses: 1201 rows, 13 batches of 100
	p, err := NewPublisher(Config{DSN: pg.DSN(), HostID: "alpha", StoreDir: dir, BatchRows: 100, Mounts: noMounts, Timeout: 5e9})
	require.NoError(t, err)
	batches := 0
	p.afterCommit = func() {
		if batches++; batches == 3 {
			pg.Stop() // the fourth batch finds the database gone
		}
	}
	res, err := p.Publish(ctx, tr)
	require.Error(t, err)
	assert.Equal(t, 300, res.Pushed, "three batches were committed before the cut")
	assert.Equal(t, 901, res.Pending)

	pg.StartAgain()
	// A new publisher: the collector restarted meanwhile. It goes on from
	// the cursor the cut one left.
	again := newTestPublisher(t, pg.DSN(), "alpha", dir)
	res, err = again.Publish(ctx, tr)
	require.NoError(t, err)
	assert.Equal(t, 901, res.Pushed, "only what the cut pass had not committed")
	assert.Equal(t, counts{1, 300, 301, 600, 900}, countRows(t, pg.DSN()))
}

func TestAStoppedPassIsNotAFailure(t *testing.T) {
	pg := pgtest.Start(t)
	dir := t.TempDir()
	p := newTestPublisher(t, pg.DSN(), "alpha", dir)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the collector is stopping
	res, err := p.Publish(ctx, synthTrace(3))
	require.Error(t, err)
	st, ok, err := ReadStatus(dir)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, res.Pending, st.Pending, "the rows wait")
	assert.Positive(t, st.Pending)
	assert.Empty(t, st.LastError, "restrack status must not say FAILING after a clean stop")
	assert.Zero(t, st.Errors)
}

func TestCursorDamageIsAnErrorNamingTheRemedy(t *testing.T) {
	dir := t.TempDir()
	c, err := loadCursor(dir)
	require.NoError(t, err)
	c.rows[1] = 2
	require.NoError(t, c.save(dir))
	back, err := loadCursor(dir)
	require.NoError(t, err)
	assert.Equal(t, c.Publisher, back.Publisher)
	assert.Equal(t, map[uint64]uint64{1: 2}, back.rows)

	require.NoError(t, writeFile(dir+"/"+CursorFile, "garbage"))
	_, err = loadCursor(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "delete it to republish")
}

func metricName(t *testing.T, c prometheus.Collector) string {
	ch := make(chan *prometheus.Desc, 1)
	c.Describe(ch)
	d := (<-ch).String() // Desc{fqName: "name", …}
	_, rest, _ := strings.Cut(d, `fqName: "`)
	name, _, _ := strings.Cut(rest, `"`)
	require.NotEmpty(t, name, d)
	return name
}

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o600) }
