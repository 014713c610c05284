package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/ring"
)

// mustPlanStore writes a small trace into a fresh store: sh (100) starts a
// service (200) that writes a log, a tail (300) that reads it, and a job
// (400) that reads the shared config; pid 500 was used twice.
func mustPlanStore(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	s, err := store.Open(dir, store.Options{})
	require.NoError(tb, err)
	proc := func(pid, ppid int32, start uint64, exe string) ring.Record {
		return ring.Record{Type: ring.TypeProc, Op: ring.OpProcStart, PID: pid, PPID: ppid, StartNs: start, TimeNs: start,
			Str1: []byte(exe), Str2: []byte("/"), Str3: []byte(exe)}
	}
	ev := func(pid int32, start uint64, op ring.Op, access uint8, result int32, path string) ring.Record {
		return ring.Record{Type: ring.TypeEvent, Op: op, Access: access, PID: pid, TID: pid, StartNs: start, TimeNs: start + 1,
			Result: result, Str1: []byte(path)}
	}
	recs := []ring.Record{
		proc(100, 1, 1000, "/bin/sh"),
		proc(200, 100, 2000, "/usr/local/bin/service"),
		proc(300, 100, 3000, "/usr/bin/tail"),
		proc(400, 100, 4000, "/usr/local/bin/job"),
		proc(500, 100, 5000, "/usr/local/bin/first"),
		proc(500, 100, 6000, "/usr/local/bin/second"),
		ev(200, 2000, ring.OpOpenat, ring.AccessWrite, 3, "/srv/service.log"),
		ev(200, 2000, ring.OpOpenat, ring.AccessRead, 4, "/srv/app.conf"),
		ev(200, 2000, ring.OpOpenat, ring.AccessRead, 5, "/usr/lib/x86_64-linux-gnu/libc.so.6"),
		ev(300, 3000, ring.OpOpenat, ring.AccessRead, 3, "/srv/service.log"),
		ev(400, 4000, ring.OpFopen, ring.AccessRead, 3, "/srv/app.conf"),
		ev(200, 2000, ring.OpOpenat, ring.AccessRead, -2, "/srv/missing.conf"),
	}
	require.NoError(tb, s.Commit(context.Background(), recs, store.Checkpoint{
		SourceInfo: store.SourceInfo{ID: 1, Kind: "ring", Path: "/dev/shm/test"}, Position: uint64(len(recs)),
	}))
	require.NoError(tb, s.Close())
	return dir
}

func runCmd(run func([]string, *bytes.Buffer, *bytes.Buffer) int, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func planCmd(args []string, o, e *bytes.Buffer) int    { return runPlan(args, o, e) }
func explainCmd(args []string, o, e *bytes.Buffer) int { return runExplain(args, o, e) }

func TestPlanCommand(t *testing.T) {
	dir := mustPlanStore(t)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string // substrings
		stderr string
	}{
		{name: "the default output is a table that names what moves and what is copied",
			args: []string{"--store", dir, "--ap", "300"},
			stdout: []string{"Migration plan for AP 300 (tail)", "AP 200 moves because it writes /srv/service.log, which AP 300 (moving)\n      reads",
				"/srv/app.conf", "COPY STAYS FOR APs", "/usr/lib/x86_64-linux-gnu/libc.so.6"}},
		{name: "--dot prints a Graphviz digraph",
			args: []string{"--store", dir, "--ap", "300", "--dot"}, stdout: []string{"digraph restrack_plan {", "cluster_moving"}},
		{name: "--show-failed lists failed calls of moving processes",
			args: []string{"--store", dir, "--ap", "200", "--show-failed"}, stdout: []string{"Failed calls", "/srv/missing.conf"}},
		{name: "an unknown pid is a clear error and exit status 1",
			args: []string{"--store", dir, "--ap", "4242"}, code: 1, stderr: "restrack plan: no process with pid 4242 in the trace"},
		{name: "a reused pid is an error that lists the incarnations to pick from",
			args: []string{"--store", dir, "--ap", "500"}, code: 1, stderr: "500@6000"},
		{name: "PID@latest picks the latest incarnation",
			args: []string{"--store", dir, "--ap", "500@latest"}, stdout: []string{"Migration plan for AP 500 (second)"}},
		{name: "a missing --ap is a usage error that says what to give and where to find it",
			args: []string{"--store", dir}, code: 2, stderr: "--ap PID is required: the process whose AP should move (restrack ps"},
		{name: "an --ap that is neither a pid nor a traced command's name is a usage error",
			args: []string{"--store", dir, "--ap", "abc"}, code: 2, stderr: `no traced process is named "abc" (restrack ps lists`},
		{name: "a malformed --ap is a usage error",
			args: []string{"--store", dir, "--ap", "12@soon"}, code: 2, stderr: "START_NS must be a number"},
		{name: "--ap takes a command name that names one process",
			args: []string{"--store", dir, "--ap", "tail"}, stdout: []string{"Migration plan for AP 300 (tail)"}},
		{name: "the unknown-pid error points at restrack ps, not a 300 MB event dump",
			args: []string{"--store", dir, "--ap", "4242"}, code: 1, stderr: "`restrack ps` lists them"},
		{name: "a directory without a store says how to make one",
			args: []string{"--store", t.TempDir(), "--ap", "1"}, code: 1, stderr: "trace something first"},
		{name: "--json and --dot together are a usage error",
			args: []string{"--store", dir, "--ap", "300", "--json", "--dot"}, code: 2, stderr: "exclude each other"},
		{name: "a bad ignore rule is an error",
			args: []string{"--store", dir, "--ap", "300", "--ignore", "rel/ative"}, code: 1, stderr: "a rule is an absolute path, a glob, or a file name without a slash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("XDG_CONFIG_HOME", t.TempDir())
			code, out, errOut := runCmd(planCmd, tt.args...)
			assert.Equal(t, tt.code, code, "stderr: %s", errOut)
			for _, s := range tt.stdout {
				assert.Contains(t, out, s)
			}
			assert.Contains(t, errOut, tt.stderr)
		})
	}
}

func TestPlanCommandJSONContract(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	code, out, errOut := runCmd(planCmd, "--store", mustPlanStore(t), "--ap", "300", "--json")
	require.Equal(t, 0, code, errOut)
	var doc struct {
		MoveProcesses []struct {
			PID    int32  `json:"pid"`
			Exe    string `json:"exe"`
			Reason string `json:"reason"`
		} `json:"move_processes"`
		MoveFiles []struct {
			Path, Reason string
		} `json:"move_files"`
		CopyFiles []struct {
			Path    string  `json:"path"`
			ForPIDs []int32 `json:"for_pids"`
		} `json:"copy_files"`
		IgnoredFiles  []string `json:"ignored_files"`
		DroppedEvents *uint64  `json:"dropped_events"`
		Incomplete    *bool    `json:"incomplete"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	require.Len(t, doc.MoveProcesses, 2)
	assert.Equal(t, int32(200), doc.MoveProcesses[0].PID)
	assert.Equal(t, "/usr/local/bin/service", doc.MoveProcesses[0].Exe)
	assert.NotEmpty(t, doc.MoveProcesses[0].Reason)
	require.Len(t, doc.MoveFiles, 1)
	assert.Equal(t, "/srv/service.log", doc.MoveFiles[0].Path)
	require.Len(t, doc.CopyFiles, 1)
	assert.Equal(t, "/srv/app.conf", doc.CopyFiles[0].Path)
	assert.Equal(t, []int32{400}, doc.CopyFiles[0].ForPIDs, "copies are for the staying APs, by root pid")
	assert.Equal(t, []string{"/usr/lib/x86_64-linux-gnu/libc.so.6"}, doc.IgnoredFiles)
	require.NotNil(t, doc.DroppedEvents)
	require.NotNil(t, doc.Incomplete)
	assert.False(t, *doc.Incomplete)
}

func TestExplainWrapsItsSentencesToTheTerminal(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("COLUMNS", "60")
	code, out, errOut := runCmd(explainCmd, "--store", mustPlanStore(t), "--ap", "300", "--file", "/srv/app.conf")
	require.Equal(t, 0, code, errOut)
	assert.True(t, strings.HasPrefix(out, "/srv/app.conf moves and a copy stays for AP 400: every AP\n    that shares it only reads it (Model 1).\n"), out)
	for _, l := range strings.Split(out, "\n") {
		assert.LessOrEqual(t, len(l), 60, l)
	}
}

func TestExplainCommand(t *testing.T) {
	dir := mustPlanStore(t)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{name: "a partner process is explained by the chain back to the requested AP",
			args:   []string{"--store", dir, "--ap", "300", "--pid", "200"},
			stdout: "process 200 (service) moves: it is the root of AP 200.\nAP 200 moves because it writes /srv/service.log, which AP 300 (moving) reads.\nAP 300 is the AP you asked to move.\n"},
		{name: "a copied file says who keeps a copy",
			args:   []string{"--store", dir, "--ap", "300", "--file", "/srv/app.conf"},
			stdout: "/srv/app.conf moves and a copy stays for AP 400: every AP that shares it only reads it (Model 1).\n"},
		{name: "a staying process says it stays",
			args: []string{"--store", dir, "--ap", "300", "--pid", "400"}, stdout: "process 400 (job) stays"},
		{name: "an unknown file is an error",
			args: []string{"--store", dir, "--ap", "300", "--file", "/nope"}, code: 1, stderr: "no traced process used /nope"},
		{name: "an unknown pid is an error",
			args: []string{"--store", dir, "--ap", "300", "--pid", "9999"}, code: 1, stderr: "no process with pid 9999"},
		{name: "neither --file nor --pid is a usage error",
			args: []string{"--store", dir, "--ap", "300"}, code: 2, stderr: "exactly one of --file PATH and --pid PID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("XDG_CONFIG_HOME", t.TempDir())
			t.Setenv("COLUMNS", "200") // the sentences whole: their wrapping is tested apart
			code, out, errOut := runCmd(explainCmd, tt.args...)
			assert.Equal(t, tt.code, code, "stderr: %s", errOut)
			assert.True(t, strings.HasPrefix(out, tt.stdout), "stdout:\n%s", out)
			assert.Contains(t, errOut, tt.stderr)
		})
	}
}
