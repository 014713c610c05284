package ebpf

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"syscall"

	"github.com/restrack/restrack/ring"
)

// Socket calls (RT_EF_SOCKET): the kernel side sends the raw sockaddr and
// what the socket is (struct rt_sockinfo); the converter writes the same
// canonical endpoint strings as the shim (libcshim/shim_hooks_net.c,
// docs/ring-abi.md "Network endpoints"), so `restrack coverage` compares
// them, and an AF_UNIX socket's path as the shim records it.

const (
	efSocket     = 0x10
	sockinfoSize = 24
	afUnix       = 1
	afInet       = 2
	afInet6      = 10
)

type sockinfo struct {
	family, typ, port uint16
	addr              [16]byte
}

func decodeSockinfo(b []byte) (sockinfo, bool) {
	if len(b) != sockinfoSize {
		return sockinfo{}, false
	}
	le := binary.LittleEndian
	si := sockinfo{family: le.Uint16(b[0:]), typ: le.Uint16(b[2:]), port: le.Uint16(b[4:])}
	copy(si.addr[:], b[8:24])
	return si, si.family != 0
}

func scheme(typ uint16, known bool) string {
	if known {
		switch typ {
		case syscall.SOCK_STREAM:
			return "tcp://"
		case syscall.SOCK_DGRAM:
			return "udp://"
		case syscall.SOCK_SEQPACKET:
			return "sctp://"
		}
	}
	return "ip://"
}

// inetAddr reads an AF_INET/AF_INET6 sockaddr.
func inetAddr(b []byte) (netip.Addr, uint16, bool) {
	if len(b) < 2 {
		return netip.Addr{}, 0, false
	}
	switch binary.LittleEndian.Uint16(b) {
	case afInet:
		if len(b) < 16 {
			return netip.Addr{}, 0, false
		}
		return netip.AddrFrom4([4]byte(b[4:8])), binary.BigEndian.Uint16(b[2:4]), true
	case afInet6:
		if len(b) < 24 {
			return netip.Addr{}, 0, false
		}
		a := netip.AddrFrom16([16]byte(b[8:24]))
		if len(b) >= 28 {
			if scope := binary.LittleEndian.Uint32(b[24:28]); scope != 0 {
				a = a.WithZone(strconv.FormatUint(uint64(scope), 10))
			}
		}
		return a, binary.BigEndian.Uint16(b[2:4]), true
	}
	return netip.Addr{}, 0, false
}

func endpointString(sch string, a netip.Addr, port uint16) string {
	host := a.String()
	if a.Is6() {
		host = "[" + host + "]"
	}
	return sch + host + ":" + strconv.Itoa(int(port))
}

func (si sockinfo) local() netip.Addr {
	if si.family == afInet {
		return netip.AddrFrom4([4]byte(si.addr[:4]))
	}
	return netip.AddrFrom16(si.addr)
}

// convertSocket fills rec for a socket call; false: no record (a non-inet
// socket's listen or accept, or an accept that found nothing to accept —
// the shim records none of these either).
func (c *converter) convertSocket(ev *rawEvent, rec *ring.Record) bool {
	rec.Access = rec.Op.DefaultAccess()
	si, known := decodeSockinfo(ev.Str3)
	if known && si.family == afUnix || !known && len(ev.Str1) >= 2 && binary.LittleEndian.Uint16(ev.Str1) == afUnix {
		return c.convertUnixSocket(ev, rec)
	}
	if known && si.family != afInet && si.family != afInet6 {
		return false
	}
	sch := scheme(si.typ, known)
	switch rec.Op {
	case ring.OpBind, ring.OpConnect:
		a, port, ok := inetAddr(ev.Str1)
		if !ok {
			return false
		}
		// A bind to port 0 records the port the kernel chose, as the shim.
		if rec.Op == ring.OpBind && ev.Result == 0 && port == 0 && known {
			port = si.port
		}
		if rec.Op == ring.OpConnect && (ev.Result == -int32(syscall.EINPROGRESS) || ev.Result == -int32(syscall.EINTR)) {
			rec.RFlags |= ring.RFInProgress
		}
		rec.Str1 = c.keepString(endpointString(sch, a, port))
	case ring.OpListen:
		if !known {
			rec.Str1 = c.keepString(sch + "?")
			return true
		}
		rec.Str1 = c.keepString(endpointString(sch, si.local(), si.port))
	case ring.OpAccept, ring.OpAccept4:
		if ev.Result == -int32(syscall.EAGAIN) || ev.Result == -int32(syscall.EINTR) {
			return false
		}
		s := sch + "?"
		if known {
			s = endpointString(sch, si.local(), si.port)
		}
		if a, port, ok := inetAddr(ev.Str2); ok && ev.Result >= 0 {
			s += "?peer=" + a.String()
			rec.Str2 = c.keepString(endpointString(sch, a, port))
		}
		rec.Str1 = c.keepString(s)
	}
	return true
}

// convertUnixSocket: bind and connect by path, as the shim records them
// (abstract sockets and other calls are not).
func (c *converter) convertUnixSocket(ev *rawEvent, rec *ring.Record) bool {
	if rec.Op != ring.OpBind && rec.Op != ring.OpConnect || len(ev.Str1) <= 2 || ev.Str1[2] == 0 {
		return false
	}
	path := ev.Str1[2:]
	for i, b := range path {
		if b == 0 {
			path = path[:i]
			break
		}
	}
	p, ok := c.resolve(ev.PID, atFDCWD, path, nil)
	if !ok {
		rec.RFlags |= ring.RFUnresolved
	}
	rec.Str1 = c.keepString(p)
	return true
}
