// Command restrack-bench runs restrack's benchmark suite (package bench):
// the paper's open experiment under every tracing mode side by side, and
// the collector's and planner's scale figures. `make bench` runs it in
// full, `make bench-quick` reduced; docs/bench.md explains the figures.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/restrack/restrack/bench"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("restrack-bench", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "reduced run (< 1 min): few rounds and calls, small scale and planner sizes; asserts nothing about speed")
	parts := fs.String("parts", "", "comma-separated parts to run: overhead, run (whole workloads under restrack run), append (C ring append), scale, ingest, planner (default all)")
	modes := fs.String("modes", "", "comma-separated overhead modes (default all: "+strings.Join(bench.ModeNames(), ",")+")")
	rounds := fs.Int("rounds", 0, "rounds of the overhead tables: each mode runs each table once per round (default 20, quick 2)")
	calls := fs.Int("calls", 0, "timed calls per repetition in the warm tables (default 20000, quick 2000; strace modes a tenth)")
	coldCalls := fs.Int("cold-calls", 0, "timed opens per repetition in the cold table (default 300, quick 20)")
	bin := fs.String("bin", "build", "directory holding librestrack.so, collector, restrack, openloop, openloop-lttng, scanloop and ring_append")
	work := fs.String("work", "/var/tmp", "scratch parent directory; not tmpfs (tmpfs pins dentries, so a cold open stays warm)")
	out := fs.String("out", "build/bench", "directory for the run's JSON")
	plots := fs.String("plots", "", "directory for the plots (default: -out)")
	goCmd := fs.String("go", "go", "go command, to build the planner's benchmark")
	commit := fs.String("commit", "", "source revision the binaries were built from, recorded in the results (default: git describe of the working directory)")
	plannerMax := fs.Int("planner-max", 0, "largest planner trace in accesses (default 10000000, quick 100000)")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of the harness (the in-process ingest part runs the collector here) to `FILE`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "restrack-bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	o := bench.Options{
		Quick: *quick, Rounds: *rounds, Calls: *calls, ColdCalls: *coldCalls, PlannerMax: *plannerMax,
		BinDir: *bin, WorkDir: *work, OutDir: *out, PlotDir: *plots, Go: *goCmd,
		Command: "restrack-bench " + strings.Join(args, " "), Commit: *commit, Out: os.Stdout, Log: os.Stderr,
	}
	if *parts != "" {
		o.Parts = strings.Split(*parts, ",")
	}
	if *modes != "" {
		o.Modes = strings.Split(*modes, ",")
	}
	if err := o.Defaults(); err != nil {
		fmt.Fprintf(os.Stderr, "restrack-bench: %v\n", err)
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "restrack-bench: cpu profile: %v\n", err)
			return 1
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if _, err := bench.Execute(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "restrack-bench: %v\n", err)
		return 1
	}
	return 0
}
