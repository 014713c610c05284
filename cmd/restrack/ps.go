package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/restrack/restrack/internal/usock"
	"github.com/restrack/restrack/planner"
)

func init() {
	register("ps", "the traced processes as a tree: find the PID to plan", func(args []string) int {
		return runPS(args, os.Stdout, os.Stderr)
	})
}

// psJSON is one process of `restrack ps --json`: the planner's entry and
// its times on the wall clock, when they can be converted (RFC 3339).
type psJSON struct {
	planner.PSEntry
	StartTime string `json:"start_time,omitempty"`
	ExitTime  string `json:"exit_time,omitempty"`
}

type psOutput struct {
	Store         string   `json:"store,omitempty"`
	Processes     []psJSON `json:"processes"`
	DroppedEvents uint64   `json:"dropped_events"`
	total         int      // before --depth
}

func runPS(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restrack ps", flag.ContinueOnError)
	fs.SetOutput(stderr)
	storeDir := fs.String("store", "./restrack-data", "trace store `DIR`")
	socket := fs.String("socket", "", "ask the collector listening on `PATH` instead of reading the store")
	asJSON := fs.Bool("json", false, "one JSON object: {\"processes\": [...], \"dropped_events\": N}")
	depth := fs.Int("depth", -1, "show the trees down to `N` levels below their roots (0: roots only; -1: all)")
	timeFmt := fs.String("time", "wall", "times as `wall` (local wall clock), rel (since the first process) or mono (raw ns)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: restrack ps [--store DIR | --socket PATH] [--json]\n\n"+
			"Lists the traced processes as a tree — each tree's root marked as an AP root —\n"+
			"with start and exit times, the calls each made on paths, and its command line,\n"+
			"so that you find the PID to give restrack plan --ap.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if code, ok := parseNoArgs(fs, args); !ok {
		return code
	}
	tf, err := parseTimeFormat(*timeFmt)
	if err != nil {
		fmt.Fprintf(stderr, "restrack ps: %v\n", err)
		return 2
	}
	var out psOutput
	if *socket != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := usock.Query(ctx, *socket, "ps", nil, &out); err != nil {
			fmt.Fprintf(stderr, "restrack ps: %v\n", err)
			return 1
		}
	} else {
		tr, err := loadTrace(*storeDir)
		if err != nil {
			fmt.Fprintf(stderr, "restrack ps: %v\n", err)
			return 1
		}
		out.Store = *storeDir
		out.DroppedEvents = tr.DroppedEvents
		for _, e := range planner.ProcessTree(tr) {
			out.Processes = append(out.Processes, psJSON{PSEntry: e})
		}
	}
	clk := newWallClock()
	for i := range out.Processes {
		p := &out.Processes[i]
		if t, ok := clk.wall(p.StartNs); ok {
			p.StartTime = t.Format(time.RFC3339Nano)
		}
		if t, ok := clk.wall(p.LastNs); ok && p.Exited {
			p.ExitTime = t.Format(time.RFC3339Nano)
		}
	}
	out.total = len(out.Processes)
	if *depth >= 0 {
		kept := out.Processes[:0]
		for _, p := range out.Processes {
			if p.Depth <= *depth {
				kept = append(kept, p)
			}
		}
		out.Processes = kept
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(stderr, "restrack ps: %v\n", err)
			return 1
		}
		return 0
	}
	if err := writePSTable(stdout, out, tf, clk, termWidth(stdout)); err != nil {
		fmt.Fprintf(stderr, "restrack ps: %v\n", err)
		return 1
	}
	return 0
}

func writePSTable(w io.Writer, out psOutput, tf timeFormat, clk wallClock, width int) error {
	ew := &errWriter{w: w}
	if len(out.Processes) == 0 {
		ew.printf("no traced process in the store (did the command run under restrack run, with the shim loaded?)\n")
		return ew.err
	}
	var base uint64
	for _, p := range out.Processes {
		if base == 0 || p.StartNs < base {
			base = p.StartNs
		}
	}
	where := ""
	if out.Store != "" {
		where = " in " + out.Store
	}
	shown := ""
	if out.total > len(out.Processes) {
		shown = fmt.Sprintf(" (%d shown)", len(out.Processes))
	}
	ew.printf("%d traced processes%s%s\ntimes: %s\n", out.total, shown, where, tf.describe(clk, base))
	if out.DroppedEvents > 0 {
		ew.printf("WARNING: %d records were lost: a process or a call may be missing (restrack status)\n", out.DroppedEvents)
	}
	const head = "AP     PID  %-12s  %-12s  EVENTS  COMMAND\n"
	ew.printf(head, "START", "EXIT")
	for _, p := range out.Processes {
		mark := " "
		if p.APRoot {
			mark = "*"
		}
		exit := "-"
		if p.Exited {
			exit = tf.format(clk, p.LastNs, base)
		}
		prefix := fmt.Sprintf("%s %8s  %-12s  %-12s  %6d  ", mark, p.AP, tf.format(clk, p.StartNs, base), exit, p.Events)
		cmd := strings.Repeat("  ", p.Depth) + planner.ShortCommand(p.Exe, p.Argv)
		if p.Descendants > 0 && len(out.Processes) < out.total {
			cmd = fmt.Sprintf("%s  [+%d]", cmd, p.Descendants)
		}
		ew.printf("%s%s\n", prefix, planner.ElideMiddle(cmd, max(16, width-len(prefix))))
	}
	ew.printf("\n* AP root: no traced process started it. [+N]: descendants not shown.\n"+
		"Plan a process and its descendants:\n  restrack plan --store %s --ap PID\n", storeArg(out.Store))
	return ew.err
}

func storeArg(s string) string {
	if s == "" {
		return "DIR"
	}
	return s
}
