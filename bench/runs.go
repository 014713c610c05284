package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// The "run" part measures what a user of `restrack run -- CMD` feels: the
// wall clock of whole workloads, traced against untraced, in interleaved
// pairs (untraced first in even pairs, traced first in odd ones, so drift
// falls on both alike). Everything restrack run does counts: its start, the
// store's creation, the final drain and commit, the summary at the end.
//
// The collector's CPU is restrack run's own user+sys time (the collector
// runs in its process), read from /proc/PID/stat while the process is a
// zombie: its utime+stime, not its children's (cutime+cstime, the workload,
// reported apart). It includes restrack run's fixed costs (Go start-up, the
// store's schema, the end-of-run summary, which reads the trace back); the
// fixed part is measured alone on `restrack run -- /bin/true` and printed
// beside it, and CPU per event is given both whole and without it.

// WallStats summarises one side's wall times, seconds.
type WallStats struct {
	Mean   float64   `json:"mean_s"`
	Median float64   `json:"median_s"`
	All    []float64 `json:"all_s"`
	// CPU is the workload's own user+sys per run, mean, seconds (for the
	// traced side: restrack run's children, not restrack run itself).
	CPU float64 `json:"workload_cpu_s"`
}

// WorkloadRun is one workload measured under `restrack run` and alone.
type WorkloadRun struct {
	Name    string `json:"name"`
	Title   string `json:"title"`
	Command string `json:"command"` // the traced command, as run
	Unit    string `json:"unit"`    // what Units counts: "open", "process", "file"
	Units   int64  `json:"units"`   // per run
	Pairs   int    `json:"pairs"`
	Skipped string `json:"skipped,omitempty"`

	Untraced WallStats `json:"untraced"`
	Traced   WallStats `json:"traced"`
	// Ratios of traced to untraced wall: of the means (the headline: what
	// a user's clock sees on average) and of the medians.
	MeanRatio   float64 `json:"mean_ratio"`
	MedianRatio float64 `json:"median_ratio"`
	// Added wall time per unit, ns: (traced − untraced) / units.
	AddedMeanNs   float64 `json:"added_mean_ns_per_unit"`
	AddedMedianNs float64 `json:"added_median_ns_per_unit"`
	// AddedNetMeanNs is AddedMeanNs less restrack run's fixed wall cost
	// (WorkloadsResult.FixedWall), spread over the units: what each unit
	// itself costs, the figure a per-process-start budget is about.
	AddedNetMeanNs float64 `json:"added_net_mean_ns_per_unit"`

	Records uint64 `json:"records_stored"` // per traced run, mean
	Lost    uint64 `json:"records_lost"`   // over every traced run
	// CollectorCPU is restrack run's own user+sys per run, mean, seconds.
	CollectorCPU float64 `json:"collector_cpu_s"`
	// CollectorCPUNsPerEvent is CollectorCPU over records stored; Net
	// takes restrack run's fixed cost (on /bin/true) off first.
	CollectorCPUNsPerEvent    float64 `json:"collector_cpu_ns_per_event"`
	CollectorCPUNetNsPerEvent float64 `json:"collector_cpu_net_ns_per_event"`
}

// WorkloadsResult is the run part.
type WorkloadsResult struct {
	// FixedCPU is restrack run's own CPU on `/bin/true` (median of 7),
	// seconds: start-up, an empty store, the summary. FixedWall is its
	// wall time less /bin/true's alone (medians of 7 pairs).
	FixedCPU  float64       `json:"restrack_run_fixed_cpu_s"`
	FixedWall float64       `json:"restrack_run_fixed_wall_s"`
	Runs      []WorkloadRun `json:"workloads"`
}

// Find returns the named workload, measured (not skipped), or nil.
func (r *WorkloadsResult) Find(name string) *WorkloadRun {
	if r == nil {
		return nil
	}
	for i := range r.Runs {
		if r.Runs[i].Name == name && r.Runs[i].Skipped == "" && r.Runs[i].Pairs > 0 {
			return &r.Runs[i]
		}
	}
	return nil
}

// HelloGlob is where scripts/setup-debian.sh caches Debian's GNU hello
// source (apt-get source --download-only hello): the real C build.
const HelloGlob = "/var/cache/restrack-bench/hello/hello_*.orig.tar.gz"

// RequireBuildEnv makes a missing hello source an error instead of a skip.
const RequireBuildEnv = "RESTRACK_BENCH_REQUIRE_BUILD"

// workloadSpec is one workload: how to prepare it and its command.
type workloadSpec struct {
	name, title, unit string
	units             int64
	pairs             int
	argv              []string
	dir               string
	before            []string // run untimed, untraced, before each timed run (make clean)
	skip              string
}

// RunWorkloads runs the part. bin holds restrack, librestrack.so,
// openloop and scanloop.
func RunWorkloads(ctx context.Context, env *Env, bin string, quick bool, logf func(string, ...any)) (*WorkloadsResult, error) {
	restrack := filepath.Join(bin, "restrack")
	for _, p := range []string{restrack, filepath.Join(bin, "scanloop")} {
		if !fileExists(p) {
			return nil, fmt.Errorf("%s not built: run make bench", p)
		}
	}
	dir, err := os.MkdirTemp(env.Dir, "run-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file, err := benchFile(dir)
	if err != nil {
		return nil, err
	}
	opens, scan, pipes, trues := int64(1_000_000), int64(1_500_000), int64(449), int64(500)
	pairsOpen, pairsScan, pairsPipe, pairsTrue, pairsBuild := 6, 2, 5, 7, 5
	if quick {
		opens, scan, pipes, trues = 50_000, 20_000, 30, 50
		pairsOpen, pairsScan, pairsPipe, pairsTrue = 2, 1, 1, 2
	}
	specs := []workloadSpec{
		{name: "openloop", title: "restrack run -- openloop: one file opened and closed in a loop", unit: "open", units: opens, pairs: pairsOpen,
			argv: []string{env.Workload, "-p", file, "-o", filepath.Join(dir, "samples"), "-n", strconv.FormatInt(opens, 10), "-w", "0"}},
		{name: "proc-start", title: "process start: a bash loop of /bin/true", unit: "process", units: trues, pairs: pairsTrue,
			argv: []string{"/bin/bash", "-c", fmt.Sprintf("for ((i = 0; i < %d; i++)); do /bin/true; done", trues)}},
		// Each pipeline is three processes: the forked subshell running
		// echo, tr and wc; 449 of them make the 1,347 (bash itself
		// not counted).
		{name: "pipeline", title: "bash pipelines: echo | tr | wc, 3 processes each", unit: "process", units: 3 * pipes, pairs: pairsPipe,
			argv: []string{"/bin/bash", "-c", fmt.Sprintf("for ((i = 0; i < %d; i++)); do echo $i | tr 0-9 a-j | wc -c; done >/dev/null", pipes)}},
		{name: "scan", title: "many distinct files: scanloop opens DIR/f0 … DIR/fN-1 once each", unit: "file", units: scan, pairs: pairsScan,
			argv: []string{filepath.Join(bin, "scanloop"), filepath.Join(dir, "scan"), strconv.FormatInt(scan, 10)}},
	}
	build, err := prepareBuild(ctx, dir, quick, pairsBuild, logf)
	if err != nil {
		return nil, err
	}
	specs = append(specs, build)

	res := &WorkloadsResult{}
	// Seven pairs: the per-unit figures net of this cost are only as good
	// as it, and on a loaded machine three medians swing by tens of ms.
	var cpus, walls, plain []float64
	for i := range 7 {
		t, err := tracedRun(ctx, restrack, env.Shim, filepath.Join(dir, fmt.Sprintf("store-true-%d", i)), "", []string{"/bin/true"})
		if err != nil {
			return nil, fmt.Errorf("restrack run -- /bin/true: %w", err)
		}
		u, _, err := plainRun(ctx, "", []string{"/bin/true"})
		if err != nil {
			return nil, err
		}
		cpus, walls, plain = append(cpus, t.selfCPU), append(walls, t.wall), append(plain, u)
	}
	res.FixedCPU = Summarize(cpus).Median
	res.FixedWall = Summarize(walls).Median - Summarize(plain).Median
	logf("run: restrack run -- /bin/true: +%.0f ms wall, %.0f ms of its own CPU", res.FixedWall*1e3, res.FixedCPU*1e3)

	var void []string
	for _, s := range specs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		w, err := measureWorkload(ctx, restrack, env.Shim, dir, s, res.FixedCPU, res.FixedWall, logf)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		if w.Skipped == "" && w.Records == 0 {
			void = append(void, s.name+": restrack run stored no record")
		}
		res.Runs = append(res.Runs, w)
	}
	if len(void) > 0 {
		return res, errors.New(strings.Join(void, "; "))
	}
	return res, nil
}

// prepareBuild unpacks and configures GNU hello (untraced, untimed), or
// says why the build is skipped.
func prepareBuild(ctx context.Context, dir string, quick bool, pairs int, logf func(string, ...any)) (workloadSpec, error) {
	s := workloadSpec{name: "build", title: "a real C build: make -j2 of GNU hello (Debian's source), after make clean", unit: "build", units: 1, pairs: pairs,
		argv: []string{"make", "-j2"}, before: []string{"make", "clean"}}
	tars, _ := filepath.Glob(HelloGlob)
	switch {
	case quick:
		s.skip = "quick run: configure alone takes ~20 s; make bench measures it"
		return s, nil
	case len(tars) == 0:
		s.skip = "no GNU hello source at " + HelloGlob + ": sudo ./scripts/setup-debian.sh caches it (apt-get source hello)"
		if os.Getenv(RequireBuildEnv) == "1" {
			return s, fmt.Errorf("%s=1 and %s", RequireBuildEnv, s.skip)
		}
		return s, nil
	}
	sort.Strings(tars)
	tar := tars[len(tars)-1]
	src := filepath.Join(dir, "build")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return s, err
	}
	if out, err := exec.CommandContext(ctx, "tar", "-xzf", tar, "-C", src, "--strip-components=1").CombinedOutput(); err != nil {
		return s, fmt.Errorf("unpack %s: %w: %s", tar, err, out)
	}
	logf("run: configuring %s", filepath.Base(tar))
	cfg := exec.CommandContext(ctx, "./configure", "-q")
	cfg.Dir = src
	if out, err := cfg.CombinedOutput(); err != nil {
		return s, fmt.Errorf("configure %s: %w: %s", tar, err, tail(out))
	}
	s.dir = src
	s.title = fmt.Sprintf("a real C build: make -j2 of %s (Debian's source), after make clean", strings.TrimSuffix(filepath.Base(tar), ".orig.tar.gz"))
	return s, nil
}

func measureWorkload(ctx context.Context, restrack, shim, dir string, s workloadSpec, fixedCPU, fixedWall float64, logf func(string, ...any)) (WorkloadRun, error) {
	w := WorkloadRun{Name: s.name, Title: s.title, Unit: s.unit, Units: s.units, Skipped: s.skip,
		Command: "restrack run --json --store DIR -- " + strings.Join(s.argv, " ")}
	if s.skip != "" {
		logf("run: %s skipped: %s", s.name, s.skip)
		return w, nil
	}
	var selfCPU, records float64
	var uCPU, tCPU float64
	for p := range s.pairs {
		for k := range 2 {
			traced := (p+k)%2 == 1 // untraced first in even pairs
			if len(s.before) > 0 {
				c := exec.CommandContext(ctx, s.before[0], s.before[1:]...)
				c.Dir = s.dir
				if out, err := c.CombinedOutput(); err != nil {
					return w, fmt.Errorf("%s: %w: %s", strings.Join(s.before, " "), err, tail(out))
				}
			}
			if !traced {
				secs, cpu, err := plainRun(ctx, s.dir, s.argv)
				if err != nil {
					return w, err
				}
				w.Untraced.All = append(w.Untraced.All, secs)
				uCPU += cpu
				continue
			}
			t, err := tracedRun(ctx, restrack, shim, filepath.Join(dir, fmt.Sprintf("store-%s-%d", s.name, p)), s.dir, s.argv)
			if err != nil {
				return w, err
			}
			w.Traced.All = append(w.Traced.All, t.wall)
			tCPU += t.childCPU
			selfCPU += t.selfCPU
			records += float64(t.sum.Records)
			w.Lost += t.sum.Lost
		}
		w.Pairs++
	}
	n := float64(w.Pairs)
	w.Untraced.CPU, w.Traced.CPU = uCPU/n, tCPU/n
	u, t := Summarize(w.Untraced.All), Summarize(w.Traced.All)
	w.Untraced.Mean, w.Untraced.Median, w.Traced.Mean, w.Traced.Median = u.Mean, u.Median, t.Mean, t.Median
	w.MeanRatio, w.MedianRatio = t.Mean/u.Mean, t.Median/u.Median
	w.AddedMeanNs = (t.Mean - u.Mean) * 1e9 / float64(s.units)
	w.AddedMedianNs = (t.Median - u.Median) * 1e9 / float64(s.units)
	w.AddedNetMeanNs = (t.Mean - u.Mean - fixedWall) * 1e9 / float64(s.units)
	w.Records = uint64(records / n)
	w.CollectorCPU = selfCPU / n
	if records > 0 {
		w.CollectorCPUNsPerEvent = selfCPU * 1e9 / records
		w.CollectorCPUNetNsPerEvent = max(selfCPU-fixedCPU*n, 0) * 1e9 / records
	}
	logf("run: %s: ratio mean %.3f median %.3f, added %+.0f ns per %s (mean), collector %.0f ns CPU per event, %d lost",
		s.name, w.MeanRatio, w.MedianRatio, w.AddedMeanNs, s.unit, w.CollectorCPUNsPerEvent, w.Lost)
	return w, nil
}

// plainRun runs argv untraced: wall seconds and its CPU (with children).
func plainRun(ctx context.Context, dir string, argv []string) (float64, float64, error) {
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Dir = dir
	var out bytes.Buffer
	c.Stderr = &out // stdout: /dev/null
	start := time.Now()
	err := c.Run()
	wall := time.Since(start).Seconds()
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, tail(out.Bytes()))
	}
	return wall, (c.ProcessState.UserTime() + c.ProcessState.SystemTime()).Seconds(), nil
}

// runSummary is the part of restrack run's --json summary read here.
type runSummary struct {
	Records    uint64 `json:"records_stored"`
	Lost       uint64 `json:"records_lost"`
	ExitStatus int    `json:"exit_status"`
}

type traced struct {
	wall, selfCPU, childCPU float64
	sum                     runSummary
}

// tracedRun runs `restrack run --json -- argv` into a new store and
// returns its wall time, its own CPU (the collector), its children's (the
// workload) and its summary.
func tracedRun(ctx context.Context, restrack, shim, store, dir string, argv []string) (traced, error) {
	var t traced
	defer os.RemoveAll(store)
	c := exec.CommandContext(ctx, restrack, append([]string{"run", "--json", "--shim", shim, "--store", store, "--"}, argv...)...)
	c.Dir = dir
	var stderr bytes.Buffer
	c.Stderr = &stderr // stdout: /dev/null
	start := time.Now()
	if err := c.Start(); err != nil {
		return t, err
	}
	// Wait without reaping, read the zombie's CPU, then reap: after
	// reaping, the kernel folds its children's time into its own.
	waitErr := waitExited(c.Process.Pid)
	t.wall = time.Since(start).Seconds()
	self, children, cpuErr := procCPU(c.Process.Pid)
	err := c.Wait()
	if err != nil {
		return t, fmt.Errorf("restrack run -- %s: %w: %s", strings.Join(argv, " "), err, tail(stderr.Bytes()))
	}
	if waitErr != nil {
		return t, waitErr
	}
	if cpuErr != nil {
		return t, cpuErr
	}
	t.selfCPU, t.childCPU = self, children
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &t.sum); err != nil {
		return t, fmt.Errorf("restrack run's summary: %w: %s", err, tail(stderr.Bytes()))
	}
	return t, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture the project builds for.
const clockTicks = 100

// procCPU reads a process's own user+sys and its waited-for children's,
// seconds, from /proc/PID/stat (fields 14–17).
func procCPU(pid int) (self, children float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseStatCPU(string(b))
}

func parseStatCPU(stat string) (self, children float64, err error) {
	i := strings.LastIndexByte(stat, ')') // the command name may hold spaces and parentheses
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc stat %q: no command name", stat)
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3, the state
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("/proc stat %q: too few fields", stat)
	}
	var v [4]float64
	for k := range v {
		n, err := strconv.ParseUint(f[11+k], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc stat field %d: %w", 14+k, err)
		}
		v[k] = float64(n) / clockTicks
	}
	return v[0] + v[1], v[2] + v[3], nil
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 800 {
		s = "…" + s[len(s)-800:]
	}
	return s
}

// Headline is the figure a user feels, in one line: restrack run --
// openloop's whole-run added time per open by the mean, the median beside
// it, the collector's CPU per event and the records lost; "" when the run
// part did not measure it.
func (r *WorkloadsResult) Headline() string {
	w := r.Find("openloop")
	if w == nil {
		return ""
	}
	return fmt.Sprintf("restrack run -- openloop (%d opens): %+.0f ns per open by the whole-run mean (ratio %.3f), median %+.0f ns (%.3f); collector %.0f ns CPU per event; %d records lost",
		w.Units, w.AddedMeanNs, w.MeanRatio, w.AddedMedianNs, w.MedianRatio, w.CollectorCPUNsPerEvent, w.Lost)
}

// WriteWorkloads prints the part.
func WriteWorkloads(w io.Writer, r *WorkloadsResult) {
	fmt.Fprintf(w, "== restrack run of whole workloads: wall clock traced vs untraced, interleaved pairs\n")
	fmt.Fprintf(w, "   restrack run's fixed cost (restrack run -- /bin/true vs /bin/true): %+.0f ms wall, %.0f ms of its own CPU\n", r.FixedWall*1e3, r.FixedCPU*1e3)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tper run\tpairs\tuntraced s\ttraced s\tratio\tadded per unit\tnet of fixed\trecords/run\tlost\tcollector CPU\tCPU/event\tnet of fixed\t")
	fmt.Fprintln(tw, "\t\t\tmean / median\tmean / median\tmean / median\tmean / median\tmean\t\t(all runs)\ts per run\tns\tns\t")
	for _, x := range r.Runs {
		if x.Skipped != "" {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d %s\t%d\t%.3f / %.3f\t%.3f / %.3f\t%.3f / %.3f\t%s / %s\t%s\t%d\t%d\t%.3f\t%.0f\t%.0f\t\n", x.Name, x.Units, plural(x.Unit, x.Units), x.Pairs,
			x.Untraced.Mean, x.Untraced.Median, x.Traced.Mean, x.Traced.Median, x.MeanRatio, x.MedianRatio,
			perUnit(x.AddedMeanNs), perUnit(x.AddedMedianNs), perUnit(x.AddedNetMeanNs), x.Records, x.Lost, x.CollectorCPU, x.CollectorCPUNsPerEvent, x.CollectorCPUNetNsPerEvent)
	}
	tw.Flush()
	for _, x := range r.Runs {
		if x.Skipped != "" {
			fmt.Fprintf(w, "  %-10s SKIPPED: %s\n", x.Name, x.Skipped)
			continue
		}
		fmt.Fprintf(w, "  %-10s %s: %s\n", x.Name, x.Title, x.Command)
	}
	fmt.Fprintln(w, "  collector CPU: restrack run's own user+sys (its in-process collector, start-up and end-of-run summary), read at its exit; the workload's CPU (its children's) is not in it")
}

func plural(u string, n int64) string {
	if n == 1 {
		return u
	}
	if strings.HasSuffix(u, "s") {
		return u + "es"
	}
	return u + "s"
}

// perUnit formats an added time: ns below 10 µs, µs above, ms above 10 ms.
func perUnit(ns float64) string {
	switch a := max(ns, -ns); {
	case a >= 1e6:
		return fmt.Sprintf("%+.2f ms", ns/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%+.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%+.0f ns", ns)
}
