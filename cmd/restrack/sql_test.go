package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/ring"
)

// The collector never writes the SQL tables files and accesses; restrack
// sql brings them up to date for sqlite3 users, and refuses while a
// collector holds the store.
func TestSQLMaterializesTheTablesSqlite3Reads(t *testing.T) {
	dir := realTempDir(t)
	st, err := store.Open(filepath.Join(dir, "s"), store.Options{})
	require.NoError(t, err)
	recs := []ring.Record{
		{Type: ring.TypeEvent, Op: ring.OpOpenat, Access: ring.AccessRead, PID: 7, TID: 7, StartNs: 1, TimeNs: 10, Result: 3, Str1: []byte("/etc/hostname")},
		{Type: ring.TypeEvent, Op: ring.OpOpenat, Access: ring.AccessWrite, PID: 7, TID: 7, StartNs: 1, TimeNs: 11, Result: 3, Str1: []byte("/tmp/out")},
	}
	require.NoError(t, st.Commit(context.Background(), recs, store.Checkpoint{
		SourceInfo: store.SourceInfo{ID: 1, Kind: "ring", Path: "/dev/shm/x"}, Position: 2}))

	r := mustRun(t, dir, "sql", "--store", "s")
	assert.Equal(t, 1, r.code, "a collector holds the store")
	assert.Contains(t, r.stderr, "in use by another writer")
	require.NoError(t, st.Close())

	r = mustRun(t, dir, "sql", "--store", "s")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "2 new paths and 2 aggregates")
	ro, err := store.Open(filepath.Join(dir, "s"), store.Options{ReadOnly: true})
	require.NoError(t, err)
	stats, err := ro.Stats(context.Background())
	require.NoError(t, err)
	ro.Close()
	assert.Equal(t, int64(2), stats.Accesses)
	assert.Equal(t, int64(0), stats.AccessDeltas)

	if _, err := exec.LookPath("sqlite3"); err != nil {
		t.Skip("no sqlite3 CLI")
	}
	r = mustRun(t, dir, "sql", "--store", "s", "SELECT path, access FROM v_accesses ORDER BY path")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "/etc/hostname|read\n/tmp/out|write\n", r.stdout)
}
