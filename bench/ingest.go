package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/restrack/restrack/collector"
	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/ring"
)

// IngestRun is the collector's cost for one trace shape: a default-size
// ring filled half-way, then drained and committed by a Collector in this
// process into a fresh store at default settings (raw events kept), round
// after round, the store closed at the end (so the last fold counts too).
type IngestRun struct {
	Shape   string `json:"shape"` // "repeat-pair": one (process, file) pair; "new-pair": every event a new file
	Records int    `json:"records"`
	// CPUNsPerEvent is user+sys CPU of this process (every goroutine: drain,
	// commit, checkpoints, GC) divided by the events stored: what the
	// collector takes from the traced workload's CPUs.
	CPUNsPerEvent float64 `json:"cpu_ns_per_event"`
	// DrainCPUNsPerEvent is the part spent while draining, before the
	// store's Close (which folded deltas into SQLite up to schema 6; since
	// schema 7 it only closes files): the cost a workload pays while it
	// runs.
	DrainCPUNsPerEvent float64 `json:"drain_cpu_ns_per_event"`
	EventsPerSec       float64 `json:"events_per_sec"` // wall clock
	// MaterializeCPUNsPerEvent is what `restrack sql` costs afterwards
	// (store.Materialize: the SQL tables files and accesses, which the
	// collector no longer writes), per event of the trace.
	MaterializeCPUNsPerEvent float64 `json:"materialize_cpu_ns_per_event"`
	// AllCPUNsPerEvent lists every repetition; the figure is their best.
	AllCPUNsPerEvent []float64 `json:"all_cpu_ns_per_event"`
}

// RunIngest measures both trace shapes, reps times each.
func RunIngest(dir string, n, reps int, logf func(string, ...any)) ([]IngestRun, error) {
	var out []IngestRun
	for _, shape := range []struct {
		name     string
		distinct int
	}{{"repeat-pair", 1}, {"new-pair", n}} {
		if os.Getenv("RESTRACK_BENCH_SHAPE") != "" && os.Getenv("RESTRACK_BENCH_SHAPE") != shape.name {
			continue
		}
		r := IngestRun{Shape: shape.name, Records: n}
		for i := range reps {
			cpu, drainCPU, rate, mat, err := ingestCPU(dir, n, shape.distinct, i)
			if err != nil {
				return nil, fmt.Errorf("%s ingest: %w", shape.name, err)
			}
			r.AllCPUNsPerEvent = append(r.AllCPUNsPerEvent, cpu)
			if r.CPUNsPerEvent == 0 || cpu < r.CPUNsPerEvent {
				r.CPUNsPerEvent, r.DrainCPUNsPerEvent = cpu, drainCPU
			}
			if r.MaterializeCPUNsPerEvent == 0 || mat < r.MaterializeCPUNsPerEvent {
				r.MaterializeCPUNsPerEvent = mat
			}
			r.EventsPerSec = max(r.EventsPerSec, rate)
		}
		logf("ingest %s: %.0f ns CPU per event (%.0f while draining), %.2f M events/s; materializing the SQL tables afterwards %.0f ns per event",
			r.Shape, r.CPUNsPerEvent, r.DrainCPUNsPerEvent, r.EventsPerSec/1e6, r.MaterializeCPUNsPerEvent)
		out = append(out, r)
	}
	return out, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ingestRound is how many records one round puts in the ring before the
// collector drains it: about half a default ring (64-byte paths take two
// slots), so the collector is at most that far behind, as at defaults.
const ingestRound = 64 * 1024

// ingestCPU measures a Collector draining n records from a ring of the
// default size into a fresh store: the records are appended in rounds of
// ingestRound, and only the drains (and the store's Close) are timed, so
// the producer's CPU is not counted. A ring filled with the whole trace
// beforehand would measure a backlog no default ring can hold.
func ingestCPU(dir string, n, distinct, seq int) (nsPerEvent, drainNsPerEvent, eventsPerSec, materializeNsPerEvent float64, err error) {
	ringPath := shmPath(fmt.Sprintf("ingest-%d", seq))
	if err := ring.Create(ringPath, ring.Config{}); err != nil {
		return 0, 0, 0, 0, err
	}
	defer os.Remove(ringPath)
	w, err := ring.OpenWriter(ringPath)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer w.Close()
	storeDir := filepath.Join(dir, fmt.Sprintf("ingest-cpu-%d-%d", distinct, seq))
	defer os.RemoveAll(storeDir)
	st, err := store.Open(storeDir, store.Options{})
	if err != nil {
		return 0, 0, 0, 0, err
	}
	src, err := collector.OpenRing(ringPath, ring.Options{})
	if err != nil {
		st.Close()
		return 0, 0, 0, 0, err
	}
	c := collector.New(src, st, collector.Config{Logf: func(string, ...any) {}})
	path := []byte(benchPath)
	rec := ring.Record{Type: ring.TypeEvent, Access: ring.AccessRead, Op: ring.OpOpen, PID: int32(os.Getpid()), TID: int32(os.Getpid()), PPID: 1, StartNs: 1, Result: 3, Str1: path}
	var drained, el time.Duration
	var runErr error
	for done := 0; done < n && runErr == nil; {
		for range min(ingestRound, n-done) {
			// The path's 7 digits, written in place: the producer
			// must leave no garbage for the collector's GC to count.
			for i, d := done%max(distinct, 1), len(path)-4; d >= len(path)-10; d-- {
				path[d] = byte('0' + i%10)
				i /= 10
			}
			if err := w.Append(&rec); err != nil {
				runErr = fmt.Errorf("append record %d: %w", done, err)
				break
			}
			done++
		}
		// Opening (creating the schema) is a start-up cost, not a
		// per-event one: the clock runs only around the drains.
		c0, t0 := cpuTime(), time.Now()
		for {
			progressed, err := c.DrainOnce()
			if err != nil {
				runErr = err
			}
			if !progressed || err != nil {
				break
			}
		}
		drained, el = drained+cpuTime()-c0, el+time.Since(t0)
	}
	got := c.Status(context.Background()).Records
	src.Close()
	c0, t0 := cpuTime(), time.Now()
	if err := st.Close(); err != nil && runErr == nil {
		runErr = err
	}
	cpu := drained + cpuTime() - c0
	el += time.Since(t0)
	if runErr != nil {
		return 0, 0, 0, 0, runErr
	}
	if got != uint64(n) {
		return 0, 0, 0, 0, fmt.Errorf("collector committed %d of %d records", got, n)
	}
	// What `restrack sql` then costs: opening the store (the writer reads
	// the path log back) and materializing the SQL tables.
	m0 := cpuTime()
	if st, err = store.Open(storeDir, store.Options{}); err != nil {
		return 0, 0, 0, 0, err
	}
	_, err = st.Materialize(context.Background())
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, 0, 0, 0, err
	}
	mat := cpuTime() - m0
	return float64(cpu.Nanoseconds()) / float64(n), float64(drained.Nanoseconds()) / float64(n), float64(n) / el.Seconds(),
		float64(mat.Nanoseconds()) / float64(n), nil
}

// WriteIngest prints the ingest figures.
func WriteIngest(w io.Writer, runs []IngestRun) {
	fmt.Fprintln(w, "Collector ingest at defaults (raw events kept), a default ring filled half-way and drained, round after round")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "shape\trecords\tCPU ns/event\twhile draining\tevents/s\tthen restrack sql, ns/event\t")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.2f M\t%.0f\t\n", r.Shape, r.Records, r.CPUNsPerEvent, r.DrainCPUNsPerEvent, r.EventsPerSec/1e6, r.MaterializeCPUNsPerEvent)
	}
	tw.Flush()
}
