package planner

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// demoTrace is a small web stack: a service writes a log a shipper tails, a
// config read by the service's workers and by a reporting job, a database
// written by the service and by a backup job, and an unrelated job.
func demoTrace() *Trace {
	return newTrace().
		proc(100, 0, "/bin/bash", "bash", "workload.sh").
		proc(200, 100, "/usr/local/bin/service", "service", "--port", "8080").
		proc(201, 200, "/usr/local/bin/worker", "worker", "1").
		proc(202, 200, "/usr/local/bin/worker", "worker", "2").
		proc(300, 100, "/usr/bin/tail", "tail", "-F", "/srv/log/service.log").
		proc(400, 100, "/usr/bin/sqlite3", "sqlite3", "/srv/db/app.db").exited(400).
		proc(500, 100, "/usr/local/bin/report", "report").
		proc(600, 100, "/usr/bin/sort", "sort").exited(600).
		write(200, "/srv/log/service.log").
		read(201, "/srv/etc/app.conf").read(202, "/srv/etc/app.conf").read(500, "/srv/etc/app.conf").
		write(201, "/srv/db/app.db").write(400, "/srv/db/app.db", "/srv/db/app.db-journal").
		access(201, "/srv/db/app.db-journal", "unlink", true, 1, 0).
		read(300, "/srv/log/service.log").
		read(200, "/usr/lib/x86_64-linux-gnu/libc.so.6", "/etc/ld.so.cache").write(200, "/dev/null").
		access(202, "/srv/etc/app.conf.d", "openat", false, 0, 2).
		read(600, "/tmp/unrelated.in").write(600, "/tmp/unrelated.out").
		read(500, "/srv/reports/template\nwith newline").
		trace()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file: run go test ./planner -update")
	assert.Equal(t, string(want), string(got), "output differs from %s (go test ./planner -update rewrites it)", path)
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name string
		ap   string
		opts Options
	}{
		{name: "shipper", ap: "300", opts: Options{ShowFailed: true}},
		{name: "report", ap: "500"},
	}
	for _, tt := range tests {
		t.Run("the plan for AP "+tt.name+" matches its golden JSON, DOT and table", func(t *testing.T) {
			pl := mustPlan(t, demoTrace(), tt.ap, tt.opts)
			var js, dot, table bytes.Buffer
			require.NoError(t, pl.WriteJSON(&js))
			require.NoError(t, pl.WriteDOT(&dot))
			require.NoError(t, pl.WriteTableWidth(&table, 80)) // what restrack plan prints into a pipe
			golden(t, tt.name+".json", js.Bytes())
			golden(t, tt.name+".dot", dot.Bytes())
			golden(t, tt.name+".txt", table.Bytes())
		})
	}
}

// TestJSONContract pins the fields of design §11 that scripts depend on:
// renaming one breaks users, so it must break this test first.
func TestJSONContract(t *testing.T) {
	pl := mustPlan(t, demoTrace(), "300", Options{})
	var buf bytes.Buffer
	require.NoError(t, pl.WriteJSON(&buf))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &doc))
	for _, k := range []string{"move_processes", "move_files", "copy_files", "ignored_files", "dropped_events", "incomplete"} {
		assert.Contains(t, doc, k)
	}
	for _, p := range doc["move_processes"].([]any) {
		assert.Subset(t, keys(p), []string{"pid", "exe", "reason"})
	}
	for _, f := range doc["move_files"].([]any) {
		assert.Subset(t, keys(f), []string{"path", "reason"})
	}
	require.NotEmpty(t, doc["copy_files"])
	moved := map[string]bool{}
	for _, f := range doc["move_files"].([]any) {
		moved[f.(map[string]any)["path"].(string)] = true
	}
	for _, f := range doc["copy_files"].([]any) {
		assert.Subset(t, keys(f), []string{"path", "for_pids"})
		assert.False(t, moved[f.(map[string]any)["path"].(string)], "a file is in move_files or copy_files, never both")
	}
	assert.IsType(t, []any{}, doc["ignored_files"])
	assert.IsType(t, float64(0), doc["dropped_events"])
	assert.IsType(t, false, doc["incomplete"])

	empty := mustPlan(t, newTrace().proc(1, 0, "/x").trace(), "1", Options{})
	buf.Reset()
	require.NoError(t, empty.WriteJSON(&buf))
	assert.Contains(t, buf.String(), `"copy_files": []`, "empty lists are [] for scripts, never null")
}

func keys(v any) []string {
	var out []string
	for k := range v.(map[string]any) {
		out = append(out, k)
	}
	return out
}
