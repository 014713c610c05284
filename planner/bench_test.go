package planner

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// genTrace makes a trace shaped like a busy host: procs processes in
// applications of ten (a root and nine descendants), files paths, and
// accesses aggregated accesses. Nine in ten accesses go to the
// application's own files, one in ten to a pool of shared files (configs,
// mostly read); one access in five writes. Paths are built once and shared,
// as the store's rows would be after interning.
func genTrace(procs, files, accesses int, seed uint64) *Trace {
	r := rand.New(rand.NewPCG(seed, 1))
	tr := &Trace{Processes: make([]Process, procs), Accesses: make([]Access, accesses)}
	for i := range procs {
		p := &tr.Processes[i]
		p.Key = ProcKey{PID: int32(1000 + i), StartNs: uint64(i) * 1000}
		p.Exe = "/usr/local/bin/app" + strconv.Itoa(i/10)
		if i%10 != 0 {
			par := tr.Processes[i-1-r.IntN(i%10)].Key
			p.Parent, p.PPID = par, par.PID
		}
	}
	paths := make([]string, files)
	for i := range paths {
		paths[i] = fmt.Sprintf("/srv/app%d/data/file%d", i%max(1, procs/10), i)
	}
	shared := max(1, files/100)
	apps := max(1, procs/10)
	perApp := max(1, files/apps)
	for i := range tr.Accesses {
		proc := r.IntN(procs)
		app := proc / 10
		var path string
		write := r.IntN(5) == 0
		if r.IntN(10) == 0 {
			path = paths[r.IntN(shared)]
			write = r.IntN(100) == 0
		} else {
			path = paths[min(files-1, app*perApp+r.IntN(perApp))]
		}
		tr.Accesses[i] = Access{Proc: tr.Processes[proc].Key, Path: path, Op: "openat", Write: write, Count: 1}
	}
	return tr
}

// BenchmarkCompute measures planning (graph build, partition, closure,
// lists) against trace size, with processes and files in a fixed ratio to
// accesses (1 : 10 : 100), so ns/access shows whether growth is linear:
// once with paths only, once with the files numbered (Trace.Files).
// RESTRACK_BENCH_MAX caps the largest size (default 10M accesses).
func BenchmarkCompute(b *testing.B) {
	limit := 10_000_000
	if s := os.Getenv("RESTRACK_BENCH_MAX"); s != "" {
		limit, _ = strconv.Atoi(s)
	}
	for _, n := range []int{10_000, 100_000, 1_000_000, 10_000_000} {
		if n > limit {
			continue
		}
		tr := genTrace(n/100, n/10, n, 1)
		numbered := withFileNumbers(tr)
		for _, v := range []struct {
			name string
			tr   *Trace
		}{{"paths", tr}, {"file-numbers", numbered}} {
			b.Run(fmt.Sprintf("accesses=%d/%s", n, v.name), func(b *testing.B) {
				b.ReportAllocs()
				cpu0 := cpuTime(b)
				for b.Loop() {
					if _, err := Compute(v.tr, Options{AP: v.tr.Processes[0].Key}); err != nil {
						b.Fatal(err)
					}
				}
				// CPU time too: on a shared machine wall time measures the
				// neighbours as much as the planner.
				cpu := cpuTime(b) - cpu0
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/access")
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/access")
			})
		}
		tr, numbered = nil, nil // let the next size have the memory
	}
}

// cpuTime is the CPU time (user + system, every thread, GC included) the
// test process has used so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	require.NoError(tb, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
