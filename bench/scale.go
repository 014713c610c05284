package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/restrack/restrack/collector"
	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/internal/usock"
	"github.com/restrack/restrack/ring"
)

// Throughput is one "how fast" figure: the best of its repetitions, since
// on a shared machine interference only ever slows a run down.
type Throughput struct {
	Records       int     `json:"records"`
	Reps          int     `json:"reps"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	// AllRecordsPerSec lists every repetition, for the spread.
	AllRecordsPerSec []float64 `json:"all_records_per_sec"`
}

// ProducerRun is one configuration of the sustained-load experiment: N
// traced processes opening a file as fast as they can, the real collector
// draining.
type ProducerRun struct {
	Producers     int    `json:"producers"`
	RingSize      uint64 `json:"ring_size"`
	DrainInterval string `json:"drain_interval"`
	Default       bool   `json:"default_settings"`
	// AggregatesOnly: the collector ran with -retain-events 0 (no raw
	// events kept, only the aggregates the planner reads).
	AggregatesOnly bool    `json:"aggregates_only,omitempty"`
	Opens          int64   `json:"opens"` // timed opens issued, all producers
	Seconds        float64 `json:"seconds"`
	OpensPerSec    float64 `json:"opens_per_sec"`
	Received       uint64  `json:"received"`   // records committed to the store
	Dropped        uint64  `json:"dropped"`    // full + too big + abandoned + corrupted
	FullWaits      uint64  `json:"full_waits"` // appends that found the ring full and waited
	Drains         uint64  `json:"drains"`     // batches committed (status just before SIGTERM)
	PeakRSSKiB     int64   `json:"collector_peak_rss_kib"`
}

// ScaleResult is the collector's scale figures.
type ScaleResult struct {
	Drain  Throughput `json:"drain"`
	Ingest Throughput `json:"store_ingest"`
	// IngestAggregates is Ingest with raw events discarded (aggregates only).
	IngestAggregates Throughput    `json:"store_ingest_aggregates_only"`
	Producers        []ProducerRun `json:"producers"`
	// PeakRSSKiB is the largest collector RSS over the producer runs.
	PeakRSSKiB int64 `json:"collector_peak_rss_kib"`
}

// benchPath is the path scale records carry: 64 bytes, as in the ring's
// own benchmarks, so a record takes two 64-byte slots.
const benchPath = "/srv/app/data/restrack-bench/a-file-of-sixty-four-bytes-0000000.db"

// RunScale measures drain and ingest throughput in process, then the
// sustained multi-producer load through the shim and the collector daemon.
func RunScale(ctx context.Context, env *Env, quick bool, logf func(string, ...any)) (*ScaleResult, error) {
	res := &ScaleResult{}
	n, reps, ingestN := 1_000_000, 5, 300_000
	if quick {
		n, reps, ingestN = 100_000, 2, 30_000
	}
	var err error
	if res.Drain, err = drainThroughput(n, reps); err != nil {
		return nil, fmt.Errorf("drain throughput: %w", err)
	}
	logf("drain: %.1f M records/s", res.Drain.RecordsPerSec/1e6)
	if res.Ingest, err = ingestThroughput(env.Dir, ingestN, min(reps, 3), store.Options{}); err != nil {
		return nil, fmt.Errorf("store ingest: %w", err)
	}
	logf("ingest: %.0f k events/s", res.Ingest.RecordsPerSec/1e3)
	if res.IngestAggregates, err = ingestThroughput(env.Dir, ingestN, min(reps, 3), store.Options{DiscardEvents: true}); err != nil {
		return nil, fmt.Errorf("store ingest, aggregates only: %w", err)
	}
	logf("ingest, aggregates only: %.0f k events/s", res.IngestAggregates.RecordsPerSec/1e3)

	type cfg struct {
		procs    int
		size     uint64
		interval time.Duration
		aggOnly  bool
	}
	def := cfg{2, ring.DefaultDataSize, collector.DefaultDrainInterval, false}
	grid := []cfg{def}
	calls := 20_000
	if !quick {
		calls = 250_000
		grid = []cfg{
			{1, ring.DefaultDataSize, collector.DefaultDrainInterval, false}, def,
			{4, ring.DefaultDataSize, collector.DefaultDrainInterval, false},
			{2, ring.DefaultDataSize, collector.DefaultDrainInterval, true},
			{2, 64 << 20, collector.DefaultDrainInterval, false},
			{2, ring.DefaultDataSize, time.Millisecond, false},
			{2, ring.DefaultDataSize, 100 * time.Millisecond, false},
			{2, 1 << 20, 10 * time.Millisecond, false}, {2, 1 << 20, 100 * time.Millisecond, false},
			{2, 64 << 10, time.Millisecond, false}, {2, 64 << 10, 10 * time.Millisecond, false}, {2, 64 << 10, 100 * time.Millisecond, false},
		}
	}
	for _, c := range grid {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pr, err := producerRun(ctx, env, c.procs, c.size, c.interval, c.aggOnly, calls)
		if err != nil {
			return nil, fmt.Errorf("%d producers, ring %d, interval %v: %w", c.procs, c.size, c.interval, err)
		}
		pr.Default = c.size == def.size && c.interval == def.interval && !c.aggOnly
		res.Producers = append(res.Producers, pr)
		res.PeakRSSKiB = max(res.PeakRSSKiB, pr.PeakRSSKiB)
		logf("producers=%d ring=%d interval=%v: received %d dropped %d", pr.Producers, pr.RingSize, pr.DrainInterval, pr.Received, pr.Dropped)
	}
	return res, nil
}

// fillRing creates a ring large enough for n records and appends them with
// the Go producer; it returns the ring path (the caller removes it).
func fillRing(n int, distinct int) (string, error) {
	path := shmPath("scale")
	size := uint64(ring.MinDataSize)
	for size < uint64(n)*2*ring.SlotSize*2 {
		size <<= 1
	}
	if err := ring.Create(path, ring.Config{DataSize: size}); err != nil {
		return "", err
	}
	w, err := ring.OpenWriter(path)
	if err != nil {
		os.Remove(path)
		return "", err
	}
	defer w.Close()
	paths := make([][]byte, max(distinct, 1))
	for i := range paths {
		p := []byte(benchPath)
		copy(p[len(p)-10:], fmt.Sprintf("%07d.db", i))
		paths[i] = p
	}
	rec := ring.Record{Type: ring.TypeEvent, Access: ring.AccessRead, Op: ring.OpOpen, PID: int32(os.Getpid()), TID: int32(os.Getpid()), PPID: 1, StartNs: 1, Result: 3}
	for i := range n {
		rec.Str1 = paths[i%len(paths)]
		if err := w.Append(&rec); err != nil {
			os.Remove(path)
			return "", fmt.Errorf("append record %d: %w", i, err)
		}
	}
	return path, nil
}

// drainThroughput: the consumer's side alone, Reader.Drain and Release
// over a full ring, as the collector does before committing.
func drainThroughput(n, reps int) (Throughput, error) {
	t := Throughput{Records: n, Reps: reps}
	b := ring.NewBatch(collector.DefaultBatchRecords, collector.DefaultBatchBytes)
	for range reps {
		path, err := fillRing(n, 1)
		if err != nil {
			return t, err
		}
		r, err := ring.Open(path, ring.Options{})
		if err != nil {
			os.Remove(path)
			return t, err
		}
		got, bytes := 0, uint64(0)
		start := time.Now()
		for got < n {
			r.Drain(b)
			if len(b.Records) == 0 {
				break
			}
			got += len(b.Records)
			bytes += b.Bytes
			r.Release(b.End)
		}
		el := time.Since(start).Seconds()
		r.Close()
		os.Remove(path)
		if got != n {
			return t, fmt.Errorf("drained %d of %d records", got, n)
		}
		rps := float64(n) / el
		t.AllRecordsPerSec = append(t.AllRecordsPerSec, rps)
		if rps > t.RecordsPerSec {
			t.RecordsPerSec, t.MBPerSec = rps, float64(bytes)/el/1e6
		}
	}
	return t, nil
}

// ingestThroughput: the whole collector path, from a full ring through
// Collector.DrainOnce into a fresh store (the default settings: raw events
// kept, aggregates folded, one transaction per batch).
func ingestThroughput(dir string, n, reps int, opts store.Options) (Throughput, error) {
	t := Throughput{Records: n, Reps: reps}
	for i := range reps {
		path, err := fillRing(n, 1000)
		if err != nil {
			return t, err
		}
		rate, mb, err := ingestOnce(path, filepath.Join(dir, "ingest-store-"+strconv.Itoa(i)), n, opts)
		os.Remove(path)
		if err != nil {
			return t, err
		}
		t.AllRecordsPerSec = append(t.AllRecordsPerSec, rate)
		if rate > t.RecordsPerSec {
			t.RecordsPerSec, t.MBPerSec = rate, mb
		}
	}
	return t, nil
}

func ingestOnce(ringPath, storeDir string, n int, opts store.Options) (float64, float64, error) {
	defer os.RemoveAll(storeDir)
	st, err := store.Open(storeDir, opts)
	if err != nil {
		return 0, 0, err
	}
	defer st.Close()
	src, err := collector.OpenRing(ringPath, ring.Options{})
	if err != nil {
		return 0, 0, err
	}
	defer src.Close()
	c := collector.New(src, st, collector.Config{Logf: func(string, ...any) {}})
	start := time.Now()
	if _, err := c.DrainOnce(); err != nil {
		return 0, 0, err
	}
	el := time.Since(start).Seconds()
	s := c.Status(context.Background())
	if s.Records != uint64(n) {
		return 0, 0, fmt.Errorf("collector committed %d of %d records", s.Records, n)
	}
	return float64(n) / el, float64(s.Bytes) / el / 1e6, nil
}

// producerRun starts the collector daemon on a new ring, runs procs traced
// processes opening a file back to back, lets the collector drain, and
// reads its counters.
func producerRun(ctx context.Context, env *Env, procs int, size uint64, interval time.Duration, aggOnly bool, calls int) (ProducerRun, error) {
	pr := ProducerRun{Producers: procs, RingSize: size, DrainInterval: interval.String(), AggregatesOnly: aggOnly}
	dir, err := os.MkdirTemp(env.Dir, "producers-")
	if err != nil {
		return pr, err
	}
	defer os.RemoveAll(dir)
	ringPath := shmPath("producers")
	defer os.Remove(ringPath)
	sock := filepath.Join(dir, "c.sock")
	var stderr bytes.Buffer
	var extra []string
	if aggOnly {
		extra = []string{"-retain-events", "0"}
	}
	cmd, err := startCollector(ctx, env.Collector, ringPath, size, interval, filepath.Join(dir, "store"), sock, &stderr, extra...)
	if err != nil {
		return pr, err
	}
	file, err := benchFile(dir)
	if err != nil {
		_, _ = stopCollector(cmd)
		return pr, err
	}
	args := []string{"-p", file, "-o", filepath.Join(dir, "samples"), "-n", strconv.Itoa(calls), "-w", "0"}
	if procs > 1 {
		args = append(args, "-P", strconv.Itoa(procs))
	}
	w := exec.CommandContext(ctx, env.Workload, args...)
	w.Env = append(os.Environ(), "LD_PRELOAD="+env.Shim, "RESTRACK_MODE=ring", "RESTRACK_RING="+ringPath)
	var wout bytes.Buffer
	w.Stdout, w.Stderr = &wout, &wout
	start := time.Now()
	err = w.Run()
	pr.Seconds = time.Since(start).Seconds()
	if err != nil {
		_, _ = stopCollector(cmd)
		return pr, fmt.Errorf("workload: %w: %s", err, strings.TrimSpace(wout.String()))
	}
	pr.Opens = int64(procs * calls)
	pr.OpensPerSec = float64(pr.Opens) / pr.Seconds
	// SIGTERM makes the collector drain what is left and commit it; the
	// store then says what was received and what the producers dropped.
	var s collector.Status
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_ = usock.Query(qctx, sock, "status", nil, &s)
	cancel()
	rss, err := stopCollector(cmd)
	if err != nil {
		return pr, fmt.Errorf("collector: %w (stderr: %s)", err, strings.TrimSpace(stderr.String()))
	}
	st, err := store.Open(filepath.Join(dir, "store"), store.Options{ReadOnly: true})
	if err != nil {
		return pr, err
	}
	stats, err := st.Stats(ctx)
	st.Close()
	if err != nil {
		return pr, err
	}
	pr.Received, pr.Dropped, pr.FullWaits, pr.Drains = stats.Records, stats.Lost.Dropped(), s.FullWaits, s.Drains
	pr.PeakRSSKiB = rss
	return pr, nil
}

// WriteScale prints the scale figures.
func WriteScale(w io.Writer, r *ScaleResult) {
	fmt.Fprintf(w, "Collector drain (ring.Reader Drain+Release, 64-byte paths, in process): %.1f M records/s, %.0f MB/s (best of %d × %d records)\n",
		r.Drain.RecordsPerSec/1e6, r.Drain.MBPerSec, r.Drain.Reps, r.Drain.Records)
	fmt.Fprintf(w, "Store ingest (Collector.DrainOnce: ring → SQLite store, defaults): %.0f k events/s, %.1f MB/s (best of %d × %d records)\n",
		r.Ingest.RecordsPerSec/1e3, r.Ingest.MBPerSec, r.Ingest.Reps, r.Ingest.Records)
	fmt.Fprintf(w, "Store ingest, aggregates only (raw events discarded, collector -retain-events 0): %.0f k events/s, %.1f MB/s\n",
		r.IngestAggregates.RecordsPerSec/1e3, r.IngestAggregates.MBPerSec)
	fmt.Fprintf(w, "\n== sustained load: N traced processes opening back to back (shim → ring → collector daemon)\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "producers\tring\tdrain interval\topens\topens/s\treceived\tdropped\tfull waits\tdrains\tcollector RSS MiB\t")
	for _, p := range r.Producers {
		fmt.Fprintf(tw, "%d\t%s%s\t%s\t%d\t%.0f\t%d\t%d\t%d\t%d\t%.1f\t\n", p.Producers, sizeString(p.RingSize), p.note(), p.DrainInterval,
			p.Opens, p.OpensPerSec, p.Received, p.Dropped, p.FullWaits, p.Drains, float64(p.PeakRSSKiB)/1024)
	}
	tw.Flush()
	fmt.Fprintf(w, "collector peak RSS over these runs: %.1f MiB\n", float64(r.PeakRSSKiB)/1024)
}

// note marks the default configuration and the aggregates-only one.
func (p ProducerRun) note() string {
	switch {
	case p.Default:
		return " (default)"
	case p.AggregatesOnly:
		return ", -retain-events 0"
	}
	return ""
}

func sizeString(b uint64) string {
	switch {
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", b>>10)
	}
	return fmt.Sprintf("%d B", b)
}
