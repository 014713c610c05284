package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/internal/pgtest"
)

func fleetCount(t *testing.T, dsn, query string, args ...any) int64 {
	t.Helper()
	var n int64
	pgtest.QueryRow(t, dsn, query, args, &n)
	return n
}

func TestRunPublishesTheTraceAndStatusShowsTheBacklog(t *testing.T) {
	pg := pgtest.Start(t)
	dir := realTempDir(t)
	storeDir := filepath.Join(dir, "store")
	data := filepath.Join(dir, "data.txt")

	r := mustRun(t, dir, "run", "--store", storeDir, "--publish", pg.DSN(), "--host-id", "alpha", "--", "sh", "-c", "echo hi > "+data+"; cat "+data)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "as host alpha")
	assert.Equal(t, int64(1), fleetCount(t, pg.DSN(),
		"SELECT count(*) FROM restrack.accesses a JOIN restrack.files f USING (host_id, file_id) WHERE a.host_id = 'alpha' AND f.path = $1 AND a.write", []byte(data)),
		"the shell's write of data.txt is in the fleet database")
	procs := fleetCount(t, pg.DSN(), "SELECT count(*) FROM restrack.processes WHERE host_id = 'alpha'")
	assert.GreaterOrEqual(t, procs, int64(2), "sh and cat")

	r = mustRun(t, dir, "status", "--store", storeDir)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "host alpha")
	assert.Contains(t, r.stdout, "up to date")

	t.Run("the database down: run keeps the trace, says how to publish it, and status shows the lag", func(t *testing.T) {
		pg.Stop()
		r := mustRun(t, dir, "run", "--store", storeDir, "--publish", pg.DSN(), "--host-id", "alpha", "--publish-timeout", "5s", "--", "cat", data)
		assert.Equal(t, exitRunFailed, r.code, "the trace was asked to be published and is not")
		assert.Contains(t, r.stderr, "restrack publish --store "+storeDir)
		r = mustRun(t, dir, "status", "--store", storeDir, "--json")
		require.Equal(t, 0, r.code, r.stderr)
		var st struct {
			Processes int64 `json:"processes"`
			Fleet     struct {
				Pending   int    `json:"pending_rows"`
				LastError string `json:"last_error"`
			} `json:"fleet"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &st), r.stdout)
		assert.Greater(t, st.Fleet.Pending, 0)
		assert.NotEmpty(t, st.Fleet.LastError)
		assert.Equal(t, procs+1, st.Processes, "the second cat is in the local store")

		pg.StartAgain()
		r = mustRun(t, dir, "publish", "--store", storeDir, "--publish", pg.DSN(), "--host-id", "alpha")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, procs+1, fleetCount(t, pg.DSN(), "SELECT count(*) FROM restrack.processes WHERE host_id = 'alpha'"),
			"the backlog arrived, once")
	})
}

func TestPublishFlagsAreChecked(t *testing.T) {
	dir := realTempDir(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a host id without a database", []string{"run", "--host-id", "a", "--", "true"}, "needs --publish"},
		{"a host id with a colon", []string{"run", "--publish", "host=/nonexistent", "--host-id", "a:b", "--", "true"}, "host id"},
		{"publish without a database", []string{"publish", "--store", dir}, "--publish DSN is required"},
		{"a fleet plan of a pid without its host", []string{"plan", "--fleet", "host=/nonexistent", "--ap", "100"}, "HOST:PID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRun(t, dir, tt.args...)
			assert.Equal(t, 2, r.code)
			assert.Contains(t, r.stderr, tt.want)
		})
	}
}
