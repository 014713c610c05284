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

// mustLookupStore: a watcher (200) stats a pid file the service (300)
// writes, and the service writes a file deeper than PATH_MAX that the shim
// could not make absolute.
func mustLookupStore(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	s, err := store.Open(dir, store.Options{})
	require.NoError(tb, err)
	proc := func(pid int32, start uint64, exe string) ring.Record {
		return ring.Record{Type: ring.TypeProc, Op: ring.OpProcStart, PID: pid, PPID: 100, StartNs: start, TimeNs: start,
			Str1: []byte(exe), Str2: []byte("/"), Str3: []byte(exe)}
	}
	recs := []ring.Record{
		{Type: ring.TypeProc, Op: ring.OpProcStart, PID: 100, PPID: 1, StartNs: 1000, TimeNs: 1000, Str1: []byte("/bin/sh")},
		proc(200, 2000, "/usr/local/bin/watch"),
		proc(300, 3000, "/usr/local/bin/service"),
		{Type: ring.TypeEvent, Op: ring.OpStat, Access: ring.AccessLookup, PID: 200, TID: 200, StartNs: 2000, TimeNs: 2001, Str1: []byte("/run/service.pid")},
		{Type: ring.TypeEvent, Op: ring.OpOpenat, Access: ring.AccessWrite, PID: 300, TID: 300, StartNs: 3000, TimeNs: 3001, Result: 3, Str1: []byte("/run/service.pid")},
		{Type: ring.TypeEvent, Op: ring.OpOpenat, Access: ring.AccessWrite, PID: 300, TID: 300, StartNs: 3000, TimeNs: 3002, Result: 4,
			RFlags: ring.RFUnresolved | ring.RFTooLong, Str1: []byte("deep_at.txt")},
	}
	require.NoError(tb, s.Commit(context.Background(), recs, store.Checkpoint{
		SourceInfo: store.SourceInfo{ID: 1, Kind: "ring", Path: "/dev/shm/test"}, Position: uint64(len(recs)),
	}))
	require.NoError(tb, s.Close())
	return dir
}

func TestEventsSayLookupAndWhyAPathIsUnresolved(t *testing.T) {
	dir := mustLookupStore(t)
	code, out, errOut := runCmd(func(a []string, o, e *bytes.Buffer) int { return runEvents(a, o, e) }, "--store", dir, "--json")
	require.Equal(t, 0, code, errOut)
	byPath := map[string]eventJSON{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e eventJSON
		require.NoError(t, json.Unmarshal([]byte(line), &e), line)
		if e.Op == "stat" || e.Path == "deep_at.txt" {
			byPath[e.Op+" "+e.Path] = e
		}
	}
	assert.Equal(t, "lookup", byPath["stat /run/service.pid"].Access)
	assert.Equal(t, "", byPath["stat /run/service.pid"].Unresolved)
	assert.Equal(t, "too_long", byPath["openat deep_at.txt"].Unresolved)

	code, out, _ = runCmd(func(a []string, o, e *bytes.Buffer) int { return runEvents(a, o, e) }, "--store", dir)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "deep_at.txt (unresolved: too_long)")
}

func TestPlanCountsALookupAsAReadUnlessNoLookupsAndSaysWhenAPathIsUnresolved(t *testing.T) {
	dir := mustLookupStore(t)
	for _, tc := range []struct {
		name   string
		args   []string
		aps    []int32
		incomp bool
	}{
		{"the watcher's stat of the pid file pulls the service in", []string{"--ap", "200"}, []int32{200, 300}, true},
		{"--no-lookups plans the watcher alone", []string{"--ap", "200", "--no-lookups"}, []int32{200}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(planCmd, append([]string{"--store", dir, "--json"}, tc.args...)...)
			require.Equal(t, 0, code, errOut)
			var pl struct {
				APs []struct {
					Root int32 `json:"root_pid"`
				} `json:"aps"`
				Incomplete      bool     `json:"incomplete"`
				UnresolvedFiles []string `json:"unresolved_files"`
			}
			require.NoError(t, json.Unmarshal([]byte(out), &pl), out)
			var roots []int32
			for _, a := range pl.APs {
				roots = append(roots, a.Root)
			}
			assert.ElementsMatch(t, tc.aps, roots)
			assert.Equal(t, tc.incomp, pl.Incomplete, "the service's deep file has no absolute name")
			if tc.incomp {
				assert.Equal(t, []string{"deep_at.txt"}, pl.UnresolvedFiles)
			}
		})
	}
}
