package collector

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/restrack/restrack/internal/usock"
	"github.com/restrack/restrack/ring"
)

// The rendezvous: how a traced process of any uid gets a ring with nothing
// but the shim preloaded. The Go mirror of libcshim/rt_rendezvous.h; see
// docs/collector.md ("Rendezvous") for the guarantees.
//
// Producer: the shim, once per process image; it connects to one
// well-known, world-connectable socket and sends a hello. Consumer: this
// server. The kernel tells us the peer's uid (SO_PEERCRED, taken at
// connect: the peer cannot lie); we create (or reuse) that uid's ring,
// owned by the uid, mode 0600, in a directory only the collector can enter,
// and pass its descriptor back (SCM_RIGHTS) with the process's start time
// and executable read from /proc, which the process then need not read.
// Every ring holds one uid's records only, and the collector attributes
// them to that uid whatever they claim. A uid this collector cannot serve
// (it is not root and the uid is not its own, or the ring cannot be
// created) gets a refusal that says why, and the process is counted as not
// traced.

// DefaultRendezvousSocket is where the shim looks for the collector when
// RESTRACK_SOCKET is not set (RT_RDV_DEFAULT_SOCKET).
const DefaultRendezvousSocket = "/run/restrack/collector.sock"

// EnvSocket overrides the rendezvous socket, for the shim and the collector.
const EnvSocket = "RESTRACK_SOCKET"

const (
	rdvMagic     = 0x31564452 // "RDV1"
	rdvVersion   = 1
	rdvHelloSize = 16
	rdvReplySize = 24
	rdvTextMax   = 4096
	// rdvDeadline bounds a registration: the shim waits 500 ms at most,
	// so a client slower than this has given up anyway.
	rdvDeadline = time.Second
)

// RendezvousConfig configures a rendezvous server.
type RendezvousConfig struct {
	Socket   string // the socket's path; its directory is created 0755 if missing
	RingDir  string // per-uid rings: created 0700 if missing, must be ours and private
	RingSize uint64 // data size of a new ring (0 = ring.DefaultDataSize)
	// OnlyUID limits the collector to one uid's processes, as if it ran
	// as that user (nil: root serves every uid, anyone else only itself).
	OnlyUID *uint32
	// Logf reports refusals (once per uid and reason) and trouble.
	Logf func(format string, args ...any)
	// NewRing is called (from the serving goroutine) when a uid's ring is
	// first handed out or found in RingDir at start: the collector drains it.
	NewRing func(uid uint32, path string) error
}

// UIDStats is what the rendezvous did for one uid.
type UIDStats struct {
	UID        uint32 `json:"uid"`
	Ring       string `json:"ring,omitempty"`
	Registered uint64 `json:"registered"`                // processes handed the ring
	Untraced   uint64 `json:"untraced"`                  // processes refused
	Reason     string `json:"untraced_reason,omitempty"` // why the last one was
}

// Rendezvous serves per-uid rings on a unix socket.
type Rendezvous struct {
	cfg RendezvousConfig
	ln  *net.UnixListener

	mu     sync.Mutex
	rings  map[uint32]*os.File // open read-write, passed to each registering process
	stats  map[uint32]*UIDStats
	closed bool

	conns    sync.WaitGroup
	live     map[*net.UnixConn]struct{} // under mu: cut short at shutdown
	stopping bool
	failed   atomic.Uint64 // connections that were not a valid registration
}

// ListenRendezvous creates the ring directory and the socket (mode 0666: any
// uid may register; peer credentials decide what it gets) and opens the
// rings already in the directory, so records written while no collector
// ran are drained and their counters kept.
func ListenRendezvous(cfg RendezvousConfig) (*Rendezvous, error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.RingSize == 0 {
		cfg.RingSize = ring.DefaultDataSize
	}
	if err := privateDir(cfg.RingDir); err != nil {
		return nil, err
	}
	rv := &Rendezvous{cfg: cfg, rings: map[uint32]*os.File{}, stats: map[uint32]*UIDStats{},
		live: map[*net.UnixConn]struct{}{}}
	if err := rv.adoptRings(); err != nil {
		return nil, err
	}
	ln, err := listenShared(cfg.Socket)
	if err != nil {
		rv.closeRings()
		return nil, err
	}
	rv.ln = ln
	return rv, nil
}

// privateDir makes dir (0700) or checks that an existing one is a real
// directory of ours that no one else can write or enter: the rings inside
// are handed out by fd only, and a directory planted by another user could
// hold files we would then trust.
func privateDir(dir string) error {
	if dir == "" {
		return errors.New("rendezvous: no ring directory given")
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("ring directory %s: %w", dir, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("ring directory %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("ring directory %s: %w", dir, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("ring directory %s is not a directory (a symlink?): not using it", dir)
	case ok && int(st.Uid) != os.Geteuid():
		return fmt.Errorf("ring directory %s belongs to uid %d, not to this collector (uid %d): not using it; remove it or pass another directory", dir, st.Uid, os.Geteuid())
	case fi.Mode().Perm()&0o077 != 0:
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("ring directory %s is open to others (%v) and cannot be made private: %w", dir, fi.Mode().Perm(), err)
		}
	}
	return nil
}

// listenShared listens on path, world-connectable: any uid may ask, the
// peer's credentials decide what it gets.
func listenShared(path string) (*net.UnixListener, error) {
	if path == "" {
		return nil, errors.New("rendezvous: no socket path given")
	}
	ln, err := usock.ListenUnix(path, 0o755, 0o666)
	if err != nil {
		return nil, fmt.Errorf("rendezvous: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	return ln, nil
}

// ringName is uid's ring file in the ring directory.
func ringName(uid uint32) string { return "uid-" + strconv.FormatUint(uint64(uid), 10) + ".ring" }

// adoptRings opens every uid-N.ring left in the directory by an earlier
// collector.
func (rv *Rendezvous) adoptRings() error {
	ents, err := os.ReadDir(rv.cfg.RingDir)
	if err != nil {
		return fmt.Errorf("ring directory %s: %w", rv.cfg.RingDir, err)
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "uid-") || !strings.HasSuffix(name, ".ring") {
			continue
		}
		uid, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, "uid-"), ".ring"), 10, 32)
		if err != nil {
			continue
		}
		if _, err := rv.ringFor(uint32(uid), false); err != nil {
			rv.cfg.Logf("%v", err)
		}
	}
	return nil
}

// Prepare makes uid's ring now, before any process of uid registers: the
// first registration then never waits for a ring's pages to be reserved
// (16 MiB by default), which a loaded host can stretch past the shim's
// 500 ms patience. restrack run prepares its own uid's.
func (rv *Rendezvous) Prepare(uid uint32) error {
	_, err := rv.ringFor(uid, true)
	return err
}

// ringFor returns uid's ring, open read-write, creating it when create is
// set and it does not exist.
func (rv *Rendezvous) ringFor(uid uint32, create bool) (*os.File, error) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if f := rv.rings[uid]; f != nil {
		return f, nil
	}
	path := filepath.Join(rv.cfg.RingDir, ringName(uid))
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) && create {
		if only, ok := rv.onlyUID(); ok && only != uid {
			return nil, fmt.Errorf("the collector serves uid %d only: run the collector as root to trace uid %d", only, uid)
		}
		if err := ring.Create(path, ring.Config{DataSize: rv.cfg.RingSize, OwnerUID: &uid}); err != nil {
			return nil, fmt.Errorf("cannot create the ring of uid %d: %w", uid, err)
		}
		if os.Geteuid() == 0 {
			// The ring is the uid's own: owned by it, 0600 (ring.Create).
			if err := os.Lchown(path, int(uid), -1); err != nil {
				os.Remove(path)
				return nil, fmt.Errorf("cannot give the ring of uid %d to its owner: %w", uid, err)
			}
		}
		f, err = os.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("the ring of uid %d: %w", uid, err)
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("the ring of uid %d (%s) is not a regular file: not using it", uid, path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 && st.Uid != uid {
		f.Close()
		return nil, fmt.Errorf("the ring of uid %d (%s) belongs to uid %d: not handing it out; remove it", uid, path, st.Uid)
	}
	if rv.cfg.NewRing != nil {
		if err := rv.cfg.NewRing(uid, path); err != nil {
			f.Close()
			return nil, fmt.Errorf("drain the ring of uid %d: %w", uid, err)
		}
	}
	rv.rings[uid] = f
	rv.statsFor(uid).Ring = path
	return f, nil
}

// onlyUID is the one uid this collector can serve, if it cannot serve all.
func (rv *Rendezvous) onlyUID() (uint32, bool) {
	if rv.cfg.OnlyUID != nil {
		return *rv.cfg.OnlyUID, true
	}
	if euid := os.Geteuid(); euid != 0 {
		return uint32(euid), true
	}
	return 0, false
}

// statsFor is uid's entry; rv.mu must be held.
func (rv *Rendezvous) statsFor(uid uint32) *UIDStats {
	s := rv.stats[uid]
	if s == nil {
		s = &UIDStats{UID: uid}
		rv.stats[uid] = s
	}
	return s
}

// Socket is the path the rendezvous listens on.
func (rv *Rendezvous) Socket() string { return rv.cfg.Socket }

// Serve answers registrations until ctx is done, then closes the socket
// and the rings' descriptors (the rings stay, for the next collector).
func (rv *Rendezvous) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		rv.ln.Close()
		// A registration in progress has a second at most; at shutdown
		// it has none: a client that never speaks must not hold us.
		rv.mu.Lock()
		rv.stopping = true
		for c := range rv.live {
			_ = c.SetDeadline(time.Now())
		}
		rv.mu.Unlock()
	})
	defer stop()
	for {
		conn, err := rv.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				rv.conns.Wait()
				rv.closeRings()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// EMFILE and the like: back off rather than spin.
			rv.cfg.Logf("rendezvous: accept: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		hello, n, err := helloSoon(conn)
		if n == rdvHelloSize || err != nil {
			if err != nil || rv.answer(conn, hello) != nil {
				rv.failed.Add(1)
			}
			conn.Close()
			continue
		}
		rv.mu.Lock()
		if rv.stopping {
			rv.mu.Unlock()
			conn.Close()
			continue
		}
		rv.live[conn] = struct{}{}
		rv.conns.Add(1)
		rv.mu.Unlock()
		go func() {
			defer rv.conns.Done()
			defer func() {
				rv.mu.Lock()
				delete(rv.live, conn)
				rv.mu.Unlock()
				conn.Close()
			}()
			if err := rv.register(conn, hello, n); err != nil {
				rv.failed.Add(1)
			}
		}()
	}
}

// Close stops listening (Serve returns).
func (rv *Rendezvous) Close() error { return rv.ln.Close() }

func (rv *Rendezvous) closeRings() {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if rv.closed {
		return
	}
	rv.closed = true
	for _, f := range rv.rings {
		f.Close()
	}
}

// register answers one connection whose hello's first n bytes are read.
func (rv *Rendezvous) register(conn *net.UnixConn, hello [rdvHelloSize]byte, n int) error {
	rv.mu.Lock()
	if !rv.stopping {
		_ = conn.SetDeadline(time.Now().Add(rdvDeadline))
	}
	rv.mu.Unlock()
	if _, err := io.ReadFull(conn, hello[n:]); err != nil {
		return err
	}
	return rv.answer(conn, hello)
}

// helloWait is how long the accepting goroutine itself waits for a hello
// not there at accept. The shim sends it right after connect, but connect
// is what wakes us, and on a loaded host the accept wins two times in
// three (1,000 registrations from a posix_spawn loop, 2 cores). Waiting
// here parks this goroutine until the hello arrives; a goroutine of its
// own would also wake another thread to run it, which cost the collector
// more CPU per registration than the answer itself. A client slower than
// this gets a goroutine as before, so a silent one holds up the others
// for helloWait at most.
const helloWait = time.Millisecond

// helloSoon reads the hello if it is there or arrives within helloWait:
// n is how much of it was read (rdvHelloSize: all of it), err set when the
// connection failed (the peer hung up before saying anything whole).
func helloSoon(conn *net.UnixConn) (hello [rdvHelloSize]byte, n int, err error) {
	if h, ok := helloReady(conn); ok {
		return h, rdvHelloSize, nil
	}
	_ = conn.SetReadDeadline(time.Now().Add(helloWait))
	n, err = io.ReadFull(conn, hello[:])
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		err = nil // not yet: the waiting path goes on from byte n
	}
	_ = conn.SetReadDeadline(time.Time{})
	return hello, n, err
}

// helloReady reads the hello if it is already there, without waiting:
// the shim sends it right after connect, so it almost always is, and the
// answer can go out from the accepting goroutine with no further hop
// through the scheduler — what a process start waits for.
func helloReady(conn *net.UnixConn) (hello [rdvHelloSize]byte, ok bool) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return hello, false
	}
	n := 0
	// Peek: a partial hello stays whole for the waiting path.
	_ = raw.Read(func(fd uintptr) bool {
		n, _, _ = unix.Recvfrom(int(fd), hello[:], unix.MSG_DONTWAIT|unix.MSG_PEEK)
		return true
	})
	if n != rdvHelloSize {
		return hello, false
	}
	_, err = io.ReadFull(conn, hello[:]) // there: no wait
	return hello, err == nil
}

// answer hands out the ring of the peer's uid, or refuses.
func (rv *Rendezvous) answer(conn *net.UnixConn, hello [rdvHelloSize]byte) error {
	_ = conn.SetWriteDeadline(time.Now().Add(rdvDeadline))
	if binary.LittleEndian.Uint32(hello[0:]) != rdvMagic {
		return errors.New("not a restrack hello")
	}
	cred, err := peerCred(conn)
	if err != nil {
		return rv.refuse(conn, ^uint32(0), syscall.EACCES, fmt.Sprintf("cannot check peer credentials: %v", err), false)
	}
	f, err := rv.ringFor(cred.uid, true)
	if err != nil {
		return rv.refuse(conn, cred.uid, syscall.EPERM, err.Error(), true)
	}
	start, exe := procIdentity(cred.pid)
	if len(exe) > rdvTextMax {
		exe = ""
	}
	reply := make([]byte, rdvReplySize+len(exe))
	binary.LittleEndian.PutUint32(reply[0:], rdvMagic)
	binary.LittleEndian.PutUint32(reply[8:], cred.uid)
	binary.LittleEndian.PutUint32(reply[12:], uint32(len(exe)))
	binary.LittleEndian.PutUint64(reply[16:], start)
	copy(reply[rdvReplySize:], exe)
	if _, _, err := conn.WriteMsgUnix(reply, unix.UnixRights(int(f.Fd())), nil); err != nil {
		// The shim waits 500 ms at most: a process that gave up before
		// the answer runs untraced, and must be counted as such.
		return rv.count(cred.uid, fmt.Sprintf("the process stopped waiting before the collector answered (%v): the collector is too slow (a loaded host?)", err))
	}
	rv.mu.Lock()
	rv.statsFor(cred.uid).Registered++
	rv.mu.Unlock()
	return nil
}

// count records one process of uid as not traced, saying why (once per
// uid and reason), and returns the reason as an error.
func (rv *Rendezvous) count(uid uint32, why string) error {
	rv.mu.Lock()
	s := rv.statsFor(uid)
	s.Untraced++
	first := s.Reason != why
	s.Reason = why
	rv.mu.Unlock()
	if first {
		rv.cfg.Logf("a process of uid %d is not traced: %s", uid, why)
	}
	return errors.New(why)
}

// refuse answers a registration with no ring and a reason; the process is
// counted as not traced when counted is set.
func (rv *Rendezvous) refuse(conn *net.UnixConn, uid uint32, code syscall.Errno, why string, counted bool) error {
	if counted {
		_ = rv.count(uid, why)
	}
	if len(why) > rdvTextMax {
		why = why[:rdvTextMax]
	}
	reply := make([]byte, rdvReplySize+len(why))
	binary.LittleEndian.PutUint32(reply[0:], rdvMagic)
	binary.LittleEndian.PutUint32(reply[4:], uint32(code))
	binary.LittleEndian.PutUint32(reply[8:], uid)
	binary.LittleEndian.PutUint32(reply[12:], uint32(len(why)))
	copy(reply[rdvReplySize:], why)
	_, err := conn.Write(reply)
	return errors.Join(errors.New(why), err)
}

// Stats is one entry per uid seen, by uid.
func (rv *Rendezvous) Stats() []UIDStats {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	out := make([]UIDStats, 0, len(rv.stats))
	for _, s := range rv.stats {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out
}

// UntracedWarnings says, per uid, how many processes were not traced and
// why: empty when every process that asked got its ring.
func (rv *Rendezvous) UntracedWarnings() []string {
	var w []string
	for _, s := range rv.Stats() {
		if s.Untraced > 0 {
			w = append(w, fmt.Sprintf("%d processes of uid %d were not traced: %s", s.Untraced, s.UID, s.Reason))
		}
	}
	return w
}
