package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/collector"
	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/internal/ctest"
	"github.com/restrack/restrack/ring"
)

// The test binary is also restrack itself when RESTRACK_TEST_MAIN is set,
// so that tests can run it as a separate process (signals, exit statuses)
// without a go build.
func TestMain(m *testing.M) {
	if os.Getenv("RESTRACK_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// mustShim returns the shim: build/librestrack.so when `make` built it
// (make test does), else compiled here from libcshim/.
func mustShim(tb testing.TB) string {
	tb.Helper()
	root := ctest.RepoRoot(tb)
	built := filepath.Join(root, "build", "librestrack.so")
	if _, err := os.Stat(built); err == nil {
		return built
	}
	srcs, err := filepath.Glob(filepath.Join(root, "libcshim", "*.c"))
	require.NoError(tb, err)
	rel := make([]string, len(srcs))
	for i, s := range srcs {
		rel[i], _ = filepath.Rel(root, s)
	}
	return ctest.Build(tb, "librestrack.so", rel, "-shared", "-fPIC", "-fvisibility=hidden", "-D_GNU_SOURCE", "-ldl")
}

// restrack runs this test binary as restrack with args, in dir.
func restrack(tb testing.TB, dir string, args ...string) *exec.Cmd {
	tb.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "RESTRACK_TEST_MAIN=1", "RESTRACK_SHIM="+mustShim(tb))
	return cmd
}

type result struct {
	code           int
	stdout, stderr string
}

func mustRun(tb testing.TB, dir string, args ...string) result {
	tb.Helper()
	cmd := restrack(tb, dir, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		require.NoError(tb, err)
	}
	return result{cmd.ProcessState.ExitCode(), out.String(), errb.String()}
}

func mustEvents(tb testing.TB, dir, storeDir string, extra ...string) []eventJSON {
	tb.Helper()
	r := mustRun(tb, dir, append([]string{"events", "--store", storeDir, "--json"}, extra...)...)
	require.Equal(tb, 0, r.code, r.stderr)
	var evs []eventJSON
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		var e eventJSON
		require.NoError(tb, json.Unmarshal(sc.Bytes(), &e), sc.Text())
		evs = append(evs, e)
	}
	return evs
}

func realTempDir(tb testing.TB) string {
	tb.Helper()
	d, err := filepath.EvalSymlinks(tb.TempDir())
	require.NoError(tb, err)
	return d
}

func TestRunRecordsBothOpensWithTheirAccessClasses(t *testing.T) {
	for _, mode := range []string{"ring", "fifo"} {
		t.Run("through the "+mode, func(t *testing.T) { testRunRecordsBothOpens(t, mode) })
	}
}

func testRunRecordsBothOpens(t *testing.T, mode string) {
	dir := realTempDir(t)
	r := mustRun(t, dir, "run", "--mode", mode, "--", "sh", "-c", "cat /etc/hostname > out")
	require.Equal(t, 0, r.code, r.stderr)

	evs := mustEvents(t, dir, "restrack-data")
	var read, write *eventJSON
	for i, e := range evs {
		switch {
		case e.Path == "/etc/hostname" && strings.Contains(e.Op, "open"):
			read = &evs[i]
		case e.Path == filepath.Join(dir, "out") && strings.Contains(e.Op, "open"):
			write = &evs[i]
		}
	}
	require.NotNil(t, read, "cat's open of /etc/hostname is recorded: %v", evs)
	require.NotNil(t, write, "the shell's open of out is recorded: %v", evs)
	assert.Equal(t, "read", read.Access)
	assert.Equal(t, "write", write.Access)
	assert.Equal(t, uint32(syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC), write.Flags&(syscall.O_ACCMODE|syscall.O_CREAT|syscall.O_TRUNC))
	assert.Equal(t, write.PID, read.PPID, "cat is the shell's child")
	assert.GreaterOrEqual(t, read.Result, int32(0))

	st := mustRun(t, dir, "status", "--json")
	require.Equal(t, 0, st.code, st.stderr)
	var stats store.Stats
	require.NoError(t, json.Unmarshal([]byte(st.stdout), &stats))
	assert.Equal(t, uint64(0), stats.Dropped)
	assert.GreaterOrEqual(t, stats.Processes, int64(2))
}

func TestRunExitsWithTheCommandsStatus(t *testing.T) {
	dir := realTempDir(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "noexec"), []byte("#!/bin/sh\n"), 0o644))
	tests := []struct {
		name string
		cmd  []string
		want int
	}{
		{"a command that succeeds gives 0", []string{"true"}, 0},
		{"an exit code is passed on", []string{"sh", "-c", "exit 7"}, 7},
		{"a command killed by SIGTERM gives 128+15", []string{"sh", "-c", "kill -TERM $$"}, 143},
		{"a command killed by SIGKILL gives 128+9", []string{"sh", "-c", "kill -KILL $$"}, 137},
		{"a command that is not found gives 127", []string{"no-such-command-restrack"}, 127},
		{"a file that is not executable gives 126", []string{"./noexec"}, 126},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRun(t, dir, append([]string{"run", "--store", "s", "--"}, tt.cmd...)...)
			assert.Equal(t, tt.want, r.code, r.stderr)
		})
	}
}

func TestRunForwardsSignalsAndStillSavesTheTrace(t *testing.T) {
	dir := realTempDir(t)
	cmd := restrack(t, dir, "run", "--", "sh", "-c",
		`trap 'cat /etc/hostname >/dev/null; exit 5' INT; echo ready; while :; do sleep 0.05; done`)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "ready\n", line)
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	err = cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 5, ee.ExitCode(), "the command's trap ran and its status came back")
	found := false
	for _, e := range mustEvents(t, dir, "restrack-data") {
		found = found || e.Path == "/etc/hostname"
	}
	assert.True(t, found, "what the command did after the signal is in the trace")
}

func TestBadInvocationsSayWhatIsWrong(t *testing.T) {
	dir := realTempDir(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "file"), nil, 0o600))
	tests := []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"run without a command", []string{"run", "--store", "s"}, 2, "no command given"},
		{"run with an unknown flag", []string{"run", "--bogus", "--", "true"}, 2, "flag provided but not defined"},
		{"run with an unknown mode", []string{"run", "--mode", "carrier-pigeon", "--", "true"}, 2, "unknown --mode"},
		{"run with a missing shim", []string{"run", "--shim", "/nonexistent/librestrack.so", "--", "true"}, 125, "make shim"},
		{"run into a store that cannot be created", []string{"run", "--store", "file/store", "--", "true"}, 125, "not a directory"},
		{"run with a ring size that is not a power of two", []string{"run", "--store", "s", "--ring-size", "100000", "--", "true"}, 2, "power of two"},
		{"events of a missing store", []string{"events", "--store", "missing"}, 1, "no restrack store"},
		{"events of a negative pid", []string{"events", "--pid", "-3"}, 2, "not a process id"},
		{"status of a missing store", []string{"status", "--store", "missing"}, 1, "no restrack store"},
		{"status of a socket nobody listens on", []string{"status", "--socket", "nobody.sock"}, 1, "is it running?"},
		{"status with both a store and a socket", []string{"status", "--store", "s", "--socket", "x"}, 2, "not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRun(t, dir, tt.args...)
			assert.Equal(t, tt.code, r.code, r.stderr)
			assert.Contains(t, r.stderr, tt.wantErr)
		})
	}
	_, err := os.Stat(filepath.Join(dir, "missing"))
	assert.True(t, os.IsNotExist(err), "reading a missing store does not create it")
}

func TestEventsJSONRoundTripsAnyPathBytes(t *testing.T) {
	dir := realTempDir(t)
	weird := "/tmp/new\nline\xff\xfe\"quoted\""
	s, err := store.Open(filepath.Join(dir, "s"), store.Options{})
	require.NoError(t, err)
	require.NoError(t, s.Commit(context.Background(), []ring.Record{
		{Type: ring.TypeEvent, Op: ring.OpRename, Access: ring.AccessWrite, PID: 9, TID: 9, StartNs: 1, TimeNs: 2,
			Str1: []byte(weird), Str2: []byte("/plain")},
		{Type: ring.TypeEvent, Op: ring.OpOpenat, Access: ring.AccessRead, PID: 9, TID: 9, StartNs: 1, TimeNs: 3,
			Result: -2, Str1: []byte("/é/ünïcode")},
	}, store.Checkpoint{SourceInfo: store.SourceInfo{ID: 1, Kind: "ring", Path: "x"}, Position: 2, DroppedFull: 4}))
	require.NoError(t, s.Close())

	evs := mustEvents(t, dir, "s")
	require.Len(t, evs, 2)
	raw, err := base64.StdEncoding.DecodeString(evs[0].PathB64)
	require.NoError(t, err)
	assert.Equal(t, weird, string(raw), "path_b64 holds the exact bytes")
	assert.Equal(t, "/plain", evs[0].Path2)
	assert.Empty(t, evs[0].Path2B64, "valid UTF-8 needs no base64")
	assert.Equal(t, "rename", evs[0].Op)
	assert.Equal(t, "/é/ünïcode", evs[1].Path)
	assert.Empty(t, evs[1].PathB64)
	assert.Equal(t, int32(-2), evs[1].Result)

	r := mustRun(t, dir, "events", "--store", "s")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, 2, strings.Count(r.stdout, "\n"), "a newline in a path cannot split a text line:\n%s", r.stdout)

	lines := strings.Split(strings.TrimSpace(mustRun(t, dir, "events", "--store", "s", "--json").stdout), "\n")
	var first map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &first))
	_, hasPath2 := first["path2"]
	assert.False(t, hasPath2, "path2 is absent when the op has none")

	st := mustRun(t, dir, "status", "--store", "s")
	require.Equal(t, 0, st.code, st.stderr)
	assert.Regexp(t, `(?m)^dropped:\s+4$`, st.stdout)
}

func TestStatusAsksTheRunningCollector(t *testing.T) {
	dir := realTempDir(t)
	storeDir := filepath.Join(dir, "s")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- collector.RunDaemon(ctx, collector.DaemonConfig{Ring: filepath.Join(dir, "ring"), Store: storeDir,
			Socket: filepath.Join(storeDir, "collector.sock"), Ready: func(*collector.Collector) { close(ready) }})
	}()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	<-ready
	r := mustRun(t, dir, "status", "--store", storeDir, "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var st collector.Status
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	assert.Equal(t, os.Getpid(), st.PID, "the live collector answered, not the store")
	assert.Equal(t, filepath.Join(dir, "ring"), st.Path)
	r = mustRun(t, dir, "status", "--socket", filepath.Join(storeDir, "collector.sock"))
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `(?m)^dropped:\s+0$`, r.stdout)
}
