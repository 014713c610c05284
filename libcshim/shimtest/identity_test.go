//go:build linux

package shimtest

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/internal/ctest"
	"github.com/restrack/restrack/ring"
)

// A forked child learns its start time from the clock around fork, not
// from /proc: it must still be exactly what /proc/PID/stat says, or the
// child's identity (pid, start_ns) would name another process.
func TestAForkedChildsStartTimeIsExactlyProcs(t *testing.T) {
	prog := ctest.Build(t, "fork_identity", []string{"libcshim/tests/fork_identity.c"})
	te := newTrace(t, ring.Config{})
	res := te.run(prog, "200")
	require.NoError(t, res.err, res.stderr)
	evs := te.drain()
	forks := map[int32]uint64{}
	for _, e := range procEvents(evs) {
		if e.Op == "proc_fork" {
			forks[e.PID] = e.StartNs
		}
	}
	n := 0
	for _, line := range strings.Split(res.stdout, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "CHILD" {
			continue
		}
		pid, err := strconv.Atoi(f[1])
		require.NoError(t, err)
		ticks, err := strconv.ParseUint(f[2], 10, 64)
		require.NoError(t, err)
		got, ok := forks[int32(pid)]
		if assert.True(t, ok, "child %d announced itself", pid) {
			assert.Equal(t, ticks*10_000_000, got, "child %d: start_ns is /proc/PID/stat's", pid)
		}
		n++
	}
	assert.Equal(t, 200, n)
}
