package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/restrack/restrack/collector"
	"github.com/restrack/restrack/collector/ebpf"
	"github.com/restrack/restrack/internal/usock"
	"github.com/restrack/restrack/ring"
	"github.com/restrack/restrack/ring/fifo"
)

// Env is what the modes need to run the workload: its binaries and a
// scratch directory for rings, pipes, sessions and samples.
type Env struct {
	Dir           string // scratch directory (the caller removes it)
	Workload      string // openloop
	WorkloadLTTng string // openloop with the LTTng tracepoint; "" = not built
	FIFOReader    string // fiforeader, the paper's tracker as a process
	Shim          string // absolute path of librestrack.so
	Collector     string // the collector binary
	DrainInterval time.Duration
	Logf          func(format string, args ...any)
}

// SkipError says a mode cannot run on this machine and why; the suite
// prints the reason instead of the mode's figures.
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return "skipped: " + e.Reason }

func skipf(format string, args ...any) error { return &SkipError{Reason: fmt.Sprintf(format, args...)} }

// Counts is what a tracer says it saw, to check that a mode really traced
// (a shim that silently turned itself off would look like a free tracer).
// Negative means the tracer offers no count.
type Counts struct {
	Recorded int64 `json:"recorded"`
	Lost     int64 `json:"lost"`
}

// Mode is one way of running the workload: untraced or under one tracer.
// The harness calls Setup once, then for each round Begin, Command per
// repetition of every table, End; then Close.
type Mode interface {
	Name() string
	// Setup starts what lasts the whole run and returns a one-line
	// description of how the mode runs; a *SkipError if it cannot.
	Setup(ctx context.Context, env *Env) (string, error)
	Begin() error
	// Command is the argv and extra environment running the workload with
	// args; seq numbers the repetition within the run.
	Command(args []string, seq int) (argv, env []string)
	End() error
	Counts() Counts
	Close() error
}

// AllModes lists the modes in the order tables print them.
func AllModes() []Mode {
	return []Mode{
		&noneMode{}, &fifoMode{}, &fifoCPUMode{}, &ringMode{}, &ebpfMode{}, &lttngMode{},
		&straceMode{name: "strace"}, &straceMode{name: "strace-seccomp", seccomp: true},
	}
}

// ModeNames lists the names of AllModes.
func ModeNames() []string {
	var out []string
	for _, m := range AllModes() {
		out = append(out, m.Name())
	}
	return out
}

// ---------------------------------------------------------------- none

type noneMode struct{ env *Env }

func (m *noneMode) Name() string { return "none" }
func (m *noneMode) Setup(_ context.Context, env *Env) (string, error) {
	m.env = env
	return "the workload alone", nil
}
func (m *noneMode) Begin() error { return nil }
func (m *noneMode) End() error   { return nil }
func (m *noneMode) Command(args []string, _ int) ([]string, []string) {
	return append([]string{m.env.Workload}, args...), nil
}
func (m *noneMode) Counts() Counts { return Counts{Recorded: -1, Lost: -1} }
func (m *noneMode) Close() error   { return nil }

// ---------------------------------------------------------------- ring

// ringMode is restrack itself: the shim appending to the shared-memory ring,
// and the real collector daemon draining it in bulk into its store, with
// the product's default settings except the scratch paths.
type ringMode struct {
	env    *Env
	ring   string
	sock   string
	cmd    *exec.Cmd
	stderr bytes.Buffer
	last   collector.Status
	RSSKiB int64 // the collector's peak RSS, known after Close
}

func (m *ringMode) Name() string { return "ring" }

func (m *ringMode) Setup(ctx context.Context, env *Env) (string, error) {
	m.env = env
	if _, err := os.Stat(env.Shim); err != nil {
		return "", skipf("shim %s not built (make shim): %v", env.Shim, err)
	}
	if _, err := os.Stat(env.Collector); err != nil {
		return "", skipf("collector %s not built (make cmds): %v", env.Collector, err)
	}
	m.ring = shmPath("ring")
	m.sock = filepath.Join(env.Dir, "collector.sock")
	cmd, err := startCollector(ctx, env.Collector, m.ring, ring.DefaultDataSize, env.DrainInterval,
		filepath.Join(env.Dir, "store"), m.sock, &m.stderr)
	if err != nil {
		return "", err
	}
	m.cmd = cmd
	return fmt.Sprintf("LD_PRELOAD=librestrack.so RESTRACK_RING=/dev/shm/restrack-bench-…; the collector daemon (%s -ring-size %d -drain-interval %v, default store settings) drains it into its SQLite store",
		filepath.Base(env.Collector), ring.DefaultDataSize, env.DrainInterval), nil
}

func (m *ringMode) Begin() error { return nil }
func (m *ringMode) End() error   { return nil }

func (m *ringMode) Command(args []string, _ int) ([]string, []string) {
	return append([]string{m.env.Workload}, args...),
		[]string{"LD_PRELOAD=" + m.env.Shim, "RESTRACK_MODE=ring", "RESTRACK_RING=" + m.ring}
}

func (m *ringMode) Counts() Counts {
	if m.cmd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var st collector.Status
		if err := usock.Query(ctx, m.sock, "status", nil, &st); err == nil {
			m.last = st
		}
	}
	return Counts{Recorded: int64(m.last.Records), Lost: int64(m.last.DroppedFull + m.last.DroppedTooBig + m.last.Abandoned)}
}

func (m *ringMode) Close() error {
	if m.cmd == nil {
		return nil
	}
	m.Counts() // the last status, before the collector goes
	rss, err := stopCollector(m.cmd)
	m.RSSKiB = rss
	m.cmd = nil
	os.Remove(m.ring)
	if err != nil {
		return fmt.Errorf("collector: %w (stderr: %s)", err, strings.TrimSpace(m.stderr.String()))
	}
	return nil
}

// shmPath names a scratch ring in /dev/shm, where restrack's rings live.
func shmPath(what string) string {
	return fmt.Sprintf("/dev/shm/restrack-bench-%d-%s-%d", os.Getpid(), what, time.Now().UnixNano())
}

// startCollector runs the collector daemon on a new ring and returns once
// it answers on its socket, that is once the ring exists and is drained.
func startCollector(ctx context.Context, bin, ringPath string, size uint64, interval time.Duration, storeDir, sock string, stderr *bytes.Buffer, extra ...string) (*exec.Cmd, error) {
	cmd := exec.Command(bin, append([]string{"-ring", ringPath, "-ring-size", fmt.Sprint(size),
		"-drain-interval", interval.String(), "-store", storeDir, "-socket", sock}, extra...)...)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start collector: %w", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		err := usock.Query(qctx, sock, "status", nil, nil)
		cancel()
		if err == nil {
			hwmWatches.Store(cmd, watchHWM(cmd.Process.Pid))
			return cmd, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("collector did not come up on %s: %w (stderr: %s)", sock, err, strings.TrimSpace(stderr.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopCollector sends SIGTERM (final drain, flush, exit 0) and returns the
// daemon's peak resident set size in KiB (VmHWM, sampled; -1 if unknown).
func stopCollector(cmd *exec.Cmd) (int64, error) {
	rss := int64(-1)
	if w, ok := hwmWatches.LoadAndDelete(cmd); ok {
		w := w.(*hwmWatch)
		w.Sample(cmd.Process.Pid)
		rss = w.Stop()
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		err = fmt.Errorf("did not exit within 30 s of SIGTERM: %w", <-done)
	}
	return rss, err
}

// hwmWatches maps a running collector's *exec.Cmd to its VmHWM sampler.
var hwmWatches sync.Map

// ---------------------------------------------------------------- fifo

// fifoMode is the paper's design: the shim writes every record to a named
// pipe with one synchronous write(2); a reader (ring/fifo) takes them out
// one record at a time.
type fifoMode struct {
	env  *Env
	path string
	r    *fifo.Reader
	done chan struct{}
	n    int64
}

func (m *fifoMode) Name() string { return "fifo" }

func (m *fifoMode) Setup(_ context.Context, env *Env) (string, error) {
	m.env = env
	if _, err := os.Stat(env.Shim); err != nil {
		return "", skipf("shim %s not built (make shim): %v", env.Shim, err)
	}
	m.path = filepath.Join(env.Dir, "events.fifo")
	if err := fifo.Create(m.path); err != nil {
		return "", err
	}
	r, err := fifo.Open(m.path)
	if err != nil {
		return "", err
	}
	m.r, m.done = r, make(chan struct{})
	go func() {
		defer close(m.done)
		var rec ring.Record
		for m.r.Next(&rec) == nil {
		}
	}()
	return "LD_PRELOAD=librestrack.so RESTRACK_MODE=fifo: one write(2) per event into a named pipe; a ring/fifo.Reader goroutine in the harness reads one record per Next", nil
}

func (m *fifoMode) Begin() error { return nil }
func (m *fifoMode) End() error   { return nil }
func (m *fifoMode) Command(args []string, _ int) ([]string, []string) {
	return append([]string{m.env.Workload}, args...),
		[]string{"LD_PRELOAD=" + m.env.Shim, "RESTRACK_MODE=fifo", "RESTRACK_FIFO=" + m.path}
}

// Counts is known once the reader goroutine has stopped (Close): reading
// the count while it runs would race with it.
func (m *fifoMode) Counts() Counts {
	if m.r != nil {
		return Counts{Recorded: -1, Lost: -1}
	}
	return Counts{Recorded: m.n, Lost: -1}
}

func (m *fifoMode) Close() error {
	if m.r == nil {
		return nil
	}
	// Let the reader empty the pipe, then stop it.
	time.Sleep(100 * time.Millisecond)
	_ = m.r.SetDeadline(time.Now())
	<-m.done
	m.n = int64(m.r.Records())
	err := m.r.Close()
	m.r = nil
	return err
}

// ---------------------------------------------------------------- fifo-1cpu

// fifoCPUMode is the paper's setting: the FIFO transport with its tracker a
// process blocked in read(2), one record per read (fiforeader), and the
// workload and the tracker on one CPU, as on the paper's single-CPU
// machine, where every write wakes the tracker and it preempts the writer.
// Two CPUs hide that cost (the fifo mode): the reader runs on the other.
type fifoCPUMode struct {
	env    *Env
	path   string
	cmd    *exec.Cmd
	out    bytes.Buffer
	ready  chan struct{}
	counts Counts
}

// fifoCPU is the CPU the mode pins both processes to.
const fifoCPU = 0

func (m *fifoCPUMode) Name() string { return "fifo-1cpu" }

// RunsTable: pinning two workers to one CPU would measure their queueing,
// not the transport.
func (m *fifoCPUMode) RunsTable(t Table) bool { return t.Workers == 1 }

func (m *fifoCPUMode) Setup(ctx context.Context, env *Env) (string, error) {
	m.env = env
	if _, err := os.Stat(env.Shim); err != nil {
		return "", skipf("shim %s not built (make shim): %v", env.Shim, err)
	}
	if env.FIFOReader == "" {
		return "", skipf("fiforeader not built (make bench builds bench/workload/fiforeader.c)")
	}
	m.path = filepath.Join(env.Dir, "events-1cpu.fifo")
	if err := fifo.Create(m.path); err != nil {
		return "", err
	}
	m.cmd = exec.Command(env.FIFOReader, "-a", fmt.Sprint(fifoCPU), m.path)
	pr, pw, err := os.Pipe()
	if err != nil {
		return "", err
	}
	m.cmd.Stdout = pw
	m.cmd.Stderr = &m.out
	if err := m.cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return "", fmt.Errorf("start fiforeader: %w", err)
	}
	pw.Close()
	// The reader prints "ready" once it holds the pipe open, then its
	// record count when it exits.
	m.ready = make(chan struct{})
	lines := make(chan string, 2)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		pr.Close()
	}()
	select {
	case l := <-lines:
		if l != "ready" {
			return "", fmt.Errorf("fiforeader: %q (stderr: %s)", l, m.out.String())
		}
	case <-time.After(5 * time.Second):
		return "", fmt.Errorf("fiforeader did not open %s within 5 s (stderr: %s)", m.path, m.out.String())
	case <-ctx.Done():
		return "", ctx.Err()
	}
	go func() {
		for l := range lines {
			var n int64
			if _, err := fmt.Sscan(l, &n); err == nil {
				m.counts = Counts{Recorded: n, Lost: -1}
			}
		}
		close(m.ready)
	}()
	return fmt.Sprintf("as fifo, but the reader is a process blocked in read(2), one record per read (fiforeader), and it and the workload run on CPU %d only (sched_setaffinity): the paper's single-CPU machine; single-worker tables only", fifoCPU), nil
}

func (m *fifoCPUMode) Begin() error { return nil }
func (m *fifoCPUMode) End() error   { return nil }
func (m *fifoCPUMode) Command(args []string, _ int) ([]string, []string) {
	return append(append([]string{m.env.Workload}, args...), "-a", fmt.Sprint(fifoCPU)),
		[]string{"LD_PRELOAD=" + m.env.Shim, "RESTRACK_MODE=fifo", "RESTRACK_FIFO=" + m.path}
}

// Counts is known once the reader has exited (Close).
func (m *fifoCPUMode) Counts() Counts {
	if m.cmd != nil {
		return Counts{Recorded: -1, Lost: -1}
	}
	return m.counts
}

func (m *fifoCPUMode) Close() error {
	if m.cmd == nil {
		return nil
	}
	time.Sleep(100 * time.Millisecond) // let it empty the pipe
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	err := m.cmd.Wait()
	<-m.ready
	m.cmd = nil
	if err != nil {
		return fmt.Errorf("fiforeader: %w (stderr: %s)", err, m.out.String())
	}
	return nil
}

// ---------------------------------------------------------------- ebpf

// ebpfMode traces the workload from the kernel (collector/ebpf): attached
// for one round at a time, because attached syscall tracepoints slow every
// system call on the machine, and so every other mode, by tens of ns.
type ebpfMode struct {
	env  *Env
	t    *ebpf.Tracer
	done chan error
	c    Counts
}

func (m *ebpfMode) Name() string { return "ebpf" }

func (m *ebpfMode) Setup(_ context.Context, env *Env) (string, error) {
	m.env = env
	if err := m.Begin(); err != nil {
		// CI sets this where BPF must work: there a skip would hide a
		// regression, as in the eBPF package's own tests.
		if os.Getenv("RESTRACK_REQUIRE_BPF") == "1" {
			return "", fmt.Errorf("RESTRACK_REQUIRE_BPF=1 but the eBPF tracer cannot start: %w", err)
		}
		var ue *ebpf.UnavailableError
		if errors.As(err, &ue) || errors.Is(err, errors.ErrUnsupported) {
			return "", skipf("%v", err)
		}
		// Not a missing feature but a failure: say so, keep the suite going.
		msg, _, _ := strings.Cut(err.Error(), "\n")
		return "", skipf("the eBPF tracer failed to start on a machine that has BPF (a bug to fix in collector/ebpf): %s", strings.TrimSuffix(msg, ":"))
	}
	if err := m.End(); err != nil {
		return "", err
	}
	m.c = Counts{}
	return "collector/ebpf tracer on the harness's children (syscall tracepoints into a BPF ring buffer, drained every 10 ms), attached for each round and detached after it", nil
}

func (m *ebpfMode) Begin() error {
	t, err := ebpf.Start(ebpf.Options{PID: os.Getpid(), ChildrenOnly: true})
	if err != nil {
		return err
	}
	m.t, m.done = t, make(chan error, 1)
	go func() {
		batch := make([]ring.Record, 4096)
		for {
			if _, err := t.ReadBatch(batch); err != nil {
				if errors.Is(err, ebpf.ErrStopped) {
					err = nil
				}
				m.done <- err
				return
			}
		}
	}()
	return nil
}

func (m *ebpfMode) End() error {
	if m.t == nil {
		return nil
	}
	err := m.t.Stop()
	if derr := <-m.done; err == nil {
		err = derr
	}
	if c, cerr := m.t.Counters(); cerr == nil {
		m.c.Recorded += int64(c.Records)
		m.c.Lost += int64(c.Lost())
	}
	if cerr := m.t.Close(); err == nil {
		err = cerr
	}
	m.t = nil
	return err
}

func (m *ebpfMode) Command(args []string, _ int) ([]string, []string) {
	return append([]string{m.env.Workload}, args...), nil
}
func (m *ebpfMode) Counts() Counts { return m.c }
func (m *ebpfMode) Close() error   { return m.End() }

// ---------------------------------------------------------------- lttng

// lttngMode runs the workload built with an LTTng-UST tracepoint after each
// open, recorded by a session for the whole run.
type lttngMode struct {
	env     *Env
	session string
}

func (m *lttngMode) Name() string { return "lttng" }

func (m *lttngMode) Setup(_ context.Context, env *Env) (string, error) {
	m.env = env
	if env.WorkloadLTTng == "" {
		return "", skipf("openloop-lttng not built (needs liblttng-ust-dev: apt-get install liblttng-ust-dev lttng-tools)")
	}
	if _, err := exec.LookPath("lttng"); err != nil {
		return "", skipf("lttng not installed (apt-get install lttng-tools)")
	}
	m.session = fmt.Sprintf("restrack-bench-%d", os.Getpid())
	steps := [][]string{
		{"create", m.session, "--output=" + filepath.Join(env.Dir, "lttng-trace")},
		{"enable-event", "--userspace", "--session=" + m.session, "restrack_bench:open"},
		{"start", m.session},
	}
	for i, s := range steps {
		if out, err := exec.Command("lttng", s...).CombinedOutput(); err != nil {
			if i > 0 {
				_ = exec.Command("lttng", "destroy", m.session).Run()
			}
			m.session = ""
			return "", skipf("lttng %s failed: %v: %s", s[0], err, strings.TrimSpace(string(out)))
		}
	}
	return fmt.Sprintf("openloop-lttng: lttng_ust_tracepoint(restrack_bench, open, path, fd) after each open; session %s (lttng create; enable-event -u restrack_bench:open; start), default per-UID buffers", m.session), nil
}

func (m *lttngMode) Begin() error { return nil }
func (m *lttngMode) End() error   { return nil }
func (m *lttngMode) Command(args []string, _ int) ([]string, []string) {
	return append([]string{m.env.WorkloadLTTng}, args...), nil
}
func (m *lttngMode) Counts() Counts { return Counts{Recorded: -1, Lost: -1} }
func (m *lttngMode) Close() error {
	if m.session == "" {
		return nil
	}
	_ = exec.Command("lttng", "stop", m.session).Run()
	out, err := exec.Command("lttng", "destroy", m.session).CombinedOutput()
	m.session = ""
	if err != nil {
		return fmt.Errorf("lttng destroy: %v: %s", err, out)
	}
	return nil
}

// ---------------------------------------------------------------- strace

// straceMode runs the workload under strace, what users reach for first.
// Its output goes to a file (as a user would keep it), counted and removed
// after each repetition.
type straceMode struct {
	name    string
	seccomp bool
	env     *Env
	mu      sync.Mutex
	pending []string
	lines   int64
}

func (m *straceMode) Name() string { return m.name }

func (m *straceMode) Setup(_ context.Context, env *Env) (string, error) {
	m.env = env
	if _, err := exec.LookPath("strace"); err != nil {
		return "", skipf("strace not installed (apt-get install strace)")
	}
	if m.seccomp {
		if out, err := exec.Command("strace", "--seccomp-bpf", "-f", "-e", "trace=%file", "-o", "/dev/null", "true").CombinedOutput(); err != nil {
			return "", skipf("strace --seccomp-bpf does not work here: %v: %s", err, strings.TrimSpace(string(out)))
		}
	}
	return strings.Join(m.flags("FILE"), " "), nil
}

func (m *straceMode) flags(out string) []string {
	f := []string{"strace"}
	if m.seccomp {
		f = append(f, "--seccomp-bpf")
	}
	return append(f, "-f", "-e", "trace=%file", "-o", out)
}

func (m *straceMode) Begin() error { return nil }

func (m *straceMode) Command(args []string, seq int) ([]string, []string) {
	out := filepath.Join(m.env.Dir, fmt.Sprintf("%s-%d.out", m.name, seq))
	m.mu.Lock()
	m.pending = append(m.pending, out)
	m.mu.Unlock()
	return append(append(m.flags(out), m.env.Workload), args...), nil
}

// End counts the lines strace wrote (one per traced call) and removes its
// output files.
func (m *straceMode) End() error {
	m.mu.Lock()
	files := m.pending
	m.pending = nil
	m.mu.Unlock()
	for _, f := range files {
		m.lines += countLines(f)
		os.Remove(f)
	}
	return nil
}

func countLines(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var n int64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		n++
	}
	return n
}

func (m *straceMode) Counts() Counts { return Counts{Recorded: m.lines, Lost: -1} }
func (m *straceMode) Close() error   { return m.End() }
