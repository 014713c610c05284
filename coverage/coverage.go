// Package coverage compares what the shim recorded with what the eBPF mode
// saw of the same run, per process and path: the engine behind
// `restrack coverage`, kept out of the CLI so that tests and benchmarks use
// the same comparison. It reads store events and trace identities and
// nothing downstream of the store.
package coverage

import (
	"path/filepath"
	"sort"
	"strings"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/ring"
	"github.com/restrack/restrack/trace"
)

// Source kinds on each side of the comparison: the shim's transports, and
// the kernel.
var shimKinds = map[string]bool{"ring": true, "fifo": true}

const kernelKind = "ebpf"

// notTraced are shim ops the eBPF mode has no tracepoint for: a shim-only
// path from one of them says nothing about the shim's coverage.
var notTraced = map[ring.Op]bool{
	ring.OpSymlink: true, ring.OpSymlinkat: true, ring.OpMknod: true, ring.OpMknodat: true,
	ring.OpMkfifo: true, ring.OpMkfifoat: true, ring.OpMqOpen: true, ring.OpMqUnlink: true,
	// The kernel side traces bind, connect, listen and accept (AF_UNIX
	// paths and network endpoints alike), not datagram sends.
	ring.OpSendto: true, ring.OpSendmsg: true,
}

// Seen is what one side saw of one (process, path).
type Seen struct {
	Path   string   `json:"path"`
	Access string   `json:"access"` // "write" if any call was a write, else "read"
	Ops    []string `json:"ops"`
	Failed bool     `json:"failed"` // every call failed
}

// Process is one process's side-by-side view.
type Process struct {
	PID      int32  `json:"pid"`
	StartNs  uint64 `json:"start_ns"`
	Exe      string `json:"exe"`
	Shim     bool   `json:"seen_by_shim"` // the shim recorded anything for this process
	EBPF     bool   `json:"seen_by_ebpf"`
	EBPFOnly []Seen `json:"ebpf_only"`
	ShimOnly []Seen `json:"shim_only"`
	Both     int    `json:"both"`
	// Why says why one side saw nothing of the process, when it did.
	Why string `json:"why,omitempty"`
}

// Summary counts (process, path) pairs over the whole run.
type Summary struct {
	EBPFPairs     int     `json:"ebpf_pairs"` // distinct (process, path) the kernel saw
	ShimPairs     int     `json:"shim_pairs"` // … the shim saw, on ops both trace
	Both          int     `json:"both"`
	ShimCoverage  float64 `json:"shim_coverage"`  // both / ebpf_pairs: share of the kernel's view the shim also had
	EBPFCoverage  float64 `json:"ebpf_coverage"`  // both / shim_pairs
	NotComparable int     `json:"not_comparable"` // shim pairs from ops the eBPF mode does not trace
	Processes     int     `json:"processes"`
	ShimBlind     int     `json:"processes_without_shim"` // processes only the kernel saw
}

// Report is the comparison: processes ordered by start time, then pid.
type Report struct {
	Processes []*Process `json:"processes"`
	Summary   Summary    `json:"summary"`
}

type key struct {
	proc trace.ProcKey
	path string
}

type acc struct {
	write, ok bool
	ops       map[string]bool
}

func (a *acc) add(e *store.Event) {
	if a.ops == nil {
		a.ops = map[string]bool{}
	}
	a.ops[e.Op.String()] = true
	a.write = a.write || e.Access == ring.AccessWrite
	a.ok = a.ok || e.Result >= 0
}

func (a *acc) seen(path string) Seen {
	s := Seen{Path: path, Access: "read", Failed: !a.ok}
	if a.write {
		s.Access = "write"
	}
	for op := range a.ops {
		s.Ops = append(s.Ops, op)
	}
	sort.Strings(s.Ops)
	return s
}

// Compare compares the events of the shim's sources with the eBPF mode's,
// per process (pid + start time) and absolute path. Paths are compared
// cleaned ("/a/./b" is "/a/b"): the shim and the kernel side spell a
// relative path's resolution differently. The second path of a rename or
// link counts as a path of its own. exes names each process's executable;
// why, when not nil, fills Process.Why (the caller knows how to tell a
// static or set-id program).
func Compare(events func(fn func(*store.Event) error) error, exes map[trace.ProcKey]string, why func(*Process) string) (*Report, error) {
	shim := map[key]*acc{}
	kern := map[key]*acc{}
	procs := map[trace.ProcKey]*Process{}
	notComparable := map[key]bool{}
	err := events(func(e *store.Event) error {
		side, fromShim := kern, shimKinds[e.Source]
		switch {
		case fromShim:
			side = shim
		case e.Source == kernelKind:
		default:
			return nil // unknown or pre-coverage events: not comparable
		}
		pk := trace.ProcKey{PID: e.PID, StartNs: e.StartNs}
		p := procs[pk]
		if p == nil {
			p = &Process{PID: e.PID, StartNs: e.StartNs, Exe: exes[pk]}
			procs[pk] = p
		}
		if e.Source == kernelKind {
			p.EBPF = true
		} else {
			p.Shim = true
		}
		for _, path := range []string{e.Path, e.Path2} {
			endpoint := strings.Contains(path, "://") // tcp://127.0.0.1:5432, compared as written
			if path == "" || !strings.HasPrefix(path, "/") && !endpoint {
				continue // a symlink's target text, or a path left relative
			}
			k := key{pk, path}
			if !endpoint {
				k.path = filepath.Clean(path)
			}
			if fromShim && notTraced[e.Op] {
				notComparable[k] = true
				continue
			}
			a := side[k]
			if a == nil {
				a = &acc{}
				side[k] = a
			}
			a.add(e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	r := &Report{}
	for k, a := range kern {
		p := procs[k.proc]
		if _, ok := shim[k]; ok {
			p.Both++
			r.Summary.Both++
		} else {
			p.EBPFOnly = append(p.EBPFOnly, a.seen(k.path))
		}
	}
	for k, a := range shim {
		if _, ok := kern[k]; !ok {
			procs[k.proc].ShimOnly = append(procs[k.proc].ShimOnly, a.seen(k.path))
		}
	}
	for _, p := range procs {
		byPath := func(s []Seen) func(i, j int) bool { return func(i, j int) bool { return s[i].Path < s[j].Path } }
		sort.Slice(p.EBPFOnly, byPath(p.EBPFOnly))
		sort.Slice(p.ShimOnly, byPath(p.ShimOnly))
		if why != nil {
			p.Why = why(p)
		}
		r.Processes = append(r.Processes, p)
		if !p.Shim {
			r.Summary.ShimBlind++
		}
	}
	sort.Slice(r.Processes, func(i, j int) bool {
		a, b := r.Processes[i], r.Processes[j]
		if a.StartNs != b.StartNs {
			return a.StartNs < b.StartNs
		}
		return a.PID < b.PID
	})
	s := &r.Summary
	s.EBPFPairs, s.ShimPairs, s.Processes, s.NotComparable = len(kern), len(shim), len(procs), len(notComparable)
	if s.EBPFPairs > 0 {
		s.ShimCoverage = float64(s.Both) / float64(s.EBPFPairs)
	}
	if s.ShimPairs > 0 {
		s.EBPFCoverage = float64(s.Both) / float64(s.ShimPairs)
	}
	return r, nil
}
