package collector

import (
	"context"
	"encoding/binary"
	"net"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/restrack/restrack/ring"
)

// A hello that arrives in two parts, the second after the accepting
// goroutine stopped waiting (helloWait), is read on from where it stopped,
// and a client that never speaks does not keep the others from their ring.
func TestRendezvousReadsASlowHelloOnAndServesOthersMeanwhile(t *testing.T) {
	dir := t.TempDir()
	rv, err := ListenRendezvous(RendezvousConfig{Socket: filepath.Join(dir, "rdv.sock"),
		RingDir: filepath.Join(dir, "rings"), RingSize: ring.MinDataSize})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- rv.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()

	dial := func() *net.UnixConn {
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: rv.Socket(), Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var hello [rdvHelloSize]byte
	binary.LittleEndian.PutUint32(hello[0:], rdvMagic)
	binary.LittleEndian.PutUint16(hello[4:], rdvVersion)
	// answered checks a reply that hands out a ring.
	answered := func(c *net.UnixConn, who string) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, rdvReplySize+rdvTextMax)
		oob := make([]byte, unix.CmsgSpace(4*4))
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil || n < rdvReplySize {
			t.Fatalf("%s: no answer (%d bytes): %v", who, n, err)
		}
		if binary.LittleEndian.Uint32(buf[0:]) != rdvMagic || binary.LittleEndian.Uint32(buf[4:]) != 0 {
			t.Fatalf("%s: not a ring handed out: %q", who, buf[:n])
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			t.Fatalf("%s: no descriptor with the answer: %v", who, err)
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			t.Fatalf("%s: no descriptor with the answer: %v", who, err)
		}
		unix.Close(fds[0])
	}

	silent := dial()
	defer silent.Close()

	slow := dial()
	defer slow.Close()
	if _, err := slow.Write(hello[:5]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * helloWait) // the accepting goroutine has given up on it
	if _, err := slow.Write(hello[5:]); err != nil {
		t.Fatal(err)
	}
	answered(slow, "the slow client")

	prompt := dial()
	defer prompt.Close()
	if _, err := prompt.Write(hello[:]); err != nil {
		t.Fatal(err)
	}
	answered(prompt, "the client after a silent one")
}
