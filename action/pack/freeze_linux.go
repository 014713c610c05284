package pack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/restrack/restrack/action"
	"github.com/restrack/restrack/planner"
)

// freezer stops a set of live processes so that the files they write hold
// still while they are read, and lets them go again. thaw is idempotent and
// safe from a signal handler's goroutine: it runs on every exit path.
type freezer struct {
	method  string // "cgroup" or "sigstop"
	pids    []int32
	cgroup  string  // the cgroup directory, for "cgroup"
	stopped []int32 // pids we stopped ourselves, for "sigstop"
	once    sync.Once
	err     error
}

const cgroupRoot = "/sys/fs/cgroup"

// freeze stops procs: with the cgroup v2 freezer when they alone fill one
// cgroup this user can write (one write, no race with forks), else with
// SIGSTOP each. It refuses, with the reason, rather than freeze restrack
// itself or one of its ancestors (that would hang the command and the
// shell waiting for it), or leave a process running it cannot stop.
func freeze(procs []planner.ProcKey, host planner.Host) (*freezer, error) {
	self := action.SelfAndAncestors()
	f := &freezer{}
	for _, p := range procs {
		if self[p.PID] {
			return nil, fmt.Errorf("process %d is restrack itself or one of its ancestors (the shell that started it?): freezing it would hang this command; run restrack pack from outside the traced application, or pass --no-freeze", p.PID)
		}
		f.pids = append(f.pids, p.PID)
	}
	if dir, ok := sharedCgroup(f.pids); ok {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte("1"), 0); err == nil {
			f.method, f.cgroup = "cgroup", dir
			if err := waitCgroupFrozen(dir, 5*time.Second); err != nil {
				f.thaw()
				return nil, err
			}
			return f, nil
		}
	}
	f.method = "sigstop"
	for _, p := range procs {
		hp, ok := host.Process(p.PID)
		if !ok || hp.StartNs != p.StartNs {
			continue // it exited since the plan: nothing to freeze
		}
		if procState(p.PID) == 'T' {
			continue // stopped already (by its job control): leave it as it is on thaw
		}
		if err := unix.Kill(int(p.PID), unix.SIGSTOP); err != nil {
			if errors.Is(err, unix.ESRCH) {
				continue
			}
			f.thaw()
			return nil, fmt.Errorf("cannot stop process %d to read its files consistently: %w (run as its owner or root, or pass --no-freeze to read them live and have changes reported)", p.PID, err)
		}
		f.stopped = append(f.stopped, p.PID)
	}
	// SIGSTOP is asynchronous: wait until each one shows as stopped.
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range f.stopped {
		for st := procState(pid); st != 'T' && st != 't' && st != 0 && st != 'Z' && st != 'X'; st = procState(pid) {
			if time.Now().After(deadline) {
				f.thaw()
				return nil, fmt.Errorf("process %d did not stop within 5s after SIGSTOP (state %c)", pid, st)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return f, nil
}

func (f *freezer) thaw() error {
	f.once.Do(func() {
		switch f.method {
		case "cgroup":
			f.err = os.WriteFile(filepath.Join(f.cgroup, "cgroup.freeze"), []byte("0"), 0)
		case "sigstop":
			for _, pid := range f.stopped {
				if err := unix.Kill(int(pid), unix.SIGCONT); err != nil && !errors.Is(err, unix.ESRCH) && f.err == nil {
					f.err = fmt.Errorf("SIGCONT to %d: %w", pid, err)
				}
			}
		}
	})
	return f.err
}

func procState(pid int32) byte {
	if f := action.StatFields(int(pid)); len(f) > 0 && f[0] != "" {
		return f[0][0]
	}
	return 0
}

// sharedCgroup: the cgroup v2 directory that holds exactly these pids, when
// there is one and this user may freeze it. A cgroup with any other process
// in it (restrack, a staying AP) is never frozen.
func sharedCgroup(pids []int32) (string, bool) {
	var rel string
	for i, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/cgroup")
		if err != nil {
			return "", false
		}
		var cg string
		for _, line := range strings.Split(string(b), "\n") {
			if p, ok := strings.CutPrefix(line, "0::"); ok {
				cg = p
			}
		}
		if cg == "" || i > 0 && cg != rel {
			return "", false
		}
		rel = cg
	}
	if rel == "" || rel == "/" {
		return "", false
	}
	dir := filepath.Join(cgroupRoot, rel)
	members, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return "", false
	}
	for _, s := range strings.Fields(string(members)) {
		n, err := strconv.Atoi(s)
		if err != nil || !slices.Contains(pids, int32(n)) {
			return "", false
		}
	}
	if unix.Access(filepath.Join(dir, "cgroup.freeze"), unix.W_OK) != nil {
		return "", false
	}
	return dir, true
}

func waitCgroupFrozen(dir string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
		if err != nil {
			return fmt.Errorf("cgroup freezer: %w", err)
		}
		if strings.Contains(string(b), "frozen 1") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s did not freeze within %v", dir, limit)
		}
		time.Sleep(time.Millisecond)
	}
}
