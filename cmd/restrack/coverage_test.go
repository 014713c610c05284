package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/collector"
	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/coverage"
	"github.com/restrack/restrack/internal/ctest"
	"github.com/restrack/restrack/ring"
)

// mustRunBPF is mustRun for the eBPF modes: where this machine cannot run
// BPF the test is skipped, naming why, unless RESTRACK_REQUIRE_BPF=1 (CI).
func mustRunBPF(tb testing.TB, dir string, args ...string) result {
	tb.Helper()
	r := mustRun(tb, dir, args...)
	if r.code == exitRunFailed && strings.Contains(r.stderr, "eBPF mode unavailable") {
		if os.Getenv("RESTRACK_REQUIRE_BPF") == "1" {
			tb.Fatalf("RESTRACK_REQUIRE_BPF=1 but: %s", r.stderr)
		}
		tb.Skipf("skipping: %s", strings.TrimSpace(r.stderr))
	}
	return r
}

var (
	goWriterOnce sync.Once
	goWriter     string
	goWriterErr  error
)

// mustGoWriter builds collector/ebpf/testdata/gowriter as a static pure-Go
// binary: invisible to the shim, visible to the kernel.
func mustGoWriter(tb testing.TB) string {
	tb.Helper()
	goWriterOnce.Do(func() {
		dir, err := os.MkdirTemp("", "restrack-gowriter-")
		if err != nil {
			goWriterErr = err
			return
		}
		goWriter = filepath.Join(dir, "gowriter")
		cmd := exec.Command("go", "build", "-o", goWriter, "./collector/ebpf/testdata/gowriter")
		cmd.Dir = ctest.RepoRoot(tb)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			goWriterErr = &exec.Error{Name: string(out), Err: err}
		}
	})
	require.NoError(tb, goWriterErr, "build gowriter")
	return goWriter
}

func mustCoverage(tb testing.TB, dir string) coverage.Report {
	tb.Helper()
	r := mustRun(tb, dir, "coverage", "--store", "restrack-data", "--json")
	require.Equal(tb, 0, r.code, r.stderr)
	var rep coverage.Report
	require.NoError(tb, json.Unmarshal([]byte(r.stdout), &rep))
	return rep
}

func TestTheKernelSeesAStaticBinarysWriteTheShimMissesAndCoverageSaysSo(t *testing.T) {
	bin := mustGoWriter(t)
	dir := realTempDir(t)
	work := filepath.Join(dir, "work")
	require.NoError(t, os.Mkdir(work, 0o755))
	r := mustRunBPF(t, dir, "run", "--mode", "ring+ebpf", "--", bin, work)
	require.Equal(t, 0, r.code, r.stderr)

	out := filepath.Join(work, "out.txt")
	var kernel, shim bool
	for _, e := range mustEvents(t, dir, "restrack-data") {
		if e.Path == out {
			kernel = kernel || e.Source == "ebpf"
			shim = shim || e.Source == "ring"
		}
	}
	assert.True(t, kernel, "the eBPF mode recorded the write of %s", out)
	assert.False(t, shim, "the shim cannot see a static binary's raw syscalls")

	rep := mustCoverage(t, dir)
	var p *coverage.Process
	for _, q := range rep.Processes {
		if q.Exe == bin {
			p = q
		}
	}
	require.NotNil(t, p, "coverage lists the static binary: %+v", rep.Processes)
	assert.False(t, p.Shim, "the shim recorded nothing for it")
	assert.Contains(t, p.EBPFOnly, coverage.Seen{Path: out, Access: "write", Ops: []string{"openat", "renameat"}},
		"its write is listed as seen by the kernel only")
	assert.Less(t, rep.Summary.ShimCoverage, 1.0)
	assert.GreaterOrEqual(t, rep.Summary.ShimBlind, 1)

	text := mustRun(t, dir, "coverage", "--store", "restrack-data")
	require.Equal(t, 0, text.code, text.stderr)
	assert.Contains(t, text.stdout, "ebpf only  write "+out)
	assert.Contains(t, text.stdout, "not seen by the shim: a Go program: it calls the kernel without libc")
	assert.Equal(t, "not seen by the shim: a Go program: it calls the kernel without libc, past the shim", p.Why)
}

func TestCoverageNamesWhyTheShimSawNothingOfAProcess(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    coverage.Process
		want string
	}{
		{"a Go program is named as one", coverage.Process{Exe: os.Args[0], EBPF: true}, "not seen by the shim: a Go program"},
		{"a dynamic program points at a cleared LD_PRELOAD or a uid change, not at a static binary",
			coverage.Process{Exe: "/bin/sh", EBPF: true}, "or the process changed its uid before its first call"},
		{"a process the kernel missed", coverage.Process{Exe: "/bin/sh", Shim: true}, "not seen by the eBPF mode"},
		{"a process both saw has no note", coverage.Process{Exe: "/bin/sh", Shim: true, EBPF: true}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := blindWhy(&tt.p)
			if tt.want == "" {
				assert.Empty(t, got)
				return
			}
			assert.Contains(t, got, tt.want)
			assert.NotContains(t, got, "static or pure-Go binary, setuid", "no list of guesses")
		})
	}
}

func TestADynamicallyLinkedWorkloadsOwnPathsAreSeenByBothSides(t *testing.T) {
	dir := realTempDir(t)
	w := filepath.Join(dir, "w")
	require.NoError(t, os.Mkdir(w, 0o755))
	script := strings.NewReplacer("W", w).Replace(
		"echo x > W/a && mv W/a W/b && mkdir W/s && rmdir W/s && cat W/b > /dev/null && ln W/b W/c && rm W/c")
	r := mustRunBPF(t, dir, "run", "--mode", "ring+ebpf", "--", "sh", "-c", script)
	require.Equal(t, 0, r.code, r.stderr)

	seen := map[string]map[string]bool{"ring": {}, "ebpf": {}}
	starts := map[int32]map[uint64]bool{}
	for _, e := range mustEvents(t, dir, "restrack-data", "--all") {
		if starts[e.PID] == nil {
			starts[e.PID] = map[uint64]bool{}
		}
		starts[e.PID][e.StartNs] = true
		for _, p := range []string{e.Path, e.Path2} {
			if strings.HasPrefix(p, w+"/") && seen[e.Source] != nil {
				seen[e.Source][p] = true
			}
		}
	}
	keys := func(m map[string]bool) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	for pid, ss := range starts {
		assert.Len(t, ss, 1, "pid %d has one start time on both sides: one process, not two", pid)
	}
	want := []string{w + "/a", w + "/b", w + "/c", w + "/s"}
	assert.Equal(t, want, keys(seen["ebpf"]), "the kernel saw the workload's paths")
	assert.Equal(t, want, keys(seen["ring"]), "the shim saw the same paths")
}

func TestRunInEbpfModeAloneStoresKernelEventsAndKeepsTheExitStatus(t *testing.T) {
	dir := realTempDir(t)
	r := mustRunBPF(t, dir, "run", "--mode", "ebpf", "--", "sh", "-c", "cat /etc/hostname > out; exit 3")
	require.Equal(t, 3, r.code, r.stderr)
	var found bool
	for _, e := range mustEvents(t, dir, "restrack-data") {
		assert.Equal(t, "ebpf", e.Source, "%+v", e)
		found = found || (e.Path == filepath.Join(dir, "out") && e.Access == "write")
	}
	assert.True(t, found, "the shell's write of out is recorded")
	c := mustRun(t, dir, "coverage", "--store", "restrack-data")
	assert.Equal(t, 0, c.code, c.stderr)
	assert.Contains(t, c.stderr, "the shim recorded nothing", "coverage warns that one side is missing")

	empty := realTempDir(t)
	r = mustRun(t, empty, "run", "--", "true")
	require.Equal(t, 0, r.code, r.stderr)
	c = mustRun(t, empty, "coverage", "--store", "restrack-data")
	assert.Equal(t, 1, c.code, "coverage needs the kernel's side")
	assert.Contains(t, c.stderr, "--mode ring+ebpf")
}

// fakeSource hands out one chunk per record it was given.
type fakeSource struct {
	id   uint64
	recs []ring.Record
	pos  uint64
}

func (f *fakeSource) Info() store.SourceInfo {
	return store.SourceInfo{ID: f.id, Kind: fmt.Sprint(f.id)}
}
func (f *fakeSource) Resume(uint64) error  { return nil }
func (f *fakeSource) Wait(time.Duration)   {}
func (f *fakeSource) Ack(*collector.Chunk) {}
func (f *fakeSource) Close() error         { return nil }
func (f *fakeSource) Counters() collector.SourceCounters {
	return collector.SourceCounters{DroppedFull: f.id * 100}
}
func (f *fakeSource) Next() (*collector.Chunk, error) {
	if len(f.recs) == 0 {
		return &collector.Chunk{Start: f.pos, End: f.pos}, nil
	}
	c := &collector.Chunk{Records: f.recs[:1], Start: f.pos, End: f.pos + 1}
	f.recs, f.pos = f.recs[1:], f.pos+1
	return c, nil
}

func TestAPairOfSourcesIsDrainedRoundRobinAndEachChunkKeepsItsSourcesIdentity(t *testing.T) {
	a := &fakeSource{id: 1, recs: make([]ring.Record, 3)}
	b := &fakeSource{id: 2, recs: make([]ring.Record, 1)}
	p := &pairSource{srcs: [2]collector.Source{a, b}}
	var order []uint64
	for {
		ch, err := p.Next()
		require.NoError(t, err)
		if !ch.Progressed() {
			break
		}
		order = append(order, p.Info().ID)
		assert.Equal(t, p.Info().ID*100, p.Counters().DroppedFull, "counters answer for the chunk's source")
	}
	assert.Equal(t, []uint64{2, 1, 1, 1}, order, "neither source starves the other, and an idle one is skipped")
}
