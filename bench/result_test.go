package bench

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFinishComparesEachRoundWithNoneOfTheSameRound(t *testing.T) {
	// The machine slows down by half in round 1: each round, ring costs
	// 50 ns more than none. Pooled medians would blur that; the per-round
	// comparison finds it exactly.
	ms := []ModeResult{
		{Mode: "none", samples: []float64{2000, 2000, 3000, 3000, 2000}, Reps: []Rep{{Round: 0, Median: 2000}, {Round: 1, Median: 3000}, {Round: 2, Median: 2000}}},
		{Mode: "ring", samples: []float64{2050, 3050, 3050, 2050, 2050}, Reps: []Rep{{Round: 0, Median: 2050}, {Round: 1, Median: 3050}, {Round: 2, Median: 2050}}},
		{Mode: "ebpf", Skipped: "no BPF here"},
	}
	got := finish(ms)
	require.Len(t, got, 3)
	assert.Equal(t, 1.0, got[0].Ratio)
	assert.Equal(t, 0.0, got[0].AddedNs)
	assert.Equal(t, 50.0, got[1].AddedNs)
	assert.InDelta(t, 2050.0/2000.0, got[1].Ratio, 1e-12, "the median of 1.025, 1.0167, 1.025")
	assert.InDelta(t, 2050.0/2000.0, got[1].PooledRatio, 1e-12)
	assert.Zero(t, got[1].AddedMeanNs, "the reps carry no means here")
	assert.Equal(t, 2000.0, got[0].RepMedians.Median, "the spread is over repetition medians")
	assert.Zero(t, got[2].Ratio, "a skipped mode has no ratio")
	assert.Nil(t, got[1].samples, "raw samples are not kept in the result")
}

func TestFinishComparesMeansRoundByRoundToo(t *testing.T) {
	// A tracer with a rare 1 ms stall: the median does not move, the mean
	// does — what a program pays in total.
	ms := []ModeResult{
		{Mode: "none", samples: []float64{2000}, Reps: []Rep{{Round: 0, Median: 2000, Mean: 2010}, {Round: 1, Median: 2000, Mean: 2010}}},
		{Mode: "ring", samples: []float64{2050}, Reps: []Rep{{Round: 0, Median: 2050, Mean: 2160}, {Round: 1, Median: 2050, Mean: 2160}}},
	}
	got := finish(ms)
	assert.Equal(t, 50.0, got[1].AddedNs)
	assert.Equal(t, 150.0, got[1].AddedMeanNs)
	assert.InDelta(t, 2160.0/2010.0, got[1].MeanRatio, 1e-12)
}

func TestFinishFallsBackToPooledMediansWhenRoundsDoNotPair(t *testing.T) {
	ms := []ModeResult{
		{Mode: "none", samples: []float64{2000}, Reps: []Rep{{Round: 0, Median: 2000}}},
		{Mode: "ring", samples: []float64{2100}, Reps: []Rep{{Round: 1, Median: 2100}}},
	}
	got := finish(ms)
	assert.InDelta(t, 1.05, got[1].Ratio, 1e-12)
	assert.Equal(t, 100.0, got[1].AddedNs)
}

func TestFinishWithoutNoneLeavesRatiosUnset(t *testing.T) {
	got := finish([]ModeResult{{Mode: "ring", samples: []float64{1, 2, 3}}})
	assert.Zero(t, got[0].Ratio)
	assert.Equal(t, 2.0, got[0].PerCall.Median)
}

// The JSON is what other tools read: its field names are a contract.
func TestRunJSONShape(t *testing.T) {
	tab := Tables(100, 10)[0]
	r := &Run{
		Schema:  Schema,
		Machine: Machine{CPU: "x", CPUs: 2},
		Overhead: &OverheadResult{Rounds: 2, Modes: []ModeInfo{{Mode: "none", Counts: Counts{Recorded: -1, Lost: -1}}},
			Tables: []TableResult{{Table: tab, Modes: []ModeResult{{Mode: "none", Ratio: 1, PerCall: Stats{N: 3, Median: 2000, P99: 2500}}}}}},
		Scale:     &ScaleResult{Producers: []ProducerRun{{Producers: 2, Default: true}}},
		Planner:   &PlannerResult{Points: []PlannerPoint{{Accesses: 10000, NsPerOp: 1e6}}},
		Workloads: &WorkloadsResult{Runs: []WorkloadRun{{Name: "scan", Pairs: 1, Records: 10, Lost: 3}, {Name: "build", Skipped: "no source"}}},
	}
	r.Targets = CheckTargets(r)
	b, err := json.Marshal(r)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	for _, k := range []string{"schema", "started", "command", "commit", "machine", "load_start", "load_end", "overhead", "scale", "planner", "targets"} {
		assert.Contains(t, m, k)
	}
	assert.Equal(t, "restrack-bench/1", m["schema"])
	ov := m["overhead"].(map[string]any)
	table := ov["tables"].([]any)[0].(map[string]any)
	assert.Equal(t, "warm-open", table["table"].(map[string]any)["key"])
	mode := table["modes"].([]any)[0].(map[string]any)
	for _, k := range []string{"mode", "per_call_ns", "ratio_to_none", "added_ns", "rep_medians_ns", "reps", "calls_per_worker_per_rep"} {
		assert.Contains(t, mode, k)
	}
	pc := mode["per_call_ns"].(map[string]any)
	assert.Equal(t, 2000.0, pc["median"])
	assert.Equal(t, 2500.0, pc["p99"])
	assert.NotContains(t, mode, "skipped", "skipped appears only for skipped modes")
	prod := m["scale"].(map[string]any)["producers"].([]any)[0].(map[string]any)
	for _, k := range []string{"producers", "ring_size", "drain_interval", "received", "dropped", "default_settings"} {
		assert.Contains(t, prod, k)
	}
	wl := m["workloads"].(map[string]any)["workloads"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "untraced", "traced", "mean_ratio", "median_ratio", "added_mean_ns_per_unit", "records_stored", "records_lost", "collector_cpu_ns_per_event"} {
		assert.Contains(t, wl, k)
	}
	assert.Equal(t, 3.0, wl["records_lost"], "drops are in the JSON as a figure")
	pt := m["planner"].(map[string]any)["points"].([]any)[0].(map[string]any)
	assert.Equal(t, 10000.0, pt["accesses"])
	assert.Equal(t, 1e6, pt["ns_per_plan"])
}

func TestCheckTargetsSaysMetMissedOrNotMeasured(t *testing.T) {
	r := &Run{Overhead: &OverheadResult{Tables: []TableResult{{
		Table: Table{Key: "warm-open"},
		Modes: []ModeResult{
			{Mode: "none", Ratio: 1, PerCall: Stats{N: 1, Median: 2000}},
			{Mode: "ring", Ratio: 1.02, AddedNs: 40, PerCall: Stats{N: 1}},
			{Mode: "lttng", Ratio: 1.05, AddedNs: 110, PerCall: Stats{N: 1}},
			{Mode: "ebpf", Skipped: "no BPF"},
			{Mode: "fifo", Ratio: 1.5, AddedNs: 1000, PerCall: Stats{N: 1}},
		},
	}}}}
	ts := map[string]Target{}
	for _, tg := range CheckTargets(r) {
		ts[tg.Name] = tg
	}
	assert.True(t, ts["warm ring added ns per open"].Met)
	assert.Equal(t, "+40.0 ns", ts["warm ring added ns per open"].Got)
	assert.True(t, ts["warm ring ratio"].Met)
	assert.True(t, ts["warm ring adds less than lttng"].Met)
	assert.False(t, ts["warm ring adds less than ebpf"].Known, "a skipped mode cannot meet or miss")
	fifo := ts["warm fifo a multiple of none (paper: 2.8×)"]
	assert.True(t, fifo.Known)
	assert.False(t, fifo.Met, "1.5× is not a multiple")
	assert.False(t, ts["planner, 1 M events"].Known)

	r.Overhead.Tables[0].Modes[1].AddedNs = 61
	for _, tg := range CheckTargets(r) {
		if tg.Name == "warm ring added ns per open" {
			assert.False(t, tg.Met, "61 ns misses a 60 ns budget")
		}
	}
}

func TestParseBenchmarksReadsThePlannerBenchmarkLines(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/restrack/restrack/planner
cpu: AMD EPYC
BenchmarkCompute/accesses=10000-2         	     348	   3412345 ns/op	       341.2 ns/access	 2345678 B/op	   12345 allocs/op
BenchmarkCompute/accesses=1000000         	       3	 812345678 ns/op	       812.3 ns/access	234567890 B/op	 1234567 allocs/op
BenchmarkOther-2   10   5 ns/op
PASS
`
	pts, err := ParseBenchmarks(strings.NewReader(out))
	require.NoError(t, err)
	require.Len(t, pts, 2)
	assert.Equal(t, PlannerPoint{Accesses: 10000, Iterations: 348, NsPerOp: 3412345, NsPerAccess: 341.2, BytesPerOp: 2345678, AllocsPerOp: 12345}, pts[0])
	assert.Equal(t, 1_000_000, pts[1].Accesses, "a line without the GOMAXPROCS suffix parses too")
	assert.Equal(t, 812345678.0, pts[1].NsPerOp)

	_, err = ParseBenchmarks(strings.NewReader("BenchmarkCompute/accesses=10-2 5 fast ns/op\n"))
	require.Error(t, err)
}

func TestPlannerSizesStopAtTheMaximum(t *testing.T) {
	assert.Equal(t, []int{10_000, 100_000}, PlannerSizes(100_000))
	assert.Equal(t, []int{10_000, 100_000, 1_000_000, 10_000_000}, PlannerSizes(10_000_000))
	assert.Empty(t, PlannerSizes(5))
}

func TestDefaultsAlwaysIncludeNoneForTheRatios(t *testing.T) {
	o := Options{Quick: true, Modes: []string{"ring"}}
	require.NoError(t, o.Defaults())
	assert.Equal(t, []string{"none", "ring"}, o.Modes)
	assert.Equal(t, 2, o.Rounds)
	assert.Equal(t, 100_000, o.PlannerMax)

	bad := Options{Modes: []string{"dtrace"}}
	require.ErrorContains(t, bad.Defaults(), `unknown mode "dtrace"`)
	bad = Options{Parts: []string{"everything"}}
	require.ErrorContains(t, bad.Defaults(), `unknown part "everything"`)
}

func TestParseBenchmarksKeepsSubBenchmarkVariants(t *testing.T) {
	out := "BenchmarkCompute/accesses=10000/paths-2   496   4655435 ns/op   465.5 ns/access   1004735 B/op   9657 allocs/op\n" +
		"BenchmarkCompute/accesses=10000/file-numbers-2   600   3000000 ns/op   300.0 ns/access   1000 B/op   10 allocs/op\n"
	pts, err := ParseBenchmarks(strings.NewReader(out))
	require.NoError(t, err)
	require.Len(t, pts, 2)
	assert.Equal(t, 10000, pts[0].Accesses)
	assert.Equal(t, "paths", pts[0].Variant)
	assert.Equal(t, "file-numbers", pts[1].Variant, "a dash inside the variant is not taken for the GOMAXPROCS suffix")
}

func TestGrowthExponentIsTheWorstVariantsLogLogSlope(t *testing.T) {
	pts := []PlannerPoint{
		{Accesses: 10_000, Variant: "a", NsPerOp: 1e6},
		{Accesses: 1_000_000, Variant: "a", NsPerOp: 1e8}, // linear: slope 1
		{Accesses: 10_000, Variant: "b", NsPerOp: 1e6},
		{Accesses: 1_000_000, Variant: "b", NsPerOp: 1e10}, // quadratic: slope 2
	}
	assert.InDelta(t, 2.0, GrowthExponent(pts), 1e-9)
	assert.InDelta(t, 1.0, GrowthExponent(pts[:2]), 1e-9)
	assert.Zero(t, GrowthExponent(pts[:1]), "one size has no slope")

	// One slow middle size does not decide the slope: the fit goes
	// through all sizes.
	noisy := []PlannerPoint{{Accesses: 1e4, NsPerOp: 1e6}, {Accesses: 1e5, NsPerOp: 4e7}, {Accesses: 1e6, NsPerOp: 1e8}, {Accesses: 1e7, NsPerOp: 1e9}}
	e := GrowthExponent(noisy)
	assert.Greater(t, e, 0.9)
	assert.Less(t, e, 1.1)
}
