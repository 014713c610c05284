// Command shimbench measures what the shim adds to a warm open+close:
// untraced, ring mode (a collector-like reader drains every 10 ms) and FIFO
// mode (a reader takes one record per read, the paper's design), run
// interleaved round by round so that machine noise hits all modes alike.
//
// Two comparisons are printed. The primary one is inside each process:
// the workload (openclose.c) alternates batches through the hooked open
// and through libc's own open, so "added" is the median of paired batch
// differences under the same cache and CPU conditions; it is the figure
// that stays steady on a shared, busy machine. The secondary one compares
// the hooked batches of each mode with those of the untraced runs.
//
//	go run ./libcshim/bench/shimbench -shim build/librestrack.so
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/restrack/restrack/ring"
	"github.com/restrack/restrack/ring/fifo"
)

func main() {
	shim := flag.String("shim", "build/librestrack.so", "the shim to preload")
	src := flag.String("src", "libcshim/bench/openclose.c", "the workload's C source")
	rounds := flag.Int("rounds", 10, "interleaved rounds (each runs every mode once)")
	batches := flag.Int("batches", 200, "batches per run")
	size := flag.Int("batch", 200, "open+close pairs per batch")
	shmDir := flag.String("dir", "/dev/shm", "where the ring and the FIFO live")
	ringSize := flag.Uint64("ring-size", ring.DefaultDataSize, "ring data bytes (a power of two)")
	flag.StringVar(&clock, "clock", "wall", "wall (CLOCK_MONOTONIC) or cpu (the workload thread's CPU time: robust on a busy machine)")
	flag.BoolVar(&deduped, "lookups", false, "the workload makes lookups (statloop.c), which the shim records once per second per path: fewer records than calls is expected")
	flag.Parse()
	if deduped {
		unit = "stat"
	}
	if err := run(*shim, *src, *shmDir, *ringSize, *rounds, *batches, *size); err != nil {
		fmt.Fprintln(os.Stderr, "shimbench:", err)
		os.Exit(1)
	}
}

var clock string

type mode struct {
	name   string
	env    []string
	warmup int // untimed pairs first; -1 = enough for one lap of the ring
	hooked []float64
	direct []float64
	diff   []float64 // hooked batch minus the direct batch after it
}

func run(shim, src, shmDir string, ringSize uint64, rounds, batches, size int) error {
	shim, err := filepath.Abs(shim)
	if err != nil {
		return err
	}
	if _, err := os.Stat(shim); err != nil {
		return fmt.Errorf("shim %s: %w (run make shim)", shim, err)
	}
	work, err := os.MkdirTemp("", "shimbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "openclose")
	if out, err := exec.Command("cc", "-O2", "-o", bin, src).CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %v\n%s", src, err, out)
	}
	target := filepath.Join(work, "file")
	if err := os.WriteFile(target, []byte("warm\n"), 0o644); err != nil {
		return err
	}

	// Ring mode: a reader that behaves like the collector (bulk drain on a
	// timer, never spinning).
	ringPath := filepath.Join(shmDir, fmt.Sprintf("shimbench-%d.ring", os.Getpid()))
	if err := ring.Create(ringPath, ring.Config{DataSize: ringSize}); err != nil {
		return err
	}
	defer os.Remove(ringPath)
	rd, err := ring.Open(ringPath, ring.Options{})
	if err != nil {
		return err
	}
	defer rd.Close()
	var stop atomic.Bool
	var ringRecords atomic.Uint64
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		b := ring.NewBatch(65536, 16<<20)
		for !stop.Load() {
			rd.Wait(10 * time.Millisecond)
			for {
				rd.Drain(b)
				ringRecords.Add(uint64(len(b.Records)))
				rd.Release(b.End)
				if len(b.Records) < cap(b.Records) {
					break
				}
			}
		}
	}()

	// FIFO mode: one record per read, as the paper's tracker did.
	fifoPath := filepath.Join(shmDir, fmt.Sprintf("shimbench-%d.fifo", os.Getpid()))
	if err := fifo.Create(fifoPath); err != nil {
		return err
	}
	defer os.Remove(fifoPath)
	fr, err := fifo.Open(fifoPath)
	if err != nil {
		return err
	}
	var fifoRecords atomic.Uint64
	fifoDone := make(chan struct{})
	go func() {
		defer close(fifoDone)
		var rec ring.Record
		for {
			if err := fr.Next(&rec); err != nil {
				return
			}
			fifoRecords.Add(1)
		}
	}()

	modes := []*mode{
		{name: "untraced", warmup: -1},
		{name: "shim loaded, no ring", env: []string{"LD_PRELOAD=" + shim}, warmup: -1},
		{name: "ring", env: []string{"LD_PRELOAD=" + shim, "RESTRACK_RING=" + ringPath}, warmup: -1},
		// A process's first lap of the ring also pays a page fault per
		// page it touches for the first time (about one per 21 records).
		{name: "ring, first lap", env: []string{"LD_PRELOAD=" + shim, "RESTRACK_RING=" + ringPath}, warmup: 2000},
		// The paper's FIFO blocked the application while the tracker was
		// behind: a 1 s bounded wait makes ours behave the same.
		{name: "fifo", env: []string{"LD_PRELOAD=" + shim, "RESTRACK_MODE=fifo", "RESTRACK_FIFO=" + fifoPath, "RESTRACK_FULL_WAIT_US=1000000"}, warmup: -1},
	}
	// One lap: the ring's slots over the slots an open record of this path
	// takes (header, path, three NULs), plus the usual warm-up.
	slots := (64 + uint64(len(target)) + 3 + ring.SlotSize - 1) / ring.SlotSize
	lap := int(ringSize/(slots*ring.SlotSize)) + 2000
	for _, m := range modes {
		if m.warmup < 0 {
			m.warmup = lap
		}
	}
	for r := 0; r < rounds; r++ {
		// Rotate the order so no mode always runs first (cold) or last.
		for i := range modes {
			m := modes[(i+r)%len(modes)]
			h, d, err := runOnce(bin, target, m.env, batches, size, m.warmup)
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			m.hooked = append(m.hooked, h...)
			m.direct = append(m.direct, d...)
			for i := range h {
				if i < len(d) {
					m.diff = append(m.diff, h[i]-d[i])
				}
			}
		}
	}
	stop.Store(true)
	<-drained
	fr.Close()
	<-fifoDone
	c := rd.Counters()

	base := percentile(modes[0].hooked, 50)
	fmt.Printf("clock: %s\n\n", clock)
	fmt.Printf("| mode | median ns per %s | mean | p99 ns | added ns, paired in-process (median) | added, mean | ratio to libc's, same process | added ns vs untraced runs | ratio |\n|---|---|---|---|---|---|---|---|---|\n", unit)
	for _, m := range modes {
		med, p99 := percentile(m.hooked, 50), percentile(m.hooked, 99)
		d, diff := percentile(m.direct, 50), percentile(m.diff, 50)
		fmt.Printf("| %s | %.0f | %.0f | %.0f | %+.0f | %+.0f | %.3f | %+.0f | %.3f |\n", m.name, med, mean(m.hooked), p99, diff, mean(m.diff), (d+diff)/d, med-base, med/base)
	}
	timed := uint64(rounds) * uint64((batches+1)/2) * uint64(size)
	wantRing := 2*timed + uint64(rounds)*uint64(lap+2000)
	wantFIFO := timed + uint64(rounds)*uint64(lap)
	fmt.Printf("\nrounds %d × %d batches × %d pairs per mode, ring %d bytes; ring records %d (≥ %d opens; dropped %d), fifo records %d (≥ %d opens)\n",
		rounds, batches, size, ringSize, ringRecords.Load(), wantRing, c.Dropped(), fifoRecords.Load(), wantFIFO)
	if deduped {
		// Lookups repeated within a second are recorded once per thread:
		// fewer records than calls is the design, drops are not.
		if c.Dropped() > 0 {
			return errors.New("the ring dropped records: the figures do not measure full tracing")
		}
		return nil
	}
	if ringRecords.Load() < wantRing || fifoRecords.Load() < wantFIFO {
		return errors.New("a transport lost records: the figures do not measure full tracing")
	}
	return nil
}

func runOnce(bin, target string, env []string, batches, size, warmup int) (hooked, direct []float64, err error) {
	cmd := exec.Command(bin, target, strconv.Itoa(batches), strconv.Itoa(size), strconv.Itoa(warmup), clock)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "LD_PRELOAD=") && !strings.HasPrefix(e, "RESTRACK_") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, nil, fmt.Errorf("%v: %s", err, errb.String())
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		kind, num, ok := strings.Cut(sc.Text(), " ")
		v, err := strconv.ParseFloat(num, 64)
		if !ok || err != nil {
			return nil, nil, fmt.Errorf("bad workload output %q", sc.Text())
		}
		if kind == "H" {
			hooked = append(hooked, v)
		} else {
			direct = append(direct, v)
		}
	}
	return hooked, direct, nil
}

var (
	deduped bool
	unit    = "open+close"
)

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var sum float64
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v))
}

func percentile(v []float64, p float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(s)-1))
	return s[i]
}
