package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The test binary doubles as the workload: with BENCH_FAKE_NS set it
// behaves like openloop, writing -n samples of that many ns per worker,
// so RunOverhead can be tested without tracers or timing.
func TestMain(m *testing.M) {
	if ns := os.Getenv("BENCH_FAKE_NS"); ns != "" {
		os.Exit(fakeWorkload(ns, os.Args[1:]))
	}
	if os.Getenv("BENCH_FAKE_RESTRACK") != "" {
		os.Exit(fakeRestrackMain(os.Args[1:]))
	}
	if d, err := time.ParseDuration(os.Getenv("BENCH_FAKE_BURN")); err == nil {
		burnCPU(d)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func fakeWorkload(nsArg string, args []string) int {
	ns, _ := strconv.Atoi(nsArg)
	out, calls, workers := "", 0, 1
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "-o":
			out = args[i+1]
		case "-n":
			calls, _ = strconv.Atoi(args[i+1])
		case "-t", "-P":
			workers, _ = strconv.Atoi(args[i+1])
		}
	}
	b := make([]byte, 4*calls)
	for i := range calls {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(ns+i%3)) // a little spread
	}
	for w := range workers {
		if err := os.WriteFile(fmt.Sprintf("%s.%d", out, w), b, 0o644); err != nil {
			return 1
		}
	}
	return 0
}

// fakeMode costs a fixed ns per call and logs the harness's calls into it.
type fakeMode struct {
	name    string
	ns      int
	skip    string
	single  bool
	log     *[]string
	counted int64
}

func (m *fakeMode) Name() string { return m.name }
func (m *fakeMode) Setup(context.Context, *Env) (string, error) {
	if m.skip != "" {
		return "", skipf("%s", m.skip)
	}
	return "fake " + m.name, nil
}
func (m *fakeMode) Begin() error { *m.log = append(*m.log, "begin "+m.name); return nil }
func (m *fakeMode) End() error   { *m.log = append(*m.log, "end "+m.name); return nil }
func (m *fakeMode) Command(args []string, seq int) ([]string, []string) {
	*m.log = append(*m.log, fmt.Sprintf("run %s %d", m.name, seq))
	// GORACE: a race-enabled binary otherwise sleeps 1 s before exiting.
	return append([]string{os.Args[0]}, args...), []string{"BENCH_FAKE_NS=" + strconv.Itoa(m.ns), "GORACE=atexit_sleep_ms=0"}
}
func (m *fakeMode) Counts() Counts { return Counts{Recorded: m.counted, Lost: 0} }
func (m *fakeMode) Close() error   { return nil }
func (m *fakeMode) RunsTable(t Table) bool {
	return !m.single || t.Workers == 1
}

func runFake(t *testing.T, modes []Mode, tables []Table, rounds int) *OverheadResult {
	t.Helper()
	res, err := RunOverhead(context.Background(), OverheadConfig{
		Env: &Env{Dir: t.TempDir()}, Modes: modes, Tables: tables, Rounds: rounds,
	})
	require.NoError(t, err)
	return res
}

func TestRunOverheadInterleavesModesRoundByRound(t *testing.T) {
	var log []string
	none := &fakeMode{name: "none", ns: 2000, log: &log, counted: -1}
	ring := &fakeMode{name: "ring", ns: 2050, log: &log, counted: 1 << 40}
	slow := &fakeMode{name: "fifo", ns: 3000, log: &log, counted: 1 << 40}
	tables := []Table{
		{Key: "a", Workers: 1, Calls: 10, SlowCalls: 10},
		{Key: "b", Args: []string{"-t", "2"}, Workers: 2, Calls: 5, SlowCalls: 5},
	}
	res := runFake(t, []Mode{none, ring, slow}, tables, 2)

	// Round 0 runs none, ring, fifo; round 1 starts one later. Each turn
	// runs every table between its mode's Begin and End.
	want := []string{
		"begin none", "run none 0", "run none 1", "end none",
		"begin ring", "run ring 2", "run ring 3", "end ring",
		"begin fifo", "run fifo 4", "run fifo 5", "end fifo",
		"begin ring", "run ring 6", "run ring 7", "end ring",
		"begin fifo", "run fifo 8", "run fifo 9", "end fifo",
		"begin none", "run none 10", "run none 11", "end none",
	}
	assert.Equal(t, want, log)

	require.Len(t, res.Tables, 2)
	a := res.Tables[0]
	require.Len(t, a.Modes, 3)
	assert.Equal(t, 20, a.Modes[1].PerCall.N, "10 calls × 2 rounds")
	assert.Equal(t, 1.0, a.Modes[0].Ratio)
	assert.Equal(t, 50.0, a.Modes[1].AddedNs)
	assert.InDelta(t, 2051.0/2001.0, a.Modes[1].Ratio, 1e-9)
	assert.Len(t, a.Modes[2].Reps, 2)
	assert.Equal(t, 20, res.Tables[1].Modes[0].PerCall.N, "2 workers × 5 calls × 2 rounds")
	assert.Empty(t, res.Void)
}

func TestRunOverheadReportsSkippedAndFilteredModes(t *testing.T) {
	var log []string
	modes := []Mode{
		&fakeMode{name: "none", ns: 2000, log: &log, counted: -1},
		&fakeMode{name: "ebpf", skip: "no BPF on this kernel", log: &log},
		&fakeMode{name: "fifo-1cpu", ns: 7000, single: true, log: &log, counted: -1},
	}
	tables := []Table{{Key: "one", Workers: 1, Calls: 4, SlowCalls: 4}, {Key: "two", Args: []string{"-P", "2"}, Workers: 2, Calls: 4, SlowCalls: 4}}
	res := runFake(t, modes, tables, 1)

	assert.Equal(t, "no BPF on this kernel", res.Modes[1].Skipped)
	assert.NotContains(t, log, "begin ebpf", "a skipped mode never runs")
	for _, tab := range res.Tables {
		assert.Equal(t, "no BPF on this kernel", tab.Modes[1].Skipped)
	}
	assert.Empty(t, res.Tables[0].Modes[2].Skipped)
	assert.InDelta(t, 3.5, res.Tables[0].Modes[2].Ratio, 0.01)
	assert.Contains(t, res.Tables[1].Modes[2].Skipped, "single-worker tables only")
	assert.Zero(t, res.Tables[1].Modes[2].PerCall.N)
}

func TestRunOverheadFlagsAModeThatDidNotTrace(t *testing.T) {
	var log []string
	modes := []Mode{
		&fakeMode{name: "none", ns: 2000, log: &log, counted: -1},
		&fakeMode{name: "ring", ns: 2000, log: &log, counted: 3}, // saw 3 of 1004 calls, lost none
	}
	res := runFake(t, modes, []Table{{Key: "a", Workers: 1, Calls: 4, SlowCalls: 4, Warmup: 1000}}, 1)
	require.Len(t, res.Void, 1)
	assert.Contains(t, res.Void[0], "ring: 1004 calls, 3 recorded, 0 lost")
}
