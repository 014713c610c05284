//go:build linux

package ebpf

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
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
	if errors.Is(err, ErrUnavailable) {
		if os.Getenv("RESTRACK_REQUIRE_BPF") == "1" {
			tb.Fatalf("RESTRACK_REQUIRE_BPF=1 but %v", err)
		}
		tb.Skipf("skipping: %v", err)
	}
	require.NoError(tb, err)
	tb.Cleanup(func() { assert.NoError(tb, t.Close()) })
	return t
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
}
