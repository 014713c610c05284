package coverage

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/ring"
	"github.com/restrack/restrack/trace"
)

// covEvents feeds Compare a fixed list of events.
func covEvents(evs ...store.Event) func(func(*store.Event) error) error {
	return func(fn func(*store.Event) error) error {
		for i := range evs {
			if err := fn(&evs[i]); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestCoverageComparesCleanedPathsPerProcessAndLeavesUntracedOpsOut(t *testing.T) {
	ev := func(src string, pid int32, op ring.Op, access uint8, path string) store.Event {
		return store.Event{Source: src, PID: pid, StartNs: 100, Op: op, Access: access, Path: path, Result: 3}
	}
	rep, err := Compare(covEvents(
		ev("ring", 1, ring.OpFopen, ring.AccessRead, "/etc/./conf"),
		ev("ebpf", 1, ring.OpOpenat, ring.AccessRead, "/etc/conf"),
		ev("ebpf", 1, ring.OpOpenat, ring.AccessRead, "/usr/lib/locale/C.utf8/LC_CTYPE"),
		ev("ring", 1, ring.OpMkfifo, ring.AccessWrite, "/run/app.fifo"),
		ev("ring", 1, ring.OpConnect, ring.AccessWrite, "tcp://127.0.0.1:5432"),
		ev("ebpf", 1, ring.OpConnect, ring.AccessWrite, "tcp://127.0.0.1:5432"),
		ev("ring", 1, ring.OpSendto, ring.AccessWrite, "udp://127.0.0.53:53"),
		ev("ring", 1, ring.OpRename, ring.AccessWrite, "/tmp/a"),
		ev("ebpf", 2, ring.OpOpenat, ring.AccessWrite, "/tmp/static-out"),
		ev("", 2, ring.OpOpenat, ring.AccessWrite, "/tmp/from-an-old-store"),
	), map[trace.ProcKey]string{{PID: 2, StartNs: 100}: "/usr/local/bin/static"}, nil)
	require.NoError(t, err)

	require.Len(t, rep.Processes, 2)
	p1, p2 := rep.Processes[0], rep.Processes[1]
	assert.Equal(t, 2, p1.Both, "fopen of /etc/./conf is openat of /etc/conf; a connect's endpoint is one pair")
	assert.Equal(t, []Seen{{Path: "/usr/lib/locale/C.utf8/LC_CTYPE", Access: "read", Ops: []string{"openat"}}}, p1.EBPFOnly)
	assert.Equal(t, []Seen{{Path: "/tmp/a", Access: "write", Ops: []string{"rename"}}}, p1.ShimOnly)
	assert.Equal(t, "/usr/local/bin/static", p2.Exe)
	assert.False(t, p2.Shim)
	assert.Equal(t, Summary{EBPFPairs: 4, ShimPairs: 3, Both: 2, ShimCoverage: 2.0 / 4, EBPFCoverage: 2.0 / 3,
		NotComparable: 2, Processes: 2, ShimBlind: 1}, rep.Summary, "mkfifo and a datagram send are not comparable")
}

func TestAPathIsAWriteIfAnyCallWroteAndFailedOnlyIfEveryCallFailed(t *testing.T) {
	ev := func(src string, op ring.Op, access uint8, path string, result int32) store.Event {
		return store.Event{Source: src, PID: 7, StartNs: 5, Op: op, Access: access, Path: path, Result: result}
	}
	rep, err := Compare(covEvents(
		ev("ebpf", ring.OpOpenat, ring.AccessRead, "/var/lib/app/db", 3),
		ev("ebpf", ring.OpOpenat, ring.AccessWrite, "/var/lib/app/db", 4),
		ev("ebpf", ring.OpOpenat, ring.AccessRead, "/etc/missing", -2),
		ev("ebpf", ring.OpStat, ring.AccessRead, "/etc/missing", -2),
		ev("fifo", ring.OpOpen, ring.AccessRead, "/etc/hosts", 3),
		ev("ebpf", ring.OpOpenat, ring.AccessRead, "/etc//hosts", 3),
		ev("ring", ring.OpRename, ring.AccessWrite, "relative.tmp", 0),
	), nil, func(p *Process) string { return "why " + p.Exe })
	require.NoError(t, err)

	require.Len(t, rep.Processes, 1)
	p := rep.Processes[0]
	assert.Equal(t, 1, p.Both, "a fifo source is the shim's and //hosts is /etc/hosts")
	assert.Equal(t, []Seen{
		{Path: "/etc/missing", Access: "read", Ops: []string{"openat", "stat"}, Failed: true},
		{Path: "/var/lib/app/db", Access: "write", Ops: []string{"openat"}},
	}, p.EBPFOnly)
	assert.Empty(t, p.ShimOnly, "a relative path is not compared")
	assert.Equal(t, "why ", p.Why, "the caller's why is asked for every process")
	assert.Equal(t, Summary{EBPFPairs: 3, ShimPairs: 1, Both: 1, ShimCoverage: 1.0 / 3, EBPFCoverage: 1, Processes: 1}, rep.Summary)
}

func TestProcessesAreOrderedByStartTimeThenPid(t *testing.T) {
	ev := func(pid int32, start uint64) store.Event {
		return store.Event{Source: "ebpf", PID: pid, StartNs: start, Op: ring.OpOpenat, Path: "/x", Result: 3}
	}
	rep, err := Compare(covEvents(ev(9, 20), ev(3, 20), ev(50, 10)), nil, nil)
	require.NoError(t, err)
	var got []trace.ProcKey
	for _, p := range rep.Processes {
		got = append(got, trace.ProcKey{PID: p.PID, StartNs: p.StartNs})
	}
	assert.Equal(t, []trace.ProcKey{{PID: 50, StartNs: 10}, {PID: 3, StartNs: 20}, {PID: 9, StartNs: 20}}, got)
	assert.Equal(t, 3, rep.Summary.ShimBlind)
}
