package collector

import (
	"bytes"
	"net"
	"strconv"

	"golang.org/x/sys/unix"
)

type peer struct {
	uid uint32
	pid int32
}

// peerCred is the uid and pid the kernel recorded when the peer connected
// (SO_PEERCRED): the effective uid, so a setuid program registers as the
// uid it runs as.
func peerCred(c *net.UnixConn) (peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return peer{}, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return peer{}, err
	}
	if credErr != nil {
		return peer{}, credErr
	}
	return peer{uid: cred.Uid, pid: cred.Pid}, nil
}

// userHZ is the unit of /proc/PID/stat's start time: USER_HZ, 100 on every
// Linux architecture restrack builds for (what sysconf(_SC_CLK_TCK) says).
const userHZ = 100

// procIdentity reads, for a registering process, what the shim would
// otherwise read from /proc itself: its start time (field 22 of
// /proc/PID/stat, in ns, the identity pid + start_ns) and its executable.
// Zero values when the process is gone or /proc is not mounted; the shim
// then reads them itself.
func procIdentity(pid int32) (startNs uint64, exe string) {
	// Raw calls into stack buffers, not os.ReadFile and os.Readlink: the
	// registering process waits for this answer, and those add an fstat,
	// the file's poller registration and allocations to every start.
	var path [32]byte
	p := strconv.AppendInt(append(path[:0], "/proc/"...), int64(pid), 10)
	n := len(p)
	var buf [1024]byte // a stat line is ~300 bytes; field 22 comes well before 1 KiB
	if fd, err := unix.Open(string(append(p, "/stat"...)), unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		if m, err := unix.Read(fd, buf[:]); err == nil && m > 0 {
			startNs = parseStatStart(buf[:m])
		}
		unix.Close(fd)
	}
	var link [4096]byte
	if m, err := unix.Readlink(string(append(p[:n], "/exe"...)), link[:]); err == nil && m > 0 && m < len(link) && link[0] == '/' {
		exe = string(link[:m])
	}
	return startNs, exe
}

// parseStatStart takes field 22 (starttime, in clock ticks) of a
// /proc/PID/stat line; the command name (field 2) may hold spaces and
// parentheses, so fields are counted from its last ')'.
func parseStatStart(b []byte) uint64 {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state): field 22 is f[19].
	if len(f) < 20 {
		return 0
	}
	v, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return 0
	}
	return v * (1e9 / userHZ)
}
