package main

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// becomeSubreaper makes restrack the parent of every orphan among CMD's
// descendants (a daemon that double-forks), so that run can wait for them
// as strace -f does, instead of returning while they still write files.
func becomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// childPIDs lists restrack's live children (each thread's, since any
// thread may have forked); ok is false when the kernel does not list them.
func childPIDs() (pids []int, ok bool) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, false
	}
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
		if err != nil {
			return nil, false
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids, true
}

// reapChildren waits until restrack has no child left. It waits for the
// listed children by pid, never for "any child": in a test binary another
// goroutine's exec.Cmd must keep its own exit status.
func reapChildren() {
	for {
		pids, ok := childPIDs()
		if !ok {
			for {
				var ws unix.WaitStatus
				if _, err := unix.Wait4(-1, &ws, 0, nil); err != nil && err != unix.EINTR {
					return
				}
			}
		}
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			var ws unix.WaitStatus
			for {
				if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
					break
				}
			}
		}
	}
}
