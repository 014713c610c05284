//go:build linux

package ebpf

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/restrack/restrack/ring"
)

// BenchmarkOpenClose measures what the eBPF mode adds to one cached
// open+close: the same loop untraced and traced, side by side in one run
// (docs/bench.md, "eBPF mode"). The traced process is this one, so every
// open goes through the enter and exit programs and the ring buffer; a
// goroutine drains the ring as the collector would.
func BenchmarkOpenClose(b *testing.B) {
	path := filepath.Join(b.TempDir(), "f")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		b.Fatal(err)
	}
	// cpu-ns/op is the thread's own CPU time per iteration: the BPF programs
	// run inside the syscall, on this thread, so it holds their cost while
	// leaving out the time other processes take the CPU away (on a shared
	// 2-vCPU machine, wall-clock ns/op swings by ±30 %).
	loop := func(b *testing.B) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		start, n := threadCPUNs(), 0
		for b.Loop() {
			fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			syscall.Close(fd)
			n++
		}
		b.ReportMetric(float64(threadCPUNs()-start)/float64(n), "cpu-ns/op")
	}
	b.Run("mode=untraced", loop)
	b.Run("mode=ebpf", func(b *testing.B) {
		t := mustStart(b, Options{PID: os.Getpid()})
		done := make(chan uint64)
		go func() {
			var n uint64
			batch := make([]ring.Record, 4096)
			for {
				k, err := t.ReadBatch(batch)
				n += uint64(k)
				if errors.Is(err, ErrStopped) || err != nil {
					done <- n
					return
				}
			}
		}()
		loop(b)
		b.StopTimer()
		if err := t.Stop(); err != nil {
			b.Fatal(err)
		}
		read := <-done
		c, err := t.Counters()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(c.Lost()), "lost")
		if read < uint64(b.N) {
			b.Errorf("read %d records for %d opens (counters %+v)", read, b.N, c)
		}
	})
}

func threadCPUNs() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}
