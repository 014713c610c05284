//go:build linux

package ebpf

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/restrack/restrack/ring"
)

// syscalls are the traced system calls. Each has an enter program of its
// own (enter_NAME) and shares the sys_exit program. A syscall the
// architecture lacks (arm64 has no open, rename…) is skipped.
var syscalls = []string{
	"open", "openat", "openat2", "creat",
	"rename", "renameat", "renameat2",
	"link", "linkat", "unlink", "unlinkat", "rmdir",
	"mkdir", "mkdirat", "truncate",
	"execve", "execveat",
	"chdir", "fchdir",
	"bind", "connect", "listen", "accept", "accept4",
}

// Tracer traces one process tree. ReadBatch, Read and Wait are for one
// goroutine at a time; Stop, Counters, Pending and Close may be called from
// any goroutine.
type Tracer struct {
	opts    Options
	objs    restrackObjects
	links   []link.Link
	reader  *ringbuf.Reader
	stopped atomic.Bool

	mu      sync.Mutex   // serialises reading and Close
	closed  atomic.Bool  // set under mu and closeMu
	closeMu sync.RWMutex // Pending against Close, without waiting for a Wait
	conv    *converter
	sample  ringbuf.Record
	held    bool // sample holds a record Wait read and Read has not taken
	ev      rawEvent
	out     [2]ring.Record
	pending []ring.Record // synthetic records returned before the ring's
	records atomic.Uint64
	corrupt atomic.Uint64
	unres   atomic.Uint64

	// Syscalls is the list of syscalls actually traced on this kernel.
	Syscalls []string
}

// Start loads the BPF programs, seeds the traced tree with opts.PID and
// attaches the programs. Records are then read with ReadBatch. A machine
// or user that cannot run BPF gets an error wrapping ErrUnavailable that
// names what is missing.
func Start(opts Options) (_ *Tracer, err error) {
	if err := opts.setDefaults(os.Getpagesize()); err != nil {
		return nil, err
	}
	if err := checkHost(); err != nil {
		return nil, err
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; newer ones
	// use the memory cgroup and this is a no-op.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, unavailable("permission to raise RLIMIT_MEMLOCK", "run as root", err)
	}

	spec, err := loadRestrack()
	if err != nil {
		return nil, fmt.Errorf("load embedded bpf object: %w", err)
	}
	spec.Maps["events"].MaxEntries = uint32(opts.RingSize)
	if err := spec.Variables["wake_bytes"].Set(uint64(opts.WakeBytes)); err != nil {
		return nil, fmt.Errorf("set wake_bytes: %w", err)
	}

	t := &Tracer{opts: opts, conv: newConverter(liveProc{})}
	if opts.ChildrenOnly {
		t.conv.followRoot = int32(opts.PID)
	}
	if err := spec.LoadAndAssign(&t.objs, nil); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, unavailable("privileges to load BPF programs (CAP_BPF and CAP_PERFMON)", "run as root", err)
		}
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			// %v: the log's last lines, which name the failing
			// instruction; %+v would print thousands.
			return nil, fmt.Errorf("load bpf programs: kernel verifier rejected them (kernel too old?): %v", verr)
		}
		return nil, fmt.Errorf("load bpf programs: %w", err)
	}
	defer func() {
		if err != nil {
			_ = t.closeAll() // the setup error is the one worth reporting
		}
	}()

	// The tree first: fork, exec and exit, so no child born after seeding
	// can be missed. Then the root, then the syscalls.
	for _, p := range []*ebpf.Program{t.objs.SchedFork, t.objs.SchedExec, t.objs.SchedExit} {
		l, err := link.AttachTracing(link.TracingOptions{Program: p, AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			return nil, fmt.Errorf("attach %s: %w", p, err)
		}
		t.links = append(t.links, l)
	}
	if err := t.seed(); err != nil {
		return nil, err
	}
	progs := t.enterPrograms()
	for _, sc := range syscalls {
		enter, err := link.Tracepoint("syscalls", "sys_enter_"+sc, progs[sc], nil)
		if errors.Is(err, os.ErrNotExist) {
			continue // not a syscall on this architecture
		}
		if err != nil {
			return nil, attachError(sc, err)
		}
		t.links = append(t.links, enter)
		exit, err := link.Tracepoint("syscalls", "sys_exit_"+sc, t.objs.SysExit, nil)
		if err != nil {
			return nil, attachError(sc, err)
		}
		t.links = append(t.links, exit)
		t.Syscalls = append(t.Syscalls, sc)
	}

	if t.reader, err = ringbuf.NewReader(t.objs.Events); err != nil {
		return nil, fmt.Errorf("open ring buffer reader: %w", err)
	}
	return t, nil
}

func (t *Tracer) enterPrograms() map[string]*ebpf.Program {
	o := &t.objs
	return map[string]*ebpf.Program{
		"open": o.EnterOpen, "openat": o.EnterOpenat, "openat2": o.EnterOpenat2, "creat": o.EnterCreat,
		"rename": o.EnterRename, "renameat": o.EnterRenameat, "renameat2": o.EnterRenameat2,
		"link": o.EnterLink, "linkat": o.EnterLinkat, "unlink": o.EnterUnlink, "unlinkat": o.EnterUnlinkat,
		"rmdir": o.EnterRmdir, "mkdir": o.EnterMkdir, "mkdirat": o.EnterMkdirat, "truncate": o.EnterTruncate,
		"execve": o.EnterExecve, "execveat": o.EnterExecveat, "chdir": o.EnterChdir, "fchdir": o.EnterFchdir,
		"bind": o.EnterBind, "connect": o.EnterConnect, "listen": o.EnterListen, "accept": o.EnterAccept,
		"accept4": o.EnterAccept4,
	}
}

// seed puts the root into the traced map with the identity the kernel side
// would have given it, and, unless only its children are traced, queues a
// proc_start record describing it.
func (t *Tracer) seed() error {
	pid := t.opts.PID
	ppid, start, err := procStat(pid)
	if err != nil {
		return fmt.Errorf("seed root process %d: %w", pid, err)
	}
	var flags uint32
	if t.opts.ChildrenOnly {
		flags = procFollowOnly
	}
	v := restrackRtProc{StartNs: start, Ppid: uint32(ppid), Flags: flags}
	if err := t.objs.Traced.Put(uint32(pid), &v); err != nil {
		return fmt.Errorf("seed root process %d: %w", pid, err)
	}
	if t.opts.ChildrenOnly {
		return nil
	}
	p := t.conv.proc(int32(pid))
	rec := ring.Record{
		Type: ring.TypeProc, Op: ring.OpProcStart,
		TimeNs: monotonicNs(), StartNs: start,
		PID: int32(pid), TID: int32(pid), PPID: int32(ppid),
		Str1: []byte(p.exe), Str2: []byte(p.cwd),
	}
	if argv, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil {
		rec.Str3 = []byte(strings.TrimSuffix(string(argv), "\x00"))
	}
	t.pending = append(t.pending, rec)
	return nil
}

// ReadBatch waits up to the poll interval for records (less when the
// kernel wakes it at the high-water mark), then reads like Read.
func (t *Tracer) ReadBatch(dst []ring.Record) (int, error) {
	t.Wait(t.opts.PollInterval)
	return t.Read(dst)
}

// Wait returns once records are ready to read, the tracer is stopped, or d
// has passed. Records are published without waking the reader, so an idle
// Wait normally lasts d: the kernel wakes it early only past WakeBytes.
func (t *Tracer) Wait(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() || t.held || len(t.pending) > 0 || t.stopped.Load() || t.reader.AvailableBytes() > 0 {
		return
	}
	t.reader.SetDeadline(time.Now().Add(d))
	// ReadInto is the reader's only way to sleep on the ring; the record it
	// returns is held for the next Read.
	if err := t.reader.ReadInto(&t.sample); err == nil {
		t.held = true
	}
}

// Read fills dst with the records that are ready and returns how many,
// without blocking; 0 records and a nil error mean none were ready. The
// records' byte slices are valid until the next Read. After Stop, it
// returns what is left, then 0 and ErrStopped.
func (t *Tracer) Read(dst []ring.Record) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return 0, fmt.Errorf("read tracer: %w", os.ErrClosed)
	}
	t.conv.arena = t.conv.arena[:0]
	n := copy(dst, t.pending)
	t.pending = t.pending[n:]
	// Load stopped before reading: records published before Stop are all
	// in the ring by then, so an empty read after it means the end.
	stopped := t.stopped.Load()
	t.reader.SetDeadline(time.Unix(1, 0)) // take what is there, never sleep
	for n < len(dst) {
		if !t.held {
			err := t.reader.ReadInto(&t.sample)
			if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, ringbuf.ErrFlushed) {
				break
			}
			if err != nil {
				return n, fmt.Errorf("read ring buffer: %w", err)
			}
		}
		if err := decodeEvent(t.sample.RawSample, &t.ev); err != nil {
			t.held = false
			t.corrupt.Add(1)
			continue
		}
		// A held-back fork record may come out with this sample's: keep
		// the sample for the next Read unless both fit.
		if len(dst)-n < 2 && t.conv.forkHeld(t.ev.PID) {
			t.held = true
			break
		}
		t.held = false
		k := t.conv.convert(&t.ev, &t.out)
		n += copy(dst[n:], t.out[:k])
	}
	t.records.Add(uint64(n))
	t.unres.Store(t.conv.unresolved)
	if n == 0 && stopped && !t.held {
		return 0, ErrStopped
	}
	return n, nil
}

// Pending is how many bytes of records the ring holds unread (0 once
// closed).
func (t *Tracer) Pending() int {
	t.closeMu.RLock()
	defer t.closeMu.RUnlock()
	if t.closed.Load() {
		return 0
	}
	return t.reader.AvailableBytes()
}

// RingSize is the ring buffer's size in bytes.
func (t *Tracer) RingSize() int { return t.opts.RingSize }

// Stop ends tracing: from now on nothing new is recorded, and Read returns
// what is left, then ErrStopped. Call it once the workload has exited,
// then drain, then Close. It empties the traced tree instead of detaching
// the programs, because detaching takes the kernel ~60 ms per tracepoint
// (an RCU grace period each); Close does that.
func (t *Tracer) Stop() error {
	if t.stopped.Swap(true) {
		return nil
	}
	var errs []error
	var key uint32
	var keys []uint32
	var v restrackRtProc
	it := t.objs.Traced.Iterate()
	for it.Next(&key, &v) {
		keys = append(keys, key)
	}
	if err := it.Err(); err != nil {
		errs = append(errs, fmt.Errorf("list traced processes: %w", err))
	}
	for _, k := range keys {
		if err := t.objs.Traced.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("untrace process %d: %w", k, err))
		}
	}
	// Wake a Wait that is sleeping for its poll interval.
	if err := t.reader.Flush(); err != nil && !errors.Is(err, os.ErrClosed) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop tracer: %w", err)
	}
	return nil
}

// Counters reads the kernel side's counters and adds the reader's own.
func (t *Tracer) Counters() (Counters, error) {
	c := Counters{Records: t.records.Load(), Corrupt: t.corrupt.Load(), Unresolved: t.unres.Load()}
	var per []uint64
	dst := []*uint64{
		counterEmitted: &c.Emitted, counterLostRing: &c.LostRing, counterLostArgs: &c.LostInflight,
		counterLostProc: &c.LostProcs, counterFaults: &c.Faults,
	}
	for i, p := range dst {
		if err := t.objs.Counters.Lookup(uint32(i), &per); err != nil {
			return c, fmt.Errorf("read counter %d: %w", i, err)
		}
		for _, v := range per {
			*p += v
		}
	}
	return c, nil
}

// Close stops the tracer if needed and frees everything it holds.
func (t *Tracer) Close() error {
	err := t.Stop()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return nil
	}
	t.closeMu.Lock()
	t.closed.Store(true)
	t.closeMu.Unlock()
	return errors.Join(err, t.closeAll())
}

func (t *Tracer) closeAll() error {
	// Detach in parallel: each detach waits for RCU grace periods, which
	// overlap when several are pending.
	errs := make([]error, len(t.links))
	var wg sync.WaitGroup
	for i, l := range t.links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.Close()
		}()
	}
	wg.Wait()
	t.links = nil
	if t.reader != nil {
		errs = append(errs, t.reader.Close())
	}
	errs = append(errs, t.objs.Close())
	return errors.Join(errs...)
}

// checkHost tells apart the usual reasons the eBPF mode cannot run, so the
// error names the missing piece instead of a raw errno from deep inside.
func checkHost() error {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return unavailable("kernel BTF (/sys/kernel/btf/vmlinux)", "a kernel built with CONFIG_DEBUG_INFO_BTF=y", err)
	}
	if os.Geteuid() != 0 && !hasCaps() {
		return unavailable("privileges to load BPF programs (CAP_BPF and CAP_PERFMON)", "run as root", nil)
	}
	if !hasSyscallTracepoints() {
		if _, err := os.Stat("/sys/kernel/tracing/events"); err == nil {
			return unavailable("syscall tracepoints", "a kernel built with CONFIG_FTRACE_SYSCALLS=y", nil)
		}
		return unavailable("tracefs, which syscall tracepoints need", "mount -t tracefs nodev /sys/kernel/tracing", nil)
	}
	return nil
}

func hasSyscallTracepoints() bool {
	for _, dir := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(dir + "/events/syscalls/sys_enter_openat"); err == nil {
			return true
		}
	}
	return false
}

// hasCaps reports whether the effective set holds CAP_BPF and CAP_PERFMON
// (or CAP_SYS_ADMIN, which implies both).
func hasCaps() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	return has(unix.CAP_SYS_ADMIN) || (has(unix.CAP_BPF) && has(unix.CAP_PERFMON))
}

func attachError(sc string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return unavailable("permission to attach tracepoints (CAP_PERFMON)", "run as root", err)
	}
	return fmt.Errorf("attach syscall tracepoint %s: %w", sc, err)
}

func unavailable(missing, fix string, err error) error {
	return &UnavailableError{Missing: missing, Fix: fix, Err: err}
}

// procStat reads a process's parent and start time, the latter in the
// shim's unit: starttime (clock ticks since boot) in nanoseconds.
func procStat(pid int) (ppid int, startNs uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); ppid is field 4, starttime field 22.
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat ppid: %w", pid, err)
	}
	ticks, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat starttime: %w", pid, err)
	}
	return ppid, ticks * (1_000_000_000 / clockTicksPerSec), nil
}

func monotonicNs() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// liveProc answers procFS questions from /proc.
type liveProc struct{}

func (liveProc) fdPath(pid, fd int32) (string, bool) { return readlink(fdLink(pid, fd)) }
func (liveProc) cwd(pid int32) (string, bool) {
	return readlink("/proc/" + strconv.Itoa(int(pid)) + "/cwd")
}
func (liveProc) exe(pid int32) (string, bool) {
	return readlink("/proc/" + strconv.Itoa(int(pid)) + "/exe")
}

func readlink(p string) (string, bool) {
	s, err := os.Readlink(p)
	if err != nil || !strings.HasPrefix(s, "/") {
		return "", false // gone, or not a path ("pipe:[…]", "anon_inode:…")
	}
	return strings.TrimSuffix(s, " (deleted)"), true
}
