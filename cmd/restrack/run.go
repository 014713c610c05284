package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"

	"github.com/restrack/restrack/collector"
	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/ring"
	"github.com/restrack/restrack/ring/fifo"
)

func init() {
	register("run", "trace a command and all its descendants into a store", func(args []string) int {
		oneProc()
		return runRun(args, os.Stdin, os.Stdout, os.Stderr)
	})
}

// Exit statuses of restrack run's own failures, as env(1) and docker use
// them, so that they rarely collide with CMD's.
const (
	exitRunFailed   = 125 // restrack itself failed (store, ring, shim)
	exitCannotExec  = 126 // CMD exists but cannot be executed
	exitCmdNotFound = 127 // CMD not found
)

// runEnv is what a transport mode gets to set itself up.
type runEnv struct {
	ringSize uint64
	tmpDir   string // where private transport files go
	stderr   io.Writer
	// resume says where the store's data of a source ends (store.Resume).
	resume func(id uint64) (uint64, bool, error)
	// untraced, set by a mode that can refuse processes, says which were
	// not traced and why, at the end of the run.
	untraced func() []string
}

// runMode is one way records travel from CMD to the embedded collector.
// Each mode registers itself (runModes) so that transports added later (the
// FIFO of the paper's design, eBPF) plug into the same ingest path.
type runMode struct {
	// open prepares the transport before CMD starts: the source the
	// collector drains, the environment CMD needs, and a cleanup that runs
	// after the final drain.
	open func(e *runEnv) (src collector.Source, env []string, cleanup func(), err error)
	// started, when set, learns CMD's pid once it runs.
	started func(src collector.Source, pid int) error
	// preload: CMD runs with the shim in LD_PRELOAD.
	preload bool
}

var runModes = map[string]runMode{
	"ring": {open: openRingMode, preload: true},
	"fifo": {open: openFifoMode, preload: true},
}

// openFifoMode is the paper's transport (a named pipe, one write per
// record), kept to compare against the ring.
func openFifoMode(e *runEnv) (collector.Source, []string, func(), error) {
	path := filepath.Join(e.tmpDir, "restrack-run-"+fmt.Sprint(os.Getpid())+"-"+randomHex(4)+".fifo")
	if err := fifo.Create(path); err != nil {
		return nil, nil, nil, err
	}
	src, err := collector.OpenFifo(path)
	if err != nil {
		os.Remove(path)
		return nil, nil, nil, err
	}
	cleanup := func() {
		src.Close()
		os.Remove(path)
	}
	return src, []string{"RESTRACK_FIFO=" + path, "RESTRACK_MODE=fifo"}, cleanup, nil
}

// openRingMode serves CMD's processes the way the host collector does
// (docs/collector.md, "Rendezvous"): a private rendezvous socket, named to
// CMD by RESTRACK_SOCKET, hands each process the ring of its uid, so a
// command that changes user (runuser, su, a service calling setuid) stays
// traced in every descendant. Running as root, restrack can make a ring for
// any uid; otherwise processes of other uids are counted and reported.
func openRingMode(e *runEnv) (collector.Source, []string, func(), error) {
	dir, err := os.MkdirTemp(e.tmpDir, "restrack-run-"+fmt.Sprint(os.Getpid())+"-")
	if err != nil {
		return nil, nil, nil, err
	}
	// Other uids must reach the socket inside, not list or enter the
	// rings' directory (which ListenRendezvous keeps 0700).
	if err := os.Chmod(dir, 0o711); err != nil {
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	logf := func(f string, a ...any) { fmt.Fprintf(e.stderr, "restrack run: "+f+"\n", a...) }
	src := collector.NewMultiSource(e.resume, logf)
	sock := filepath.Join(dir, "collector.sock")
	rv, err := collector.ListenRendezvous(collector.RendezvousConfig{
		Socket: sock, RingDir: filepath.Join(dir, "rings"), RingSize: e.ringSize,
		Logf: logf, NewRing: src.AddRing,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	if err := rv.Prepare(uint32(os.Getuid())); err != nil {
		rv.Close()
		src.Close()
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = rv.Serve(ctx)
	}()
	e.untraced = rv.UntracedWarnings
	cleanup := func() {
		stop()
		<-served
		src.Close()
		os.RemoveAll(dir)
	}
	// RESTRACK_RING and RESTRACK_MODE emptied: an outer trace's ring in
	// restrack's own environment must not capture CMD.
	return src, []string{collector.EnvSocket + "=" + sock, "RESTRACK_RING=", "RESTRACK_MODE="}, cleanup, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// privateDir is where a private ring goes: /dev/shm (memory, no disk
// writes) when usable, else $TMPDIR.
func privateDir() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() && syscall.Access("/dev/shm", 2 /* W_OK */) == nil {
		return "/dev/shm"
	}
	return os.TempDir()
}

// findShim locates librestrack.so: --shim, then $RESTRACK_SHIM, then next
// to the restrack binary (make puts both in build/).
func findShim(flagValue string) (string, error) {
	cands := []string{}
	switch {
	case flagValue != "":
		cands = append(cands, flagValue)
	case os.Getenv("RESTRACK_SHIM") != "":
		cands = append(cands, os.Getenv("RESTRACK_SHIM"))
	default:
		if exe, err := os.Executable(); err == nil {
			if real, err := filepath.EvalSymlinks(exe); err == nil {
				exe = real
			}
			// build/ keeps both side by side; make install puts the shim
			// in PREFIX/lib/restrack for PREFIX/bin/restrack.
			cands = append(cands, filepath.Join(filepath.Dir(exe), "librestrack.so"),
				filepath.Join(filepath.Dir(exe), "..", "lib", "restrack", "librestrack.so"))
		}
	}
	for _, c := range cands {
		abs, err := filepath.Abs(c)
		if err != nil {
			continue
		}
		if fi, err := os.Stat(abs); err == nil && fi.Mode().IsRegular() {
			return abs, nil
		}
	}
	return "", fmt.Errorf("shim librestrack.so not found (looked at %s): build it with `make shim` (or install it with make install PREFIX=…), or pass --shim PATH or set RESTRACK_SHIM",
		strings.Join(cands, ", "))
}

func runRun(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restrack run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	storeDir := fs.String("store", "./restrack-data", "store `DIR` the trace is added to")
	modes := make([]string, 0, len(runModes))
	for m := range runModes {
		modes = append(modes, m)
	}
	sort.Strings(modes)
	mode := fs.String("mode", "ring", "transport: "+strings.Join(modes, "|"))
	shimFlag := fs.String("shim", "", "the LD_PRELOAD shim `PATH` (default: $RESTRACK_SHIM, else librestrack.so next to restrack)")
	ringSize := fs.Uint64("ring-size", ring.DefaultDataSize, "bytes of record slots in the private ring (a power of two)")
	interval := fs.Duration("drain-interval", collector.DefaultDrainInterval, "drain the ring at least this often")
	retain := fs.Int64("retain-events", store.DefaultRetainEvents, "raw events kept in the store (newest); 0 none, -1 all")
	_ = fs.Bool("v", false, "no effect: the summary is always printed (kept for old scripts)")
	noWait := fs.Bool("no-wait", false, "return when CMD exits; descendants still running go untraced (default: wait for them, like strace -f)")
	asJSON := fs.Bool("json", false, "end with the summary as one JSON object, the last line on stderr (stdout is CMD's)")
	failOnLoss := fs.Bool("fail-on-loss", false, "exit 125 instead of 0 when CMD succeeded but records were lost or nothing was traced")
	var pubFlags publishFlags
	pubFlags.register(fs, "once the trace is stored, publish it to the fleet database at PostgreSQL `DSN` (docs/fleet.md)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: restrack run [flags] -- CMD [ARGS…]\n\n"+
			"Runs CMD with the shim preloaded, traces it and all its descendants into the store,\n"+
			"waits for every descendant (like strace -f), and exits with CMD's exit status\n"+
			"(128+N when a signal N killed it; 125 when restrack itself failed, or with\n"+
			"--fail-on-loss when records were lost; 126/127 when CMD cannot be executed /\n"+
			"is not found). Its last line on stderr names the root pid, the records stored\n"+
			"and the records lost, after a warning with the remedy for each problem.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	argv := fs.Args()
	if len(argv) == 0 {
		fmt.Fprintf(stderr, "restrack run: no command given: restrack run [flags] -- CMD [ARGS…]\n")
		return 2
	}
	m, ok := runModes[*mode]
	if !ok {
		fmt.Fprintf(stderr, "restrack run: unknown --mode %q: this build has %s\n", *mode, strings.Join(modes, ", "))
		return 2
	}
	if *interval <= 0 {
		fmt.Fprintf(stderr, "restrack run: --drain-interval must be positive, got %v\n", *interval)
		return 2
	}
	if s := *ringSize; s < ring.MinDataSize || s > ring.MaxDataSize || s&(s-1) != 0 {
		fmt.Fprintf(stderr, "restrack run: --ring-size %d is not a power of two between %d and %d\n", s, ring.MinDataSize, ring.MaxDataSize)
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "restrack run: %v\n", err)
		return exitRunFailed
	}
	publisher, err := pubFlags.publisher(*storeDir)
	if err != nil {
		fmt.Fprintf(stderr, "restrack run: %v\n", err)
		return 2
	}

	// Resolve CMD first: a typo should not create a store.
	path, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(stderr, "restrack run: %v\n", err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return exitCmdNotFound
		}
		return exitCannotExec
	}
	var env []string
	if m.preload {
		shim, err := findShim(*shimFlag)
		if err != nil {
			return fail(err)
		}
		preload := shim
		if old := os.Getenv("LD_PRELOAD"); old != "" {
			preload += " " + old
		}
		env = append(env, "LD_PRELOAD="+preload)
	}

	opts := store.Options{RetainEvents: *retain, DiscardEvents: *retain == 0}
	st, err := store.Open(*storeDir, opts)
	if err != nil {
		return fail(err)
	}
	defer st.Close()
	renv := &runEnv{ringSize: *ringSize, tmpDir: privateDir(), stderr: stderr,
		resume: func(id uint64) (uint64, bool, error) { return st.Resume(context.Background(), id) }}
	src, srcEnv, cleanup, err := m.open(renv)
	if err != nil {
		return fail(err)
	}
	defer cleanup()
	env = append(env, srcEnv...)

	c := collector.New(src, st, collector.Config{DrainInterval: *interval,
		Logf: func(f string, a ...any) { fmt.Fprintf(stderr, "restrack run: "+f+"\n", a...) }})
	ctx, stopCollector := context.WithCancel(context.Background())
	collected := make(chan error, 1)
	go func() { collected <- c.Run(ctx) }()

	cmd := exec.Command(path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Env = mergeEnv(os.Environ(), env)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr

	// Orphans among CMD's descendants become restrack's children, so that
	// they can be waited for (or, with --no-wait, counted).
	reaping := becomeSubreaper() == nil
	if !reaping && !*noWait {
		fmt.Fprintf(stderr, "restrack run: %v: returning when CMD exits\n", becomeSubreaper())
	}

	// Catch the signals before CMD exists, so none is lost in between.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwardedSignals...)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		stopCollector()
		<-collected
		fmt.Fprintf(stderr, "restrack run: %v\n", err)
		if errors.Is(err, os.ErrPermission) {
			return exitCannotExec
		}
		return exitCmdNotFound
	}
	if m.started != nil {
		if err := m.started(src, cmd.Process.Pid); err != nil {
			fmt.Fprintf(stderr, "restrack run: %v\n", err)
		}
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	ttyForeground := inForegroundOfTerminal()
	var earlyErr error
wait:
	for {
		select {
		case s := <-sigs:
			// Ctrl-C and Ctrl-\ at the terminal already reached CMD (same
			// foreground process group): sending them again would make
			// "press twice to force" programs force.
			if ttyForeground && (s == syscall.SIGINT || s == syscall.SIGQUIT) {
				continue
			}
			_ = cmd.Process.Signal(s)
		case <-waited:
			break wait
		case earlyErr = <-collected:
			// The store failed: CMD keeps running, its records are no
			// longer saved; say so now, not only at the end.
			fmt.Fprintf(stderr, "restrack run: collector stopped: %v (the trace is incomplete)\n", earlyErr)
			collected = nil
		}
	}
	status := exitStatus(cmd.ProcessState)
	left := 0
	if reaping && !*noWait {
		left = waitDescendants(sigs, ttyForeground, stderr)
	} else if pids, ok := childPIDs(); ok {
		left = len(pids)
	}

	stopCollector()
	cerr := earlyErr
	if collected != nil {
		cerr = <-collected
	}
	if cerr != nil {
		fmt.Fprintf(stderr, "restrack run: trace not fully saved to %s: %v\n", *storeDir, cerr)
		if status == 0 {
			return exitRunFailed
		}
		return status
	}
	s := c.Status(context.Background())
	sum := runSummary{RootPID: cmd.Process.Pid, Command: argv, ExitStatus: status, Store: *storeDir,
		Records: s.Records, LostFull: s.DroppedFull, LostTooBig: s.DroppedTooBig, Abandoned: s.Abandoned, Corrupted: s.Corrupted,
		DescendantsLeft: left, Untraced: []untracedExec{}}
	sum.Lost = sum.LostFull + sum.LostTooBig + sum.Abandoned + sum.Corrupted
	var progs []collector.Program
	var unchecked uint64
	if m.preload {
		progs, unchecked = c.Programs()
		sum.Untraced = findUntraced(path, progs)
	}
	sum.Warnings = sum.warnings(*ringSize)
	if unchecked > 0 {
		sum.Warnings = append(sum.Warnings, fmt.Sprintf("%d exec records of programs past the first %d distinct ones were not checked for static, set-id or Go programs the shim cannot trace", unchecked, len(progs)))
	}
	if renv.untraced != nil {
		if w := renv.untraced(); len(w) > 0 {
			for _, line := range w {
				sum.Warnings = append(sum.Warnings, line+" (the trace is incomplete)")
			}
			if sum.ExitStatus == 0 {
				sum.ExitStatus = exitRunFailed
			}
		}
	}
	if publisher != nil {
		if err := publishStore(publisher, st, pubFlags.timeout, stderr); err != nil {
			sum.Warnings = append(sum.Warnings, fmt.Sprintf("not published: %v", err))
			if sum.ExitStatus == 0 {
				sum.ExitStatus = exitRunFailed
			}
		}
	}
	status = sum.finalStatus(*failOnLoss)
	sum.print(stderr, *asJSON) // the last line: the summary
	return status
}

var forwardedSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGCONT}

// exitStatus maps how CMD ended to restrack's exit status: its own code, or
// 128+N when signal N killed it (what a shell reports).
func exitStatus(ps *os.ProcessState) int {
	if ps == nil {
		return exitRunFailed
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	if code := ps.ExitCode(); code >= 0 {
		return code
	}
	return exitRunFailed
}

// mergeEnv overrides base with extra (KEY=VALUE each).
func mergeEnv(base, extra []string) []string {
	keys := map[string]bool{}
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		keys[k] = true
	}
	out := make([]string, 0, len(base)+len(extra))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if !keys[k] {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// oneProc runs restrack run's Go code on one CPU at a time (GOMAXPROCS=1)
// unless the user set GOMAXPROCS. Its collector is one goroutine draining
// and committing; a second P only adds the scheduler's churn — threads woken
// to steal work around every blocking write and sleep — which the traced
// command pays for on a two-core machine. restrack run -- openloop, 1 M
// opens, 3 interleaved pairs (load 5-9): restrack's user+sys 2.86-3.22 s
// with one P against 3.08-4.16 s with two (2,000 against 4,000-13,000
// voluntary context switches). The daemon collector keeps every P: there a
// registering process waits for its answer, and one P lengthened that wait.
func oneProc() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}
