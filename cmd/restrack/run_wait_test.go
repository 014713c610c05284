package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/internal/ctest"
)

// daemonize is a command whose only child double-forks a "daemon" and
// exits at once; the daemon writes late.txt after a while.
var daemonize = []string{"sh", "-c", `(sh -c "sleep 0.4; echo late > late.txt" &) ; exit 0`}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestRunWaitsForADoubleForkingDaemonLikeStraceF(t *testing.T) {
	dir := realTempDir(t)
	r := mustRun(t, dir, append([]string{"run", "--"}, daemonize...)...)
	require.Equal(t, 0, r.code, r.stderr)
	_, err := os.Stat(filepath.Join(dir, "late.txt"))
	require.NoError(t, err, "run returned only after the daemon wrote")
	found := false
	for _, e := range mustEvents(t, dir, "restrack-data") {
		found = found || (e.Path == filepath.Join(dir, "late.txt") && e.Access == "write")
	}
	assert.True(t, found, "the daemon's late write is in the store")
	assert.Regexp(t, `^restrack run: traced pid \d+ \(sh\): \d+ records stored in ./restrack-data, 0 lost; next: restrack ps --store ./restrack-data$`, lastLine(r.stderr))
}

func TestRunNoWaitReturnsAtOnceAndSaysWhatWasLeftUntraced(t *testing.T) {
	dir := realTempDir(t)
	r := mustRun(t, dir, "run", "--no-wait", "--", "sh", "-c", `(sh -c "echo \$\$ > daemon.pid; sleep 5; echo late > late.txt" >/dev/null 2>&1 &) ; sleep 0.2`)
	require.Equal(t, 0, r.code, r.stderr)
	_, err := os.Stat(filepath.Join(dir, "late.txt"))
	assert.True(t, os.IsNotExist(err), "--no-wait returned before the daemon wrote")
	assert.Contains(t, r.stderr, "WARNING: 1 descendants were still running when restrack returned: what they do from now on is not traced")
	if b, err := os.ReadFile(filepath.Join(dir, "daemon.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL) // the daemon must not write into a removed temp dir
		}
	}
}

func TestRunSummaryAsJSONIsTheLastLineOfStderr(t *testing.T) {
	dir := realTempDir(t)
	r := mustRun(t, dir, "run", "--json", "--store", "s", "--", "sh", "-c", "cat /etc/hostname >/dev/null; exit 4")
	require.Equal(t, 4, r.code, r.stderr)
	var sum runSummary
	require.NoError(t, json.Unmarshal([]byte(lastLine(r.stderr)), &sum), r.stderr)
	assert.Positive(t, sum.RootPID)
	assert.Equal(t, 4, sum.ExitStatus)
	assert.Equal(t, "s", sum.Store)
	assert.Positive(t, sum.Records)
	assert.Zero(t, sum.Lost)
	assert.Empty(t, sum.Warnings)
	assert.Equal(t, []string{"sh", "-c", "cat /etc/hostname >/dev/null; exit 4"}, sum.Command)
}

func staticProgram(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "static.c")
	require.NoError(t, os.WriteFile(src, []byte("int main(void) { return 0; }\n"), 0o600))
	root := ctest.RepoRoot(t)
	rel, err := filepath.Rel(root, src)
	require.NoError(t, err)
	return ctest.Build(t, "static-true", []string{rel}, "-static")
}

func TestRunWarnsWhenWhatItRanCannotBeTraced(t *testing.T) {
	dir := realTempDir(t)
	static := staticProgram(t)
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{name: "a static command traces nothing, and the warning says to use the eBPF mode",
			args: []string{"run", "--", static}, want: []string{"the command " + static + " is a statically linked program", "--mode ebpf", "0 records stored"}},
		{name: "--fail-on-loss turns an empty trace of a successful command into status 125",
			args: []string{"run", "--fail-on-loss", "--", static}, code: 125, want: []string{"statically linked"}},
		{name: "a Go program a traced process runs is named with its pid",
			args: []string{"run", "--", "env", "-u", "RESTRACK_TEST_MAIN", os.Args[0], "-test.run=^$"},
			want: []string{os.Args[0] + ", a Go program: it calls the kernel without libc, past the shim: trace it from the kernel with --mode ebpf"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRun(t, dir, tt.args...)
			assert.Equal(t, tt.code, r.code, r.stderr)
			for _, w := range tt.want {
				assert.Contains(t, r.stderr, w)
			}
			assert.Regexp(t, regexp.MustCompile(`^restrack run: traced pid \d+ `), lastLine(r.stderr), "the summary is the last line")
		})
	}
}

func TestProgramKindTellsWhatTheShimCannotFollow(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755))
	assert.Equal(t, "", programKind("/bin/sh"), "a dynamic program is traced")
	assert.Equal(t, "", programKind(script), "a script is traced through its interpreter")
	assert.Equal(t, "", programKind(filepath.Join(dir, "missing")))
	assert.Equal(t, "static", programKind(staticProgram(t)))
	assert.Equal(t, "go", programKind(os.Args[0]))
	if os.Geteuid() == 0 {
		setuid := filepath.Join(dir, "setuid")
		require.NoError(t, os.WriteFile(setuid, []byte("#!/bin/sh\n"), 0o755))
		require.NoError(t, os.Chown(setuid, 65534, 65534))
		require.NoError(t, os.Chmod(setuid, os.ModeSetuid|0o755))
		assert.Equal(t, "setuid", programKind(setuid), "a program that changes the uid drops LD_PRELOAD")
	}
}

func TestRunSummaryWarnings(t *testing.T) {
	tests := []struct {
		name string
		sum  runSummary
		want []string
	}{
		{name: "lost records name their causes and the remedy",
			sum:  runSummary{Records: 10, Lost: 23750, LostFull: 23750},
			want: []string{"23750 records were lost (23750 while the ring was full): the trace is incomplete and a plan may miss a dependency; run again with a bigger ring (--ring-size 4194304) or a shorter --drain-interval"}},
		{name: "an empty trace says where to look",
			sum:  runSummary{},
			want: []string{"nothing was traced: CMD may have cleared LD_PRELOAD, or be a static or Go program; check with RESTRACK_DEBUG=1, or trace from the kernel with --mode ebpf (root)"}},
		{name: "a setuid program's subtree is said to be untraced",
			sum:  runSummary{Records: 5, Untraced: []untracedExec{{PID: 42, Path: "/usr/bin/newgrp", Reason: "setuid"}}},
			want: []string{"process 42 ran /usr/bin/newgrp, a set-uid/set-gid program: the loader drops LD_PRELOAD, so it and its whole subtree go untraced: run it as its owner, or trace it with --mode ebpf (root)"}},
		{name: "a clean run has no warning", sum: runSummary{Records: 5}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.sum.warnings(1<<20))
		})
	}
}

func TestFailOnLossKeepsAFailedCommandsStatus(t *testing.T) {
	for _, tt := range []struct {
		name       string
		sum        runSummary
		failOnLoss bool
		want       int
	}{
		{"without the flag a lossy run keeps CMD's 0", runSummary{Records: 1, Lost: 3}, false, 0},
		{"with it a lossy successful run is 125", runSummary{Records: 1, Lost: 3}, true, 125},
		{"with it a failed CMD keeps its own status", runSummary{Records: 1, Lost: 3, ExitStatus: 7}, true, 7},
		{"with it a clean run is 0", runSummary{Records: 1}, true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.sum.finalStatus(tt.failOnLoss))
		})
	}
}
