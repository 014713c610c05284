//go:build linux

package ebpf

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/ring"
)

// mustStart starts a tracer or skips the test when this machine cannot run
// BPF at all, naming why; with RESTRACK_REQUIRE_BPF=1 (CI) that is a
// failure instead, because CI's machine can.
func mustStart(tb testing.TB, opts Options) *Tracer {
	tb.Helper()
	t, err := Start(opts)
	skipUnlessBPF(tb, err)
	require.NoError(tb, err)
	tb.Cleanup(func() { assert.NoError(tb, t.Close()) })
	return t
}

func skipUnlessBPF(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, ErrUnavailable) {
		if os.Getenv("RESTRACK_REQUIRE_BPF") == "1" {
			tb.Fatalf("RESTRACK_REQUIRE_BPF=1 but %v", err)
		}
		tb.Skipf("skipping: %v", err)
	}
}

// rec is a record copied out of a batch so it outlives it.
type rec struct {
	Type        uint8
	Op          ring.Op
	Access      uint8
	RFlags      uint16
	PID, PPID   int32
	StartNs     uint64
	Result      int32
	Flags       uint32
	Path, Path2 string
	Argv        []string
}

func copyRec(r *ring.Record) rec {
	return rec{Type: r.Type, Op: r.Op, Access: r.Access, RFlags: r.RFlags, PID: r.PID, PPID: r.PPID,
		StartNs: r.StartNs, Result: r.Result, Flags: r.Flags,
		Path: string(r.Str1), Path2: string(r.Str2), Argv: r.Argv()}
}

// traceRun runs cmd under a tracer that follows this test process's
// children, waits for it, stops the tracer and returns every record.
func traceRun(tb testing.TB, cmd *exec.Cmd) []rec {
	tb.Helper()
	t := mustStart(tb, Options{PID: os.Getpid(), ChildrenOnly: true, PollInterval: 5 * time.Millisecond})
	var (
		out  []rec
		wg   sync.WaitGroup
		rerr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		batch := make([]ring.Record, 64)
		for {
			n, err := t.ReadBatch(batch)
			for i := range batch[:n] {
				out = append(out, copyRec(&batch[i]))
			}
			if err != nil {
				if !errors.Is(err, ErrStopped) {
					rerr = err
				}
				return
			}
		}
	}()
	b, runErr := cmd.CombinedOutput()
	require.NoError(tb, t.Stop())
	wg.Wait()
	require.NoError(tb, runErr, "workload output: %s", b)
	require.NoError(tb, rerr)
	c, err := t.Counters()
	require.NoError(tb, err)
	assert.Zero(tb, c.Lost(), "records lost: %+v", c)
	assert.Zero(tb, c.Corrupt, "samples that failed to decode: %+v", c)
	return out
}

var (
	gowriterOnce sync.Once
	gowriterPath string
	gowriterErr  error
)

// mustGoWriter builds testdata/gowriter as a static pure-Go binary.
func mustGoWriter(tb testing.TB) string {
	tb.Helper()
	gowriterOnce.Do(func() {
		dir, err := os.MkdirTemp("", "restrack-ebpf-")
		if err != nil {
			gowriterErr = err
			return
		}
		gowriterPath = filepath.Join(dir, "gowriter")
		cmd := exec.Command("go", "build", "-o", gowriterPath, "./testdata/gowriter")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			gowriterErr = errors.New(string(b))
		}
	})
	require.NoError(tb, gowriterErr, "build gowriter")
	return gowriterPath
}

func findEvent(recs []rec, op ring.Op, path string) (rec, bool) {
	for _, r := range recs {
		if r.Type == ring.TypeEvent && r.Op == op && r.Path == path {
			return r, true
		}
	}
	return rec{}, false
}

func TestAStaticGoProgramsRawSyscallsAreSeenWithAbsolutePaths(t *testing.T) {
	bin := mustGoWriter(t)
	dir := t.TempDir()
	recs := traceRun(t, exec.Command(bin, dir))

	w, ok := findEvent(recs, ring.OpOpenat, filepath.Join(dir, "out.txt"))
	require.True(t, ok, "the write of out.txt (relative to a chdir'd cwd) is reported: %+v", recs)
	assert.Equal(t, uint8(ring.AccessWrite), w.Access)
	assert.GreaterOrEqual(t, w.Result, int32(0))
	assert.NotZero(t, w.StartNs)

	for _, c := range []struct {
		op    ring.Op
		path  string
		path2 string
	}{
		{ring.OpRenameat, filepath.Join(dir, "out.txt"), filepath.Join(dir, "renamed.txt")},
		{ring.OpMkdirat, filepath.Join(dir, "sub"), ""},
		{ring.OpUnlinkat, filepath.Join(dir, "sub"), ""},
		{ring.OpChdir, dir, ""},
		{ring.OpExecve, bin, ""},
	} {
		r, ok := findEvent(recs, c.op, c.path)
		if assert.True(t, ok, "%s %s is reported", c.op, c.path) {
			assert.Equal(t, c.path2, r.Path2, "%s second path", c.op)
		}
	}
	r, ok := findEvent(recs, ring.OpOpenat, filepath.Join(dir, "renamed.txt"))
	require.True(t, ok, "the read back is reported")
	assert.Equal(t, uint8(ring.AccessRead), r.Access)

	m, ok := findEvent(recs, ring.OpOpenat, filepath.Join(dir, "mapped-target"))
	require.True(t, ok, "a path in a page not yet faulted in at syscall entry is read at exit: %+v", recs)
	assert.Zero(t, m.RFlags&ring.RFUnresolved)
}

func TestFailedCallsAreReportedWithTheirNegativeErrno(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	recs := traceRun(t, exec.Command("sh", "-c", "cat "+missing+" 2>/dev/null; "+missing+" 2>/dev/null; true"))

	open, ok := findEvent(recs, ring.OpOpenat, missing)
	require.True(t, ok, "the failed open is reported")
	assert.Equal(t, -int32(syscall.ENOENT), open.Result)
	exe, ok := findEvent(recs, ring.OpExecve, missing)
	require.True(t, ok, "the failed exec is reported from its old address space")
	assert.Equal(t, -int32(syscall.ENOENT), exe.Result)
}

func TestOnlyTheTracedTreeIsReportedAndItsDescendantsAreFollowed(t *testing.T) {
	dir := t.TempDir()
	inside := filepath.Join(dir, "inside")
	outside := filepath.Join(dir, "outside")

	// The root: a shell that waits for a go-ahead, then starts a grandchild.
	fifo := filepath.Join(dir, "go")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	root := exec.Command("sh", "-c", "read x < "+fifo+"; sh -c 'touch "+inside+"'")
	require.NoError(t, root.Start())
	tr := mustStart(t, Options{PID: root.Process.Pid, PollInterval: 5 * time.Millisecond})

	// A process outside the tree does the same kind of thing meanwhile.
	require.NoError(t, exec.Command("touch", outside).Run())
	require.NoError(t, os.WriteFile(fifo, []byte("go\n"), 0o600))
	require.NoError(t, root.Wait())
	require.NoError(t, tr.Stop())

	var recs []rec
	batch := make([]ring.Record, 16)
	for {
		n, err := tr.ReadBatch(batch)
		for i := range batch[:n] {
			recs = append(recs, copyRec(&batch[i]))
		}
		if errors.Is(err, ErrStopped) {
			break
		}
		require.NoError(t, err)
	}
	start := recs[0]
	assert.Equal(t, ring.OpProcStart, start.Op, "the root is described first")
	assert.Equal(t, int32(root.Process.Pid), start.PID)
	assert.Contains(t, start.Argv, "-c")

	touched, ok := findEvent(recs, ring.OpOpenat, inside)
	require.True(t, ok, "the grandchild's open is reported: %+v", recs)
	assert.NotEqual(t, int32(root.Process.Pid), touched.PID)
	_, ok = findEvent(recs, ring.OpOpenat, outside)
	assert.False(t, ok, "a process outside the tree is not reported")

	// Every reported process was born inside the tree.
	tree := map[int32]bool{int32(root.Process.Pid): true}
	for _, r := range recs {
		if r.Op == ring.OpProcFork {
			assert.True(t, tree[r.PPID], "fork of %d by %d, outside the tree", r.PID, r.PPID)
			tree[r.PID] = true
		}
		assert.True(t, tree[r.PID], "record of %d, outside the tree: %+v", r.PID, r)
	}
}

func TestStartRefusesARootThatIsNotAProcess(t *testing.T) {
	_, err := Start(Options{PID: 0})
	require.Error(t, err)
	_, err = Start(Options{PID: 1 << 30})
	require.Error(t, err)
	if !errors.Is(err, ErrUnavailable) {
		assert.Contains(t, err.Error(), "seed root process")
	}
	_, err = Start(Options{PID: 1, RingSize: 12345})
	assert.ErrorContains(t, err, "power of two")
}

// The unprivileged half of the test below: run in a child as nobody.
func TestHelperStartAsNobody(t *testing.T) {
	if os.Getenv("RESTRACK_EBPF_HELPER") != "start" {
		t.Skip("skipping: helper of TestWithoutPrivilegesStartNamesWhatIsMissing")
	}
	_, err := Start(Options{PID: os.Getpid()})
	require.Error(t, err)
	require.ErrorIs(t, err, ErrUnavailable)
	os.Stdout.WriteString("ERR: " + err.Error() + "\n")
}

func TestWithoutPrivilegesStartNamesWhatIsMissing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to switch to an unprivileged user")
	}
	self, err := os.Executable()
	require.NoError(t, err)
	// t.TempDir's parent is private to root: nobody could not run the copy.
	dir, err := os.MkdirTemp("", "restrack-nobody-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "ebpf.test")
	b, err := os.ReadFile(self)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, b, 0o755))

	cmd := exec.Command(bin, "-test.run", "^TestHelperStartAsNobody$", "-test.v")
	cmd.Env = append(os.Environ(), "RESTRACK_EBPF_HELPER=start")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "ERR: eBPF mode unavailable: privileges to load BPF programs (CAP_BPF and CAP_PERFMON) (run as root)")
}

func TestDirfdRelativePathsAreMadeAbsoluteByTheKernelSide(t *testing.T) {
	// rm -r removes a tree through directory fds (unlinkat(fd, "name")) and
	// exits long before the records are read: /proc/PID/fd is gone by then,
	// so only the base the kernel side resolved at the call can help.
	dir := t.TempDir()
	tree := filepath.Join(dir, "a")
	require.NoError(t, os.MkdirAll(filepath.Join(tree, "b", "c"), 0o755))
	for _, f := range []string{"a/x", "a/b/y", "a/b/c/z"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o644))
	}
	cmd := exec.Command("rm", "-r", "a")
	cmd.Dir = dir
	recs := traceRun(t, cmd)

	var removed []string
	for _, r := range recs {
		if r.Type == ring.TypeEvent && r.Op == ring.OpUnlinkat {
			assert.Zero(t, r.RFlags&ring.RFUnresolved, "%s", r.Path)
			removed = append(removed, r.Path)
		}
	}
	assert.ElementsMatch(t, []string{
		tree + "/b/c/z", tree + "/b/c", tree + "/b/y", tree + "/b", tree + "/x", tree,
	}, removed)
}
