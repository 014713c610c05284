package planner

import (
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

// traceBuilder writes hand-built traces that read like the workload they
// stand for. A pid names the latest process added with it; starts increase
// so each incarnation of a reused pid is a distinct process.
type traceBuilder struct {
	tr    Trace
	clock uint64
}

func newTrace() *traceBuilder { return &traceBuilder{} }

func (b *traceBuilder) key(pid int32) ProcKey {
	for i := len(b.tr.Processes) - 1; i >= 0; i-- {
		if b.tr.Processes[i].Key.PID == pid {
			return b.tr.Processes[i].Key
		}
	}
	return ProcKey{PID: pid, StartNs: 1}
}

// proc adds a process whose parent is the latest process with pid ppid.
func (b *traceBuilder) proc(pid, ppid int32, exe string, argv ...string) *traceBuilder {
	b.clock += 1000
	p := Process{Key: ProcKey{PID: pid, StartNs: b.clock}, PPID: ppid, Exe: exe, Argv: argv, FirstNs: b.clock, LastNs: b.clock + 10}
	if ppid != 0 {
		for i := len(b.tr.Processes) - 1; i >= 0; i-- {
			if b.tr.Processes[i].Key.PID == ppid {
				p.Parent = b.tr.Processes[i].Key
				break
			}
		}
	}
	b.tr.Processes = append(b.tr.Processes, p)
	return b
}

func (b *traceBuilder) exited(pid int32) *traceBuilder {
	for i := len(b.tr.Processes) - 1; i >= 0; i-- {
		if b.tr.Processes[i].Key.PID == pid {
			b.tr.Processes[i].Exited = true
			break
		}
	}
	return b
}

func (b *traceBuilder) access(pid int32, path, op string, write bool, count, failures uint64) *traceBuilder {
	b.clock++
	b.tr.Accesses = append(b.tr.Accesses, Access{Proc: b.key(pid), Path: path, Op: op, Write: write,
		Count: count, Failures: failures, FirstNs: b.clock, LastNs: b.clock})
	return b
}

func (b *traceBuilder) read(pid int32, paths ...string) *traceBuilder {
	for _, p := range paths {
		b.access(pid, p, "openat", false, 1, 0)
	}
	return b
}

func (b *traceBuilder) write(pid int32, paths ...string) *traceBuilder {
	for _, p := range paths {
		b.access(pid, p, "openat", true, 1, 0)
	}
	return b
}

func (b *traceBuilder) dropped(n uint64) *traceBuilder { b.tr.DroppedEvents = n; return b }

func (b *traceBuilder) trace() *Trace { t := b.tr; return &t }

// mustPlan resolves spec and plans it.
func mustPlan(tb testing.TB, tr *Trace, spec string, opts Options) *Plan {
	tb.Helper()
	k, err := Resolve(tr, spec)
	require.NoError(tb, err)
	opts.AP = k
	pl, err := Compute(tr, opts)
	require.NoError(tb, err)
	return pl
}

func apRoots(pl *Plan) []int32 {
	var out []int32
	for _, a := range pl.APs {
		out = append(out, a.Root)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func movedPIDs(pl *Plan) []int32 {
	var out []int32
	for _, p := range pl.MoveProcesses {
		out = append(out, p.PID)
	}
	return out
}

func moveFilePaths(pl *Plan) []string {
	out := []string{}
	for _, f := range pl.MoveFiles {
		out = append(out, f.Path)
	}
	return out
}

func copyFileMap(pl *Plan) map[string][]int32 {
	out := map[string][]int32{}
	for _, f := range pl.CopyFiles {
		out[f.Path] = f.ForPIDs
	}
	return out
}
