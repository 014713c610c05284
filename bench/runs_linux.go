package bench

import "golang.org/x/sys/unix"

// waitExited waits for pid to exit without reaping it (WNOWAIT): its
// /proc/PID/stat then still tells its own CPU apart from its children's.
func waitExited(pid int) error {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err
		}
	}
}
