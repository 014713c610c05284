package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A child's ru_maxrss is useless here: Linux starts an exec'd child's
// maxrss at its parent's high-water mark (the mm it replaced), so every
// child of a harness that has mapped a 256 MiB ring "peaks" at 256 MiB.
// The child's own mm high-water mark, VmHWM in /proc/PID/status, is right;
// it is only readable while the child lives, so it is sampled.

// hwmWatch samples a process's VmHWM until stopped.
type hwmWatch struct {
	mu   sync.Mutex
	max  int64 // KiB; -1 = never read
	stop chan struct{}
	done chan struct{}
}

// watchHWM samples pid's VmHWM every 20 ms (and once at once).
func watchHWM(pid int) *hwmWatch {
	w := &hwmWatch{max: -1, stop: make(chan struct{}), done: make(chan struct{})}
	w.sample(pid)
	go func() {
		defer close(w.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				w.sample(pid)
			}
		}
	}()
	return w
}

func (w *hwmWatch) sample(pid int) {
	v, err := vmHWMKiB(pid)
	if err != nil {
		return
	}
	w.mu.Lock()
	w.max = max(w.max, v)
	w.mu.Unlock()
}

// Sample reads once more now (call it while the process is still alive).
func (w *hwmWatch) Sample(pid int) { w.sample(pid) }

// Stop ends sampling and returns the highest VmHWM seen in KiB, -1 if none.
func (w *hwmWatch) Stop() int64 {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max
}

// vmHWMKiB reads a live process's peak resident set size.
func vmHWMKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
}
