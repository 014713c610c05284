package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/coverage"
	"github.com/restrack/restrack/trace"
)

func init() {
	register("coverage", "what the shim and the eBPF mode each saw that the other did not", func(args []string) int {
		return runCoverage(args, os.Stdout, os.Stderr)
	})
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

func loadCoverage(dir string) (*coverage.Report, error) {
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
	exes := make(map[trace.ProcKey]string, len(tr.Processes))
	for _, p := range tr.Processes {
		exes[p.Key] = p.Exe
	}
	return coverage.Compare(func(fn func(*store.Event) error) error {
		return s.Events(ctx, store.EventFilter{}, fn)
	}, exes, blindWhy)
}

// blindWhy says why one side saw nothing of a process: for the shim, what
// its executable is (a static, Go or set-id program) when that explains
// it; else the causes that leave no trace in the file.
func blindWhy(p *coverage.Process) string {
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

func printCoverage(w io.Writer, r *coverage.Report, all bool) {
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

func failedNote(s coverage.Seen) string {
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
