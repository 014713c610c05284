package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/planner"
	"github.com/restrack/restrack/ring"
)

func init() {
	register("coverage", "what the shim and the eBPF mode each saw that the other did not", func(args []string) int {
		return runCoverage(args, os.Stdout, os.Stderr)
	})
}

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

// covSeen is what one side saw of one (process, path).
type covSeen struct {
	Path   string   `json:"path"`
	Access string   `json:"access"` // "write" if any call was a write, else "read"
	Ops    []string `json:"ops"`
	Failed bool     `json:"failed"` // every call failed
}

type covProcess struct {
	PID      int32     `json:"pid"`
	StartNs  uint64    `json:"start_ns"`
	Exe      string    `json:"exe"`
	Shim     bool      `json:"seen_by_shim"` // the shim recorded anything for this process
	EBPF     bool      `json:"seen_by_ebpf"`
	EBPFOnly []covSeen `json:"ebpf_only"`
	ShimOnly []covSeen `json:"shim_only"`
	Both     int       `json:"both"`
	// Why says why one side saw nothing of the process, when it did.
	Why string `json:"why,omitempty"`
}

type covSummary struct {
	EBPFPairs     int     `json:"ebpf_pairs"` // distinct (process, path) the kernel saw
	ShimPairs     int     `json:"shim_pairs"` // … the shim saw, on ops both trace
	Both          int     `json:"both"`
	ShimCoverage  float64 `json:"shim_coverage"`  // both / ebpf_pairs: share of the kernel's view the shim also had
	EBPFCoverage  float64 `json:"ebpf_coverage"`  // both / shim_pairs
	NotComparable int     `json:"not_comparable"` // shim pairs from ops the eBPF mode does not trace
	Processes     int     `json:"processes"`
	ShimBlind     int     `json:"processes_without_shim"` // processes only the kernel saw
}

type covReport struct {
	Processes []*covProcess `json:"processes"`
	Summary   covSummary    `json:"summary"`
}

type covKey struct {
	proc planner.ProcKey
	path string
}

type covAcc struct {
	write, ok bool
	ops       map[string]bool
}

func (a *covAcc) add(e *store.Event) {
	if a.ops == nil {
		a.ops = map[string]bool{}
	}
	a.ops[e.Op.String()] = true
	a.write = a.write || e.Access == ring.AccessWrite
	a.ok = a.ok || e.Result >= 0
}

func (a *covAcc) seen(path string) covSeen {
	s := covSeen{Path: path, Access: "read", Failed: !a.ok}
	if a.write {
		s.Access = "write"
	}
	for op := range a.ops {
		s.Ops = append(s.Ops, op)
	}
	sort.Strings(s.Ops)
	return s
}

// coverage compares the events of the shim's sources with the eBPF mode's,
// per process (pid + start time) and absolute path. Paths are compared
// cleaned ("/a/./b" is "/a/b"): the shim and the kernel side spell a
// relative path's resolution differently. The second path of a rename or
// link counts as a path of its own.
func coverage(events func(fn func(*store.Event) error) error, exes map[planner.ProcKey]string) (*covReport, error) {
	shim := map[covKey]*covAcc{}
	kern := map[covKey]*covAcc{}
	procs := map[planner.ProcKey]*covProcess{}
	notComparable := map[covKey]bool{}
	err := events(func(e *store.Event) error {
		side, fromShim := kern, shimKinds[e.Source]
		switch {
		case fromShim:
			side = shim
		case e.Source == kernelKind:
		default:
			return nil // unknown or pre-coverage events: not comparable
		}
		pk := planner.ProcKey{PID: e.PID, StartNs: e.StartNs}
		p := procs[pk]
		if p == nil {
			p = &covProcess{PID: e.PID, StartNs: e.StartNs, Exe: exes[pk]}
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
			k := covKey{pk, path}
			if !endpoint {
				k.path = filepath.Clean(path)
			}
			if fromShim && notTraced[e.Op] {
				notComparable[k] = true
				continue
			}
			a := side[k]
			if a == nil {
				a = &covAcc{}
				side[k] = a
			}
			a.add(e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	r := &covReport{}
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
		byPath := func(s []covSeen) func(i, j int) bool { return func(i, j int) bool { return s[i].Path < s[j].Path } }
		sort.Slice(p.EBPFOnly, byPath(p.EBPFOnly))
		sort.Slice(p.ShimOnly, byPath(p.ShimOnly))
		p.Why = blindWhy(p)
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

func runCoverage(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restrack coverage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("store", "./restrack-data", "trace store `DIR` written by restrack run --mode ring+ebpf")
	asJSON := fs.Bool("json", false, "print one JSON object instead of the table")
	all := fs.Bool("all", false, "also list the processes where both saw the same paths")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: restrack coverage [--store DIR] [--json] [--all]\n\n"+
			"Lists, per process, the paths the eBPF mode saw and the shim did not, and\n"+
			"the reverse, then the share of each side's (process, path) pairs the other\n"+
			"also saw. The store must hold a run with both: restrack run --mode ring+ebpf.\n\n")
		fs.PrintDefaults()
	}
	if code, ok := parseNoArgs(fs, args); !ok {
		return code
	}
	rep, err := loadCoverage(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "restrack coverage: %v\n", err)
		return 1
	}
	if rep.Summary.EBPFPairs == 0 {
		fmt.Fprintf(stderr, "restrack coverage: store %s holds no events of the eBPF mode: trace with restrack run --mode ring+ebpf\n", *dir)
		return 1
	}
	if rep.Summary.ShimPairs == 0 {
		// Legitimate for a static binary; a mistake after --mode ebpf.
		fmt.Fprintf(stderr, "restrack coverage: note: the shim recorded nothing in %s (a static or setuid workload, or a run without --mode ring+ebpf)\n", *dir)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "restrack coverage: %v\n", err)
			return 1
		}
		return 0
	}
	printCoverage(stdout, rep, *all)
	return 0
}

func loadCoverage(dir string) (*covReport, error) {
	s, err := store.Open(dir, store.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	ctx := context.Background()
	tr, err := s.Trace(ctx)
	if err != nil {
		return nil, err
	}
	exes := make(map[planner.ProcKey]string, len(tr.Processes))
	for _, p := range tr.Processes {
		exes[p.Key] = p.Exe
	}
	return coverage(func(fn func(*store.Event) error) error {
		return s.Events(ctx, store.EventFilter{}, fn)
	}, exes)
}

// blindWhy says why one side saw nothing of a process: for the shim, what
// its executable is (a static, Go or set-id program) when that explains
// it; else the causes that leave no trace in the file.
func blindWhy(p *covProcess) string {
	switch {
	case !p.Shim:
		if k := programKind(p.Exe); k != "" {
			return "not seen by the shim: " + untracedWhy[k]
		}
		return "not seen by the shim: LD_PRELOAD was cleared or dropped, or the process changed its uid before its first call (a service dropping privileges must reach the collector's rendezvous)"
	case !p.EBPF:
		return "not seen by the eBPF mode: outside the traced tree?"
	}
	return ""
}

func printCoverage(w io.Writer, r *covReport, all bool) {
	for _, p := range r.Processes {
		if !all && len(p.EBPFOnly) == 0 && len(p.ShimOnly) == 0 {
			continue
		}
		note := ""
		if p.Why != "" {
			note = "  [" + p.Why + "]"
		}
		fmt.Fprintf(w, "pid %d (start %d) %s: %d paths seen by both%s\n", p.PID, p.StartNs, p.Exe, p.Both, note)
		for _, s := range p.EBPFOnly {
			fmt.Fprintf(w, "  ebpf only  %-5s %s  (%s%s)\n", s.Access, quotePath(s.Path), strings.Join(s.Ops, ","), failedNote(s))
		}
		for _, s := range p.ShimOnly {
			fmt.Fprintf(w, "  shim only  %-5s %s  (%s%s)\n", s.Access, quotePath(s.Path), strings.Join(s.Ops, ","), failedNote(s))
		}
	}
	s := r.Summary
	fmt.Fprintf(w, "\nsummary: %d processes, %d seen by the eBPF mode only\n", s.Processes, s.ShimBlind)
	fmt.Fprintf(w, "  the shim saw %d of the %d (process, path) pairs the kernel saw: %.1f%%\n", s.Both, s.EBPFPairs, 100*s.ShimCoverage)
	fmt.Fprintf(w, "  the kernel saw %d of the %d pairs the shim saw: %.1f%%", s.Both, s.ShimPairs, 100*s.EBPFCoverage)
	if s.NotComparable > 0 {
		fmt.Fprintf(w, " (%d more from ops the eBPF mode does not trace)", s.NotComparable)
	}
	fmt.Fprintln(w)
}

func failedNote(s covSeen) string {
	if s.Failed {
		return ", failed"
	}
	return ""
}

// quotePath keeps one path per line whatever bytes it holds.
func quotePath(p string) string {
	if strings.ContainsAny(p, "\n\t\r ") || !isPrintable(p) {
		return fmt.Sprintf("%q", p)
	}
	return p
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return false
		}
	}
	return true
}
