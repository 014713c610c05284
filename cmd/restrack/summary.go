package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"

	"github.com/restrack/restrack/planner"
)

func init() {
	register("summary", "counts of calls by op, by process and by file, like strace -c", func(args []string) int {
		return runSummaryCmd(args, os.Stdout, os.Stderr)
	})
}

// summaryRow is one line of a summary table: calls, of which failed and
// of which wrote, for one op, process or file.
type summaryRow struct {
	Name     string `json:"name"`
	PID      int32  `json:"pid,omitempty"`
	StartNs  uint64 `json:"start_ns,omitempty"`
	Calls    uint64 `json:"calls"`
	Failures uint64 `json:"failures"`
	Writes   uint64 `json:"writes"`
	Procs    int    `json:"processes,omitempty"` // for a file: how many processes used it
}

type summaryOut struct {
	Calls         uint64       `json:"calls"`
	Failures      uint64       `json:"failures"`
	Processes     int          `json:"processes"`
	Files         int          `json:"files"`
	DroppedEvents uint64       `json:"dropped_events"`
	ByOp          []summaryRow `json:"by_op"`
	ByProcess     []summaryRow `json:"by_process"`
	ByFile        []summaryRow `json:"by_file"`
}

// summarize folds the trace's aggregated accesses (never the raw events,
// so it is as fast on a day's trace as on a minute's).
func summarize(tr *planner.Trace, top int) summaryOut {
	out := summaryOut{DroppedEvents: tr.DroppedEvents, Processes: len(tr.Processes)}
	ops := map[string]*summaryRow{}
	procs := map[planner.ProcKey]*summaryRow{}
	files := map[string]*summaryRow{}
	fileProcs := map[string]map[planner.ProcKey]bool{}
	add := func(r *summaryRow, a *planner.Access) {
		r.Calls += a.Count + a.Failures
		r.Failures += a.Failures
		if a.Write {
			r.Writes += a.Count + a.Failures
		}
	}
	cmd := map[planner.ProcKey]string{}
	for _, p := range tr.Processes {
		cmd[p.Key] = planner.ShortCommand(p.Exe, p.Argv)
	}
	for i := range tr.Accesses {
		a := &tr.Accesses[i]
		out.Calls += a.Count + a.Failures
		out.Failures += a.Failures
		if ops[a.Op] == nil {
			ops[a.Op] = &summaryRow{Name: a.Op}
		}
		add(ops[a.Op], a)
		if procs[a.Proc] == nil {
			procs[a.Proc] = &summaryRow{Name: cmd[a.Proc], PID: a.Proc.PID, StartNs: a.Proc.StartNs}
		}
		add(procs[a.Proc], a)
		if files[a.Path] == nil {
			files[a.Path] = &summaryRow{Name: a.Path}
			fileProcs[a.Path] = map[planner.ProcKey]bool{}
		}
		add(files[a.Path], a)
		fileProcs[a.Path][a.Proc] = true
	}
	out.Files = len(files)
	sorted := func(m map[string]*summaryRow) []summaryRow {
		rows := make([]summaryRow, 0, len(m))
		for _, r := range m {
			rows = append(rows, *r)
		}
		return rows
	}
	byCalls := func(rows []summaryRow) []summaryRow {
		sort.Slice(rows, func(i, j int) bool {
			if rows[i].Calls != rows[j].Calls {
				return rows[i].Calls > rows[j].Calls
			}
			if rows[i].Name != rows[j].Name {
				return rows[i].Name < rows[j].Name
			}
			return rows[i].PID < rows[j].PID
		})
		if top > 0 && len(rows) > top {
			rows = rows[:top]
		}
		return rows
	}
	out.ByOp = byCalls(sorted(ops))
	var pr []summaryRow
	for _, r := range procs {
		pr = append(pr, *r)
	}
	out.ByProcess = byCalls(pr)
	fr := sorted(files)
	for i := range fr {
		fr[i].Procs = len(fileProcs[fr[i].Name])
	}
	out.ByFile = byCalls(fr)
	return out
}

func runSummaryCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restrack summary", flag.ContinueOnError)
	fs.SetOutput(stderr)
	storeDir := fs.String("store", "./restrack-data", "trace store `DIR`")
	asJSON := fs.Bool("json", false, "one JSON object: totals, by_op, by_process, by_file")
	top := fs.Int("top", 10, "rows of the process and file tables (`N`; 0: all); every op is listed")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: restrack summary [--store DIR] [--json] [--top N]\n\n"+
			"Counts the traced calls on paths — by op, by process and by file, with their\n"+
			"failures and writes — like strace -c, from the store's aggregates.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if code, ok := parseNoArgs(fs, args); !ok {
		return code
	}
	if *top < 0 {
		fmt.Fprintf(stderr, "restrack summary: --top %d: want 0 or more\n", *top)
		return 2
	}
	tr, err := loadTrace(*storeDir)
	if err != nil {
		fmt.Fprintf(stderr, "restrack summary: %v\n", err)
		return 1
	}
	s := summarize(tr, 0)
	ops := s.ByOp
	s = summarize(tr, *top)
	s.ByOp = ops
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			fmt.Fprintf(stderr, "restrack summary: %v\n", err)
			return 1
		}
		return 0
	}
	ew := &errWriter{w: stdout}
	width := termWidth(stdout)
	ew.printf("%d calls on %d paths by %d processes, %d failed", s.Calls, s.Files, s.Processes, s.Failures)
	if s.DroppedEvents > 0 {
		ew.printf("; WARNING: %d records lost, counts are low", s.DroppedEvents)
	}
	ew.printf("\n\n%6s %10s %9s %9s  %s\n", "% CALLS", "CALLS", "FAILED", "WRITES", "OP")
	for _, r := range s.ByOp {
		pct := 0.0
		if s.Calls > 0 {
			pct = 100 * float64(r.Calls) / float64(s.Calls)
		}
		ew.printf("%6.2f%% %10d %9d %9d  %s\n", pct, r.Calls, r.Failures, r.Writes, r.Name)
	}
	ew.printf("\n%10s %9s %9s  %8s  %s\n", "CALLS", "FAILED", "WRITES", "PID", "PROCESS (top "+strconv.Itoa(len(s.ByProcess))+")")
	for _, r := range s.ByProcess {
		ew.printf("%10d %9d %9d  %8d  %s\n", r.Calls, r.Failures, r.Writes, r.PID, planner.ElideMiddle(r.Name, max(16, width-43)))
	}
	ew.printf("\n%10s %9s %9s  %8s  %s\n", "CALLS", "FAILED", "WRITES", "PROCS", "FILE (top "+strconv.Itoa(len(s.ByFile))+")")
	for _, r := range s.ByFile {
		ew.printf("%10d %9d %9d  %8d  %s\n", r.Calls, r.Failures, r.Writes, r.Procs, planner.ElideMiddle(string(appendPath(nil, r.Name)), max(16, width-43)))
	}
	if ew.err != nil {
		fmt.Fprintf(stderr, "restrack summary: %v\n", ew.err)
		return 1
	}
	return 0
}
