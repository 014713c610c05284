package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/restrack/restrack/collector"
)

// Options configure a suite run.
type Options struct {
	Quick      bool
	Parts      []string // of "overhead", "run", "append", "scale", "ingest", "planner"; empty = all
	Modes      []string // empty = all
	Rounds     int
	Calls      int // warm timed calls per repetition
	ColdCalls  int
	BinDir     string // librestrack.so, collector, restrack, openloop, openloop-lttng, scanloop
	WorkDir    string // scratch parent: must not be tmpfs (cold opens)
	OutDir     string // JSON and report
	PlotDir    string // plots; "" = OutDir
	Go         string // the go command, for the planner's benchmarks
	PlannerMax int    // largest planner trace, in accesses
	Command    string // how the run was invoked, recorded with it
	Commit     string // source revision; "" = ask git in the working directory
	Out, Log   io.Writer
}

// Run is everything one suite run measured: the JSON written per run.
type Run struct {
	Schema    string          `json:"schema"`
	Started   time.Time       `json:"started"`
	Seconds   float64         `json:"seconds"`
	Command   string          `json:"command"`
	Commit    string          `json:"commit"` // the source the binaries were built from (git describe)
	Quick     bool            `json:"quick"`
	Machine   Machine         `json:"machine"`
	LoadStart [3]float64      `json:"load_start"`
	LoadEnd   [3]float64      `json:"load_end"`
	Overhead  *OverheadResult `json:"overhead,omitempty"`
	// Workloads: whole workloads under restrack run (issue 12 §5).
	Workloads *WorkloadsResult `json:"workloads,omitempty"`
	Append    *AppendResult    `json:"append,omitempty"`
	Scale     *ScaleResult     `json:"scale,omitempty"`
	Ingest    []IngestRun      `json:"ingest,omitempty"`
	Planner   *PlannerResult   `json:"planner,omitempty"`
	Targets   []Target         `json:"targets"`
	Errors    []string         `json:"errors,omitempty"` // parts that failed
}

// Schema names the JSON layout; bump it when fields change meaning.
const Schema = "restrack-bench/1"

func (o *Options) wants(part string) bool { return len(o.Parts) == 0 || slices.Contains(o.Parts, part) }

// Execute runs the suite and writes its JSON into o.OutDir, returning the
// run. Tables are printed to o.Out as each part finishes.
func Execute(ctx context.Context, o Options) (*Run, error) {
	logf := func(format string, args ...any) { fmt.Fprintf(o.Log, "bench: "+format+"\n", args...) }
	start := time.Now() // keeps the monotonic reading UTC() would drop
	run := &Run{Schema: Schema, Started: start.UTC(), Command: o.Command, Commit: o.Commit, Quick: o.Quick, Machine: machine(), LoadStart: loadAvg()}
	if run.Commit == "" {
		run.Commit = gitDescribe()
	}
	fmt.Fprintf(o.Out, "restrack-bench: %s, %d CPUs, %s, %s, %s, %s\n", run.Machine.CPU, run.Machine.CPUs, run.Machine.Kernel, run.Machine.OS, run.Machine.Libc, run.Machine.Go)
	fmt.Fprintf(o.Out, "source: %s; load average at start: %.2f %.2f %.2f\n", run.Commit, run.LoadStart[0], run.LoadStart[1], run.LoadStart[2])

	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(o.WorkDir, "restrack-bench-")
	if err != nil {
		return nil, fmt.Errorf("scratch directory: %w", err)
	}
	defer os.RemoveAll(dir)
	env, err := newEnv(o, dir, logf)
	if err != nil {
		return nil, err
	}

	if o.wants("overhead") {
		var modes []Mode
		for _, m := range AllModes() {
			if len(o.Modes) == 0 || slices.Contains(o.Modes, m.Name()) {
				modes = append(modes, m)
			}
		}
		r, err := RunOverhead(ctx, OverheadConfig{Env: env, Modes: modes, Tables: Tables(o.Calls, o.ColdCalls), Rounds: o.Rounds, Logf: logf})
		if err != nil {
			run.fail("overhead", err, o.Out)
		} else {
			run.Overhead = r
			fmt.Fprintln(o.Out)
			WriteOverhead(o.Out, r)
		}
	}
	// A part that fails does not take the others with it: they are
	// independent, and a long run should keep what it measured.
	if o.wants("run") && ctx.Err() == nil {
		r, err := RunWorkloads(ctx, env, filepath.Dir(env.Shim), o.Quick, logf) // absolute: the build runs in its own directory
		if r != nil {                                                           // kept even when a workload stored nothing: the others measured
			run.Workloads = r
			fmt.Fprintln(o.Out)
			WriteWorkloads(o.Out, r)
		}
		if err != nil {
			run.fail("run", err, o.Out)
		}
	}
	if o.wants("append") && ctx.Err() == nil {
		r, err := RunAppend(ctx, filepath.Dir(env.Shim), o.Quick)
		if err != nil {
			run.fail("append", err, o.Out)
		} else {
			run.Append = r
			fmt.Fprintln(o.Out)
			WriteAppend(o.Out, r)
		}
	}
	if o.wants("scale") && ctx.Err() == nil {
		r, err := RunScale(ctx, env, o.Quick, logf)
		if err != nil {
			run.fail("scale", err, o.Out)
		} else {
			run.Scale = r
			fmt.Fprintln(o.Out)
			WriteScale(o.Out, r)
		}
	}
	if o.wants("ingest") && ctx.Err() == nil {
		n, reps := 1_000_000, 3
		if o.Quick {
			n, reps = 100_000, 1
		}
		r, err := RunIngest(dir, n, reps, logf)
		if err != nil {
			run.fail("ingest", err, o.Out)
		} else {
			run.Ingest = r
			fmt.Fprintln(o.Out)
			WriteIngest(o.Out, r)
		}
	}
	if o.wants("planner") && ctx.Err() == nil {
		r, err := RunPlanner(ctx, o.Go, o.PlannerMax, logf)
		if err != nil {
			run.fail("planner", err, o.Out)
		} else {
			run.Planner = r
			fmt.Fprintln(o.Out)
			WritePlanner(o.Out, r)
		}
	}
	run.LoadEnd = loadAvg()
	run.Seconds = time.Since(start).Seconds()
	run.Targets = CheckTargets(run)
	fmt.Fprintln(o.Out)
	WriteTargets(o.Out, run.Targets)
	if h := run.Workloads.Headline(); h != "" {
		fmt.Fprintf(o.Out, "HEADLINE %s\n", h)
	}
	fmt.Fprintf(o.Out, "load average at end: %.2f %.2f %.2f; %.0f s\n", run.LoadEnd[0], run.LoadEnd[1], run.LoadEnd[2], run.Seconds)

	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	kind := "full"
	if o.Quick {
		kind = "quick"
	}
	name := filepath.Join(o.OutDir, fmt.Sprintf("run-%s-%s.json", run.Started.Format("20060102T150405Z"), kind))
	b, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(name, append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Out, "results: %s\n", name)
	md := strings.TrimSuffix(name, ".json") + ".md"
	f, err := os.Create(md)
	if err != nil {
		return nil, err
	}
	WriteMarkdown(f, run)
	if err := f.Close(); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Out, "markdown: %s\n", md)
	plotDir := o.PlotDir
	if plotDir == "" {
		plotDir = o.OutDir
	}
	files, err := Plot(run, plotDir)
	if err != nil {
		return run, fmt.Errorf("plot: %w", err)
	}
	for _, f := range files {
		fmt.Fprintf(o.Out, "plot: %s\n", f)
	}
	if run.Overhead != nil && len(run.Overhead.Void) > 0 {
		return run, fmt.Errorf("modes that did not trace: %s", strings.Join(run.Overhead.Void, "; "))
	}
	if len(run.Errors) > 0 {
		return run, fmt.Errorf("%d part(s) failed: %s", len(run.Errors), strings.Join(run.Errors, "; "))
	}
	return run, ctx.Err()
}

// fail records a part's failure in the run and prints it.
func (r *Run) fail(part string, err error, out io.Writer) {
	msg := fmt.Sprintf("%s: %v", part, err)
	r.Errors = append(r.Errors, msg)
	fmt.Fprintf(out, "\nFAILED %s\n", msg)
}

func newEnv(o Options, dir string, logf func(string, ...any)) (*Env, error) {
	abs, err := filepath.Abs(o.BinDir)
	if err != nil {
		return nil, err
	}
	env := &Env{
		Dir:           dir,
		Workload:      filepath.Join(abs, "openloop"),
		Shim:          filepath.Join(abs, "librestrack.so"),
		Collector:     filepath.Join(abs, "collector"),
		DrainInterval: collector.DefaultDrainInterval, // measured at defaults
		Logf:          logf,
	}
	if _, err := os.Stat(env.Workload); err != nil {
		return nil, fmt.Errorf("workload %s not built: run make bench (it builds bench/workload/openloop.c): %w", env.Workload, err)
	}
	if p := filepath.Join(abs, "openloop-lttng"); fileExists(p) {
		env.WorkloadLTTng = p
	}
	if p := filepath.Join(abs, "fiforeader"); fileExists(p) {
		env.FIFOReader = p
	}
	return env, nil
}

// gitDescribe names the checked-out commit, "-dirty" when tracked files
// differ from it: figures from uncommitted code cannot be rerun by others.
func gitDescribe() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty", "--abbrev=12").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// Defaults fills unset sizes (full or quick) and checks names.
func (o *Options) Defaults() error {
	def := func(v *int, full, quick int) {
		if *v <= 0 {
			*v = full
			if o.Quick {
				*v = quick
			}
		}
	}
	def(&o.Rounds, 20, 2)
	def(&o.Calls, 20_000, 2_000)
	def(&o.ColdCalls, 300, 20)
	def(&o.PlannerMax, 10_000_000, 100_000)
	for _, p := range o.Parts {
		if !slices.Contains([]string{"overhead", "run", "append", "scale", "ingest", "planner"}, p) {
			return fmt.Errorf("unknown part %q (want overhead, run, append, scale, ingest or planner)", p)
		}
	}
	names := ModeNames()
	for _, m := range o.Modes {
		if !slices.Contains(names, m) {
			return fmt.Errorf("unknown mode %q (want one of %v)", m, names)
		}
	}
	if len(o.Modes) > 0 && !slices.Contains(o.Modes, "none") {
		o.Modes = append([]string{"none"}, o.Modes...) // ratios need it
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return nil
}
