package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
)

// PlannerPoint is the planner's cost at one trace size, from the planner
// package's own BenchmarkCompute (planner/bench_test.go): processes, files
// and accesses in a fixed 1 : 10 : 100 ratio.
type PlannerPoint struct {
	Accesses int `json:"accesses"`
	// Variant names a sub-benchmark at one size ("paths", "file-numbers":
	// how the trace names its files), "" when the benchmark has none.
	Variant     string  `json:"variant,omitempty"`
	Iterations  int     `json:"iterations"`
	NsPerOp     float64 `json:"ns_per_plan"`
	NsPerAccess float64 `json:"ns_per_access"`
	BytesPerOp  float64 `json:"bytes_allocated_per_plan"`
	AllocsPerOp float64 `json:"allocs_per_plan"`
	// PeakRSSKiB is the benchmark process's peak RSS (VmHWM sampled every
	// 20 ms): the generated trace and one plan at this size; smaller
	// traces are generated too but are a tenth of it or less.
	PeakRSSKiB int64 `json:"peak_rss_kib"`
}

// PlannerResult is the planner's growth curve.
type PlannerResult struct {
	Command string         `json:"command"`
	Points  []PlannerPoint `json:"points"`
	// Exponent is the least-squares slope of log(time) against
	// log(accesses), the worst over variants: 1 is linear.
	Exponent float64 `json:"exponent"`
}

// PlannerSizes are the trace sizes measured, up to a maximum.
func PlannerSizes(maxAccesses int) []int {
	var out []int
	for _, n := range []int{10_000, 100_000, 1_000_000, 10_000_000} {
		if n <= maxAccesses {
			out = append(out, n)
		}
	}
	return out
}

// RunPlanner compiles the planner's benchmark once and runs it per size in
// its own process, so each size's peak RSS is its own.
func RunPlanner(ctx context.Context, goCmd string, maxAccesses int, logf func(string, ...any)) (*PlannerResult, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "restrack-planner-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "planner.test")
	build := exec.CommandContext(ctx, goCmd, "test", "-c", "-o", bin, "./planner/")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the planner benchmark: %w: %s", err, out)
	}
	res := &PlannerResult{Command: "go test -c ./planner && planner.test -test.run '^$' -test.bench 'BenchmarkCompute/accesses=N$' -test.benchmem (RESTRACK_BENCH_MAX=N)"}
	for _, n := range PlannerSizes(maxAccesses) {
		// Big traces plan for seconds: a fixed count keeps the run bounded.
		benchtime := "1s"
		switch {
		case n >= 10_000_000:
			benchtime = "1x"
		case n >= 1_000_000:
			benchtime = "3x"
		}
		cmd := exec.CommandContext(ctx, bin, "-test.run", "^$", "-test.bench", fmt.Sprintf("BenchmarkCompute/accesses=%d$", n),
			"-test.benchmem", "-test.benchtime", benchtime)
		cmd.Dir = filepath.Join(root, "planner")
		cmd.Env = append(os.Environ(), "RESTRACK_BENCH_MAX="+strconv.Itoa(n))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("planner benchmark: %w", err)
		}
		hwm := watchHWM(cmd.Process.Pid)
		err := cmd.Wait()
		rss := hwm.Stop()
		if err != nil {
			return nil, fmt.Errorf("planner benchmark at %d accesses: %w: %s", n, err, out.String())
		}
		pts, err := ParseBenchmarks(&out)
		if err != nil {
			return nil, err
		}
		if len(pts) == 0 {
			return nil, fmt.Errorf("planner benchmark at %d accesses printed no result for it:\n%s", n, out.String())
		}
		for _, p := range pts {
			if p.Accesses != n {
				return nil, fmt.Errorf("planner benchmark at %d accesses printed a result for %d", n, p.Accesses)
			}
			p.PeakRSSKiB = rss
			res.Points = append(res.Points, p)
			logf("planner: %d accesses %s: %.1f ms", n, p.Variant, p.NsPerOp/1e6)
		}
	}
	res.Exponent = GrowthExponent(res.Points)
	return res, nil
}

// GrowthExponent fits log(time per plan) against log(accesses) by least
// squares, per variant, and returns the largest slope: 1 is linear, 2
// quadratic. A fit over every size, rather than the two ends, keeps one
// size measured while a neighbour's build ran from bending the figure.
func GrowthExponent(pts []PlannerPoint) float64 {
	type acc struct{ n, sx, sy, sxx, sxy float64 }
	fits := map[string]*acc{}
	for _, p := range pts {
		if p.Accesses <= 0 || p.NsPerOp <= 0 {
			continue
		}
		a := fits[p.Variant]
		if a == nil {
			a = &acc{}
			fits[p.Variant] = a
		}
		x, y := math.Log(float64(p.Accesses)), math.Log(p.NsPerOp)
		a.n++
		a.sx += x
		a.sy += y
		a.sxx += x * x
		a.sxy += x * y
	}
	worst, any := 0.0, false
	for _, a := range fits {
		d := a.n*a.sxx - a.sx*a.sx
		if a.n < 2 || d <= 0 {
			continue
		}
		e := (a.n*a.sxy - a.sx*a.sy) / d
		if !any || e > worst {
			worst, any = e, true
		}
	}
	return worst
}

// ParseBenchmarks reads `go test -bench` output and returns the
// BenchmarkCompute/accesses=N results in order.
func ParseBenchmarks(r io.Reader) ([]PlannerPoint, error) {
	var out []PlannerPoint
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "BenchmarkCompute/accesses=") {
			continue
		}
		name := strings.TrimPrefix(f[0], "BenchmarkCompute/accesses=")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i] // the GOMAXPROCS suffix
			}
		}
		var p PlannerPoint
		var err error
		name, p.Variant, _ = strings.Cut(name, "/")
		if p.Accesses, err = strconv.Atoi(name); err != nil {
			return nil, fmt.Errorf("benchmark line %q: size: %w", sc.Text(), err)
		}
		if p.Iterations, err = strconv.Atoi(f[1]); err != nil {
			return nil, fmt.Errorf("benchmark line %q: iterations: %w", sc.Text(), err)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchmark line %q: %w", sc.Text(), err)
			}
			switch f[i+1] {
			case "ns/op":
				p.NsPerOp = v
			case "ns/access":
				p.NsPerAccess = v
			case "B/op":
				p.BytesPerOp = v
			case "allocs/op":
				p.AllocsPerOp = v
			}
		}
		if p.NsPerOp == 0 {
			return nil, fmt.Errorf("benchmark line %q has no ns/op", sc.Text())
		}
		out = append(out, p)
	}
	return out, sc.Err()
}

// moduleRoot finds the repository root (go.mod) from the working directory.
func moduleRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/restrack/restrack\n")) {
			return d, nil
		}
		p := filepath.Dir(d)
		if p == d {
			return "", fmt.Errorf("run restrack-bench inside the restrack repository (the planner benchmark is built from its source)")
		}
		d = p
	}
}

// WritePlanner prints the growth curve.
func WritePlanner(w io.Writer, r *PlannerResult) {
	fmt.Fprintf(w, "== planner: time and memory vs trace size (%s)\n", r.Command)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "accesses\tvariant\tprocesses\tfiles\tms/plan\tns/access\tMB allocated/plan\tpeak RSS MiB\titerations\t")
	for _, p := range r.Points {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%.2f\t%.0f\t%.1f\t%.0f\t%d\t\n", p.Accesses, p.Variant, p.Accesses/100, p.Accesses/10, p.NsPerOp/1e6, p.NsPerAccess, p.BytesPerOp/1e6, float64(p.PeakRSSKiB)/1024, p.Iterations)
	}
	tw.Flush()
	fmt.Fprintf(w, "growth exponent (least-squares log-log slope, worst variant): %.2f (1 = linear)\n", r.Exponent)
}
