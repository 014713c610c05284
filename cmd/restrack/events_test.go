package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/ring"
)

func eventsCmd(args []string, o, e *bytes.Buffer) int { return runEvents(args, o, e) }

func eventPaths(t *testing.T, out string) []string {
	t.Helper()
	var paths []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e eventJSON
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e), sc.Text())
		paths = append(paths, e.Path)
	}
	return paths
}

func TestEventsFilters(t *testing.T) {
	dir := mustPlanStore(t)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "--op keeps the named ops", args: []string{"--op", "fopen"}, want: []string{"/srv/app.conf"}},
		{name: "--access write keeps writes", args: []string{"--access", "write"}, want: []string{"/srv/service.log"}},
		{name: "--failed keeps failed calls", args: []string{"--failed"}, want: []string{"/srv/missing.conf"}},
		{name: "--tid keeps one thread", args: []string{"--tid", "300"}, want: []string{"/srv/service.log"}},
		{name: "--under keeps a directory's paths", args: []string{"--under", "/usr/lib"}, want: []string{"/usr/lib/x86_64-linux-gnu/libc.so.6"}},
		{name: "--under is a directory, not a string prefix", args: []string{"--under", "/sr"}, want: nil},
		{name: "--pid PID@START_NS keeps one incarnation", args: []string{"--pid", "200@2000", "--op", "openat", "--access", "read", "--failed"},
			want: []string{"/srv/missing.conf"}},
		{name: "--since and --until in monotonic ns bound the window", args: []string{"--since", "3000", "--until", "4001"},
			want: []string{"/srv/service.log", "/srv/app.conf"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(eventsCmd, append([]string{"--store", dir, "--json"}, tt.args...)...)
			require.Equal(t, 0, code, errOut)
			assert.Equal(t, tt.want, eventPaths(t, out))
		})
	}
}

func TestEventsNameErrnosAndShowTimesAsAsked(t *testing.T) {
	dir := mustPlanStore(t)
	code, out, errOut := runCmd(eventsCmd, "--store", dir, "--failed", "--time", "mono")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "2001 200/200 openat     read  ENOENT /srv/missing.conf\n", out)

	code, out, errOut = runCmd(eventsCmd, "--store", dir, "--failed", "--json")
	require.Equal(t, 0, code, errOut)
	var e eventJSON
	require.NoError(t, json.Unmarshal([]byte(out), &e))
	assert.Equal(t, int32(-2), e.Result, "JSON keeps the raw result")
	assert.Equal(t, "ENOENT", e.Errno)
	assert.Equal(t, uint64(2001), e.TimeNs, "JSON keeps the raw monotonic ns")

	code, out, errOut = runCmd(eventsCmd, "--store", dir, "--pid", "300", "--time", "rel")
	require.Equal(t, 0, code, errOut)
	assert.True(t, strings.HasPrefix(out, "+0.000s 300/300 openat "), out)

	code, out, errOut = runCmd(eventsCmd, "--store", dir, "--pid", "300")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `^\d\d:\d\d:\d\d\.\d\d\d 300/300 openat `, out, "the default is the wall clock")
}

func TestEventsBadFiltersAreUsageErrors(t *testing.T) {
	dir := mustPlanStore(t)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"an unknown op", []string{"--op", "teleport"}, `unknown op "teleport"`},
		{"an unknown access", []string{"--access", "maybe"}, "want read, write, lookup or none"},
		{"a pid with a bad start", []string{"--pid", "200@x"}, "START_NS must be a number"},
		{"a time that is no time", []string{"--since", "yesterday-ish"}, "want a time"},
		{"an unknown time format", []string{"--time", "sundial"}, "want wall, rel or mono"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCmd(eventsCmd, append([]string{"--store", dir}, tt.args...)...)
			assert.Equal(t, 2, code)
			assert.Contains(t, errOut, tt.want)
		})
	}
}

func TestParseWhenTakesClockTimesDurationsAndNs(t *testing.T) {
	clk := wallClock{offset: 1_000_000_000_000, nowMono: 1 << 62, ok: true}
	now := time.Unix(0, 1_000_000_000_000+500_000_000_000).In(time.UTC)
	for _, tt := range []struct {
		in   string
		want uint64
	}{
		{"123", 123},
		{"100s", 400_000_000_000},
		{now.Add(-time.Minute).Format(time.RFC3339Nano), 440_000_000_000},
		{now.Add(-2 * time.Second).Format("15:04:05"), 498_000_000_000},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseWhen(tt.in, clk, now)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestEventsFollowPrintsWhatACollectorStoresLater(t *testing.T) {
	dir := realTempDir(t)
	st, err := store.Open(filepath.Join(dir, "s"), store.Options{})
	require.NoError(t, err)
	defer st.Close()
	ev := func(path string, t uint64) ring.Record {
		return ring.Record{Type: ring.TypeEvent, Op: ring.OpOpenat, Access: ring.AccessRead, PID: 7, TID: 7, StartNs: 1, TimeNs: t, Result: 3, Str1: []byte(path)}
	}
	commit := func(pos uint64, recs ...ring.Record) {
		require.NoError(t, st.Commit(context.Background(), recs, store.Checkpoint{
			SourceInfo: store.SourceInfo{ID: 1, Kind: "ring", Path: "/dev/shm/x"}, Position: pos}))
	}
	commit(1, ev("/first", 10))

	cmd := restrack(t, dir, "events", "--store", "s", "--json", "--follow", "--follow-interval", "20ms")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	errFile, err := os.Create(filepath.Join(dir, "stderr"))
	require.NoError(t, err)
	defer errFile.Close()
	cmd.Stderr = errFile
	stderr := func() string { b, _ := os.ReadFile(errFile.Name()); return string(b) }
	require.NoError(t, cmd.Start())
	lines := bufio.NewScanner(out)
	next := func() string {
		require.True(t, lines.Scan(), "stderr: %s", stderr())
		var e eventJSON
		require.NoError(t, json.Unmarshal(lines.Bytes(), &e))
		return e.Path
	}
	assert.Equal(t, "/first", next())
	commit(2, ev("/second", 20), ev("/third", 30))
	assert.Equal(t, "/second", next(), "a later commit is printed once")
	assert.Equal(t, "/third", next())
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait(), "an interrupt ends --follow normally: %s", stderr())
}
