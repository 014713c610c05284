package collector

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/ring"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// vmHWM is this process's peak resident set in bytes (/proc/self/status).
func vmHWM() uint64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range bytes.Split(b, []byte("\n")) {
		if f := bytes.Fields(l); len(f) >= 2 && string(f[0]) == "VmHWM:" {
			kb, _ := strconv.ParseUint(string(f[1]), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkCollectorUnderLoad: producer processes append into a ring of the
// default size while this process runs the collector (default drain
// interval) into a fresh store. It reports drops, the collector's
// throughput and this process's peak RSS. Knobs (environment):
// RESTRACK_LOAD_PRODUCERS (2), RESTRACK_LOAD_EVENTS per producer (1 M),
// RESTRACK_LOAD_FILES distinct paths per producer (256),
// RESTRACK_LOAD_RATE records/s per producer (0: full speed),
// RESTRACK_LOAD_RAW=1 keeps raw events (default: aggregates only),
// RESTRACK_LOAD_RING_SIZE bytes of slots (default ring.DefaultDataSize).
//
//	go test -run '^$' -bench CollectorUnderLoad -benchtime 1x ./collector/
func BenchmarkCollectorUnderLoad(b *testing.B) {
	producers := envInt("RESTRACK_LOAD_PRODUCERS", 2)
	perProducer := envInt("RESTRACK_LOAD_EVENTS", 1_000_000)
	files := envInt("RESTRACK_LOAD_FILES", 256)
	rate := envInt("RESTRACK_LOAD_RATE", 0)
	opts := store.Options{DiscardEvents: true}
	if os.Getenv("RESTRACK_LOAD_RAW") == "1" {
		opts = store.Options{RetainEvents: -1}
	}
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		ringPath := filepath.Join(dir, "ring")
		if err := ring.Create(ringPath, ring.Config{DataSize: uint64(envInt("RESTRACK_LOAD_RING_SIZE", 0))}); err != nil {
			b.Fatal(err)
		}
		st, err := store.Open(filepath.Join(dir, "store"), opts)
		if err != nil {
			b.Fatal(err)
		}
		src, err := OpenRing(ringPath, ring.Options{})
		if err != nil {
			b.Fatal(err)
		}
		c := New(src, st, Config{})
		var maxCommit, maxDrain time.Duration
		c.observer = func(_ int, d, cm time.Duration) {
			maxCommit, maxDrain = max(maxCommit, cm), max(maxDrain, d)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- c.Run(ctx) }()

		var wg sync.WaitGroup
		var mu sync.Mutex
		produced, refused := 0, 0
		var producerNs int64
		for k := range producers {
			cmd := helperCmd(b, "loader", ringPath, fmt.Sprint(k), fmt.Sprint(perProducer), fmt.Sprint(files), fmt.Sprint(rate))
			out, err := cmd.StdoutPipe()
			if err != nil {
				b.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				var n, r int
				var ns int64
				_, _ = fmt.Fscan(bufio.NewReader(out), &n, &r, &ns)
				_ = cmd.Wait()
				mu.Lock()
				produced, refused, producerNs = produced+n, refused+r, max(producerNs, ns)
				mu.Unlock()
			}()
		}
		wg.Wait()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		s := c.Status(context.Background())
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
		src.Close()
		if int(s.Records)+int(s.DroppedFull+s.DroppedTooBig) != produced {
			b.Errorf("received %d + dropped %d != produced %d", s.Records, s.DroppedFull+s.DroppedTooBig, produced)
		}
		b.ReportMetric(float64(produced), "produced")
		b.ReportMetric(float64(s.DroppedFull+s.DroppedTooBig), "dropped")
		b.ReportMetric(float64(s.Records)/elapsed.Seconds(), "stored/s")
		b.ReportMetric(float64(produced)/(float64(producerNs)/1e9), "produced/s")
		b.ReportMetric(float64(vmHWM())/(1<<20), "peakRSS-MiB")
		b.ReportMetric(float64(s.FullWaits), "fullwaits")
		b.ReportMetric(maxCommit.Seconds()*1e3, "maxcommit-ms")
	}
}
