package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/fleet"
	"github.com/restrack/restrack/planner"
)

func init() {
	register("plan", "which APs and files move with an AP, which files are copied", func(args []string) int {
		return runPlan(args, os.Stdout, os.Stderr)
	})
}

// planFlags are the flags plan and explain share: where the trace is, what
// to move, and which paths to ignore.
type planFlags struct {
	store       string
	ap          string
	processOnly bool
	showFailed  bool
	noDefaults  bool
	noLookups   bool
	ignoreFile  string
	ignore      listFlag
	keep        listFlag
	fleet       string       // plan across hosts from this database
	socket      string       // ask the collector listening here
	names       *fleet.Names // set by a fleet plan: its names for output
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func (f *planFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.store, "store", "./restrack-data", "trace store `DIR` (written by restrack run)")
	fs.StringVar(&f.ap, "ap", "", "the AP to move: `PID`, PID@START_NS or PID@latest when the pid was reused,\nor a command name naming one process (required; restrack ps lists them)")
	fs.StringVar(&f.socket, "socket", "", "ask the collector listening on `PATH` (its -socket) instead of reading the store")
	fs.StringVar(&f.fleet, "fleet", "", "plan across hosts from the fleet database at PostgreSQL `DSN` (docs/fleet.md); --ap is then HOST:PID")
	fs.BoolVar(&f.processOnly, "process-only", false, "move the process alone, not its descendants")
	fs.BoolVar(&f.showFailed, "show-failed", false, "list the failed calls of moving processes (they create no dependency)")
	fs.BoolVar(&f.noLookups, "no-lookups", false, "leave stat-family lookups (access \"lookup\": stat, access, readlink…) out;\nby default a lookup counts as a read, since a file's existence is shared state")
	fs.BoolVar(&f.noDefaults, "no-default-ignores", false, "drop the default ignore rules (/proc, /sys, /dev, system libraries…)")
	fs.StringVar(&f.ignoreFile, "ignore-file", "", "ignore rules `FILE`: one rule a line (as --ignore), !RULE keeps, # comments\n(default $XDG_CONFIG_HOME/restrack/ignore when it exists)")
	fs.Var(&f.ignore, "ignore", "also ignore `PATH`: a path prefix, a glob over the path, or a file name\nwithout a slash (matches the last element, e.g. '*.pyc'); repeatable")
	fs.Var(&f.keep, "keep", "never ignore `PATH` (same forms as --ignore), even under a default rule; repeatable")
}

// defaultIgnoreFile is the per-user rules file read when --ignore-file is
// not given, so site rules need not be repeated on every command.
func defaultIgnoreFile() string {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".config")
	}
	p := filepath.Join(dir, "restrack", "ignore")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

func (f *planFlags) rules() (*planner.Rules, error) {
	r := planner.NewRules(!f.noDefaults)
	r.NoLookups = f.noLookups
	file := f.ignoreFile
	if file == "" {
		file = defaultIgnoreFile()
	}
	if file != "" {
		if err := r.LoadFile(file); err != nil {
			return nil, err
		}
	}
	for _, p := range f.ignore {
		if err := r.Ignore(p); err != nil {
			return nil, err
		}
	}
	for _, p := range f.keep {
		if err := r.Keep(p); err != nil {
			return nil, err
		}
	}
	if len(f.ignore) > 0 || len(f.keep) > 0 {
		r.Sources = append(r.Sources, "flags")
	}
	return r, nil
}

// loadTrace reads the planner's input from the store, read-only, so a plan
// can be asked for while a collector is still writing.
func loadTrace(dir string) (*planner.Trace, error) {
	s, err := store.Open(dir, store.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Trace(context.Background())
}

// plan loads the trace, resolves --ap and computes the plan.
func (f *planFlags) plan() (*planner.Trace, *planner.Plan, error) {
	if f.socket != "" { // plan and explain ask the daemon before they get here
		return nil, nil, usageError{errors.New("--socket: this command reads the store itself; give --store DIR")}
	}
	if f.ap == "" {
		return nil, nil, usageError{errors.New("--ap PID is required: the process whose AP should move (restrack ps --store DIR lists the traced processes)")}
	}
	rules, err := f.rules()
	if err != nil {
		return nil, nil, err
	}
	if f.fleet != "" {
		return f.fleetPlan(rules)
	}
	tr, err := loadTrace(f.store)
	if err != nil {
		return nil, nil, err
	}
	key, err := planner.Resolve(tr, f.ap)
	var spec *planner.SpecError
	if errors.As(err, &spec) {
		return nil, nil, usageError{fmt.Errorf("--ap: %w", err)}
	}
	if err != nil {
		return nil, nil, err
	}
	pl, err := planner.Compute(tr, planner.Options{AP: key, ProcessOnly: f.processOnly, Rules: rules, ShowFailed: f.showFailed})
	return tr, pl, err
}

func runPlan(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restrack plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var pf planFlags
	pf.register(fs)
	asJSON := fs.Bool("json", false, "print the plan as one JSON object (the stable contract of design §11)")
	asDOT := fs.Bool("dot", false, "print the plan as a Graphviz graph (render: dot -Tsvg)")
	traceOnly := fs.Bool("trace-only", false, "do not look at this host: liveness, file kinds and sizes from the trace alone\n(for a store copied from another machine)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: restrack plan [--store DIR] --ap PID [--json | --dot] [flags]\n\n"+
			"Prints which APs and processes must move with AP PID (the process and its\n"+
			"descendants), which files move, and which move with a copy left behind.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if code, ok := parseNoArgs(fs, args); !ok {
		return code
	}
	if *asJSON && *asDOT {
		fmt.Fprintln(stderr, "restrack plan: --json and --dot exclude each other")
		return 2
	}
	if pf.socket != "" {
		if err := remotePlan(&pf, *asJSON, *asDOT, stdout); err != nil {
			fmt.Fprintf(stderr, "restrack plan: %v\n", err)
			return errorStatus(err)
		}
		return 0
	}
	_, pl, err := pf.plan()
	if err != nil {
		fmt.Fprintf(stderr, "restrack plan: %v\n", err)
		return errorStatus(err)
	}
	if !*traceOnly && pf.fleet == "" { // a fleet plan's processes and files are on other hosts
		pl.Enrich(planner.LocalHost{})
	}
	stdout, finish := pf.output(stdout, *asJSON)
	switch {
	case *asJSON:
		err = pl.WriteJSON(stdout)
	case *asDOT:
		err = pl.WriteDOT(stdout)
	default:
		err = pl.WriteTableWidth(stdout, termWidth(stdout))
	}
	if err == nil {
		err = finish()
	}
	if err != nil {
		fmt.Fprintf(stderr, "restrack plan: write: %v\n", err)
		return 1
	}
	return 0
}
