package ebpf

import (
	"encoding/binary"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/restrack/restrack/ring"
)

func sockaddr4(a [4]byte, port uint16) string {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint16(b, afInet)
	binary.BigEndian.PutUint16(b[2:], port)
	copy(b[4:], a[:])
	return string(b)
}

func sockaddr6(a [16]byte, port uint16, scope uint32) string {
	b := make([]byte, 28)
	binary.LittleEndian.PutUint16(b, afInet6)
	binary.BigEndian.PutUint16(b[2:], port)
	copy(b[8:], a[:])
	binary.LittleEndian.PutUint32(b[24:], scope)
	return string(b)
}

func sockinfoBytes(family, typ, port uint16, addr []byte) string {
	b := make([]byte, sockinfoSize)
	binary.LittleEndian.PutUint16(b, family)
	binary.LittleEndian.PutUint16(b[2:], typ)
	binary.LittleEndian.PutUint16(b[4:], port)
	copy(b[8:], addr)
	return string(b)
}

func TestSocketSamplesBecomeTheShimsEndpointStrings(t *testing.T) {
	c := newConverter(fakeFS{cwds: map[int32]string{10: "/home/u"}})
	loop4 := []byte{127, 0, 0, 1}
	var mapped [16]byte
	copy(mapped[10:], []byte{0xff, 0xff, 127, 0, 0, 1})
	var ll [16]byte
	ll[0], ll[1], ll[15] = 0xfe, 0x80, 1
	sock := func(op ring.Op, result int32, strs ...string) []byte {
		b := sample(typeEvent, uint16(op), 10, 3, 0, strs...)
		binary.LittleEndian.PutUint16(b[10:], efSocket)
		binary.LittleEndian.PutUint32(b[24:], uint32(result))
		return b
	}
	tcp4 := sockinfoBytes(afInet, syscall.SOCK_STREAM, 5432, make([]byte, 4))
	for _, tc := range []struct {
		name        string
		sample      []byte
		path, path2 string
		rflags      uint16
	}{
		{"a bind to port 0 names the kernel's port", sock(ring.OpBind, 0, sockaddr4([4]byte(loop4), 0), "", sockinfoBytes(afInet, syscall.SOCK_STREAM, 40000, loop4)), "tcp://127.0.0.1:40000", "", 0},
		{"a UDP connect", sock(ring.OpConnect, 0, sockaddr4([4]byte{10, 0, 0, 2}, 53), "", sockinfoBytes(afInet, syscall.SOCK_DGRAM, 0, nil)), "udp://10.0.0.2:53", "", 0},
		{"a connect in progress is flagged", sock(ring.OpConnect, -int32(syscall.EINPROGRESS), sockaddr4([4]byte(loop4), 80), "", tcp4), "tcp://127.0.0.1:80", "", ring.RFInProgress},
		{"a mapped IPv6 address and a link-local scope as the shim prints them", sock(ring.OpConnect, 0, sockaddr6(mapped, 80, 0), "", sockinfoBytes(afInet6, syscall.SOCK_STREAM, 0, nil)), "tcp://[::ffff:127.0.0.1]:80", "", 0},
		{"a link-local scope id", sock(ring.OpConnect, 0, sockaddr6(ll, 22, 2), "", sockinfoBytes(afInet6, syscall.SOCK_STREAM, 0, nil)), "tcp://[fe80::1%2]:22", "", 0},
		{"listen names the socket's own address", sock(ring.OpListen, 0, "", "", tcp4), "tcp://0.0.0.0:5432", "", 0},
		{"accept4 names the listener and the peer's host", sock(ring.OpAccept4, 7, "", sockaddr4([4]byte(loop4), 51000), tcp4), "tcp://0.0.0.0:5432?peer=127.0.0.1", "tcp://127.0.0.1:51000", 0},
		{"an AF_UNIX connect is the socket's path, resolved like the shim's", sock(ring.OpConnect, 0, "\x01\x00run/app.sock\x00junk", "", sockinfoBytes(1, syscall.SOCK_STREAM, 0, nil)), "/home/u/run/app.sock", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustConvert(t, c, tc.sample)
			assert.Equal(t, tc.path, string(r.Str1))
			assert.Equal(t, tc.path2, string(r.Str2))
			assert.Equal(t, tc.rflags, r.RFlags)
			assert.Equal(t, uint8(ring.AccessWrite), r.Access)
		})
	}
	var ev rawEvent
	var out [2]ring.Record
	for name, b := range map[string][]byte{
		"an accept that found nothing":  sock(ring.OpAccept4, -int32(syscall.EAGAIN), "", "", tcp4),
		"an abstract AF_UNIX socket":    sock(ring.OpBind, 0, "\x01\x00\x00abstract", "", sockinfoBytes(1, 1, 0, nil)),
		"a listen on an AF_UNIX socket": sock(ring.OpListen, 0, "", "", sockinfoBytes(1, 1, 0, nil)),
	} {
		assert.NoError(t, decodeEvent(b, &ev))
		assert.Equal(t, 0, c.convert(&ev, &out), "%s: no record, as the shim", name)
	}
}
