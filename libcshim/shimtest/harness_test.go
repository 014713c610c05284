//go:build linux

package shimtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/internal/ctest"
	"github.com/restrack/restrack/ring"
)

// event is a drained record with its strings copied out of the batch.
type event struct {
	Type    uint8
	Access  uint8
	Op      string
	RFlags  uint16
	PID     int32
	TID     int32
	PPID    int32
	Result  int32
	Flags   uint32
	Mode    uint32
	StartNs uint64
	TimeNs  uint64
	Path    string // str1: path, or exe for process records
	Path2   string // str2: second path, or cwd for process records
	Str3    string // argv (NUL-separated) or a command line
}

func (e event) String() string {
	return fmt.Sprintf("%s pid=%d access=%d result=%d flags=%#x rflags=%#x path=%q path2=%q", e.Op, e.PID, e.Access, e.Result, e.Flags, e.RFlags, e.Path, e.Path2)
}

func (e event) isProc() bool { return e.Type == ring.TypeProc }

// shim builds librestrack.so from every libcshim/*.c with the Makefile's
// flags, once per test binary, so that `go test ./...` alone works.
func shim(tb testing.TB) string {
	tb.Helper()
	root := ctest.RepoRoot(tb)
	srcs, err := filepath.Glob(filepath.Join(root, "libcshim", "*.c"))
	require.NoError(tb, err)
	require.NotEmpty(tb, srcs)
	sort.Strings(srcs)
	var rel []string
	for _, s := range srcs {
		r, err := filepath.Rel(root, s)
		require.NoError(tb, err)
		rel = append(rel, r)
	}
	return ctest.Build(tb, "librestrack.so", rel, "-shared", "-fPIC", "-fvisibility=hidden", "-D_GNU_SOURCE", "-Wl,-z,now", "-ldl")
}

func probe(tb testing.TB) string {
	tb.Helper()
	return ctest.Build(tb, "probe", []string{"libcshim/tests/probe.c"})
}

// traceEnv is a fresh ring, a work directory and the environment that
// points the shim at the ring.
type traceEnv struct {
	t      *testing.T
	dir    string // work directory (symlinks resolved: paths are compared)
	ring   string
	shim   string
	reader *ring.Reader
	batch  *ring.Batch
	extra  []string
}

func newTrace(t *testing.T, cfg ring.Config) *traceEnv {
	t.Helper()
	base := t.TempDir()
	dir, err := filepath.EvalSymlinks(base)
	require.NoError(t, err)
	work := filepath.Join(dir, "work")
	require.NoError(t, os.Mkdir(work, 0o755))
	if cfg.DataSize == 0 {
		cfg.DataSize = 4 << 20
	}
	rp := filepath.Join(dir, "ring")
	require.NoError(t, ring.Create(rp, cfg))
	r, err := ring.Open(rp, ring.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	return &traceEnv{t: t, dir: work, ring: rp, shim: shim(t), reader: r, batch: ring.NewBatch(4096, 8<<20)}
}

// environ is the traced environment: the test's own, minus anything of
// ours it may carry, plus LD_PRELOAD and RESTRACK_RING.
func (te *traceEnv) environ() []string {
	var env []string
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "LD_PRELOAD=") || strings.HasPrefix(e, "RESTRACK_") {
			continue
		}
		env = append(env, e)
	}
	env = append(env, "LD_PRELOAD="+te.shim, "RESTRACK_RING="+te.ring)
	return append(env, te.extra...)
}

type runResult struct {
	pid    int
	stdout string
	stderr string
	err    error
}

// run executes name with args in the work directory under the shim and
// waits for it (and so for every record of it and its waited-for children).
func (te *traceEnv) run(name string, args ...string) runResult {
	te.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = te.dir
	cmd.Env = te.environ()
	return runCmd(te.t, cmd)
}

func runCmd(t *testing.T, cmd *exec.Cmd) runResult {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	require.NoError(t, cmd.Start())
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("%v timed out", cmd.Args)
	}
	return runResult{pid: cmd.Process.Pid, stdout: out.String(), stderr: errb.String(), err: err}
}

// drain reads every record published so far.
func (te *traceEnv) drain() []event {
	te.t.Helper()
	var evs []event
	for {
		te.reader.Drain(te.batch)
		for i := range te.batch.Records {
			r := &te.batch.Records[i]
			evs = append(evs, event{
				Type: r.Type, Access: r.Access, Op: r.Op.String(), RFlags: r.RFlags,
				PID: r.PID, TID: r.TID, PPID: r.PPID, Result: r.Result, Flags: r.Flags, Mode: r.Mode,
				StartNs: r.StartNs, TimeNs: r.TimeNs,
				Path: string(r.Str1), Path2: string(r.Str2), Str3: string(r.Str3),
			})
		}
		require.Zero(te.t, te.batch.Corrupted, "corrupted records in the ring")
		te.reader.Release(te.batch.End)
		if len(te.batch.Records) == 0 {
			return evs
		}
	}
}

// filter keeps the events matching keep.
func filter(evs []event, keep func(event) bool) []event {
	var out []event
	for _, e := range evs {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// fileEvents: the file events of one process, without the libraries the
// loader mapped (op "loaded").
func fileEvents(evs []event, pid int) []event {
	return filter(evs, func(e event) bool {
		return !e.isProc() && int(e.PID) == pid && e.Op != "loaded"
	})
}

// afterBegin drops everything up to and including the probe's BEGIN
// marker (a failed open of /RT-BEGIN that ends each case's setup).
func afterBegin(evs []event) []event {
	for i, e := range evs {
		if e.Path == "/RT-BEGIN" {
			return evs[i+1:]
		}
	}
	return evs
}

func procEvents(evs []event) []event {
	return filter(evs, func(e event) bool { return e.isProc() })
}

func dump(evs []event) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// call is one "CALL <op> <result>" line of the probe.
type call struct {
	op     string
	result int32
}

var callRE = regexp.MustCompile(`^CALL (\S+) (-?\d+) errno=(\d+)$`)

func parseCalls(t *testing.T, stdout string) []call {
	t.Helper()
	var calls []call
	for _, line := range strings.Split(stdout, "\n") {
		m := callRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v, err := strconv.ParseInt(m[2], 10, 32)
		require.NoError(t, err)
		calls = append(calls, call{op: m[1], result: int32(v)})
	}
	return calls
}

var bigNumRE = regexp.MustCompile(`\d{3,}`)

// comparable blanks out what legitimately differs between two runs: pids
// and random names.
func comparable(stdout string) string {
	var keep []string
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, "NAME ") {
			continue
		}
		keep = append(keep, bigNumRE.ReplaceAllString(line, "N"))
	}
	return strings.Join(keep, "\n")
}

// runUntraced runs the probe without the shim in a fresh directory.
func runUntraced(t *testing.T, name string, args ...string) runResult {
	t.Helper()
	dir := t.TempDir()
	for i, a := range args {
		if a == "@DIR" {
			args[i] = dir
		}
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "LD_PRELOAD=") && !strings.HasPrefix(e, "RESTRACK_") {
			env = append(env, e)
		}
	}
	cmd.Env = env
	return runCmd(t, cmd)
}
