//go:build linux

package shimtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/internal/ctest"
	"github.com/restrack/restrack/ring"
)

// sameAsUntraced runs the probe case under te and without the shim and
// requires the same output; it returns the traced run.
func sameAsUntraced(t *testing.T, te *traceEnv, name string, args ...string) runResult {
	t.Helper()
	p := probe(t)
	res := te.run(p, append([]string{name, te.dir}, args...)...)
	require.NoError(t, res.err, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	plain := runUntraced(t, p, append([]string{name, "@DIR"}, args...)...)
	require.NoError(t, plain.err, plain.stderr)
	require.Equal(t, comparable(plain.stdout), comparable(res.stdout), "the shim changed what the program saw")
	assert.Empty(t, res.stderr, "the shim never prints")
	return res
}

func TestErrnoAndReturnValuesAreUntouched(t *testing.T) {
	te := newTrace(t, ring.Config{})
	res := sameAsUntraced(t, te, "errno")
	// Spelled out, not only compared: a success leaves errno alone, a
	// failure's errno is the call's own.
	assert.Contains(t, res.stdout, "errno after success 1234\n")
	assert.Contains(t, res.stdout, "ret -1 errno 2\n")
	assert.Contains(t, res.stdout, "errno after fopen 777\n")
	assert.Contains(t, res.stdout, "rename -1 errno 2\n")
	evs := fileEvents(te.drain(), res.pid)
	assert.NotEmpty(t, filter(evs, func(e event) bool { return e.Op == "rename" && e.Result == -2 }))
}

func TestFileDescriptorNumbersAreTheSameAsWithoutTheShim(t *testing.T) {
	sameAsUntraced(t, newTrace(t, ring.Config{}), "fds")
}

func TestAnOpenFromASignalHandlerOnASmallAlternateStackIsRecorded(t *testing.T) {
	te := newTrace(t, ring.Config{})
	res := sameAsUntraced(t, te, "signal")
	assert.NotContains(t, res.stdout, "handler fd -")
	evs := fileEvents(te.drain(), res.pid)
	got := filter(evs, func(e event) bool { return e.Path == te.dir+"/from-handler.txt" })
	require.Len(t, got, 1, dump(evs))
	assert.Equal(t, "open", got[0].Op)
	assert.Equal(t, uint8(W), got[0].Access)
	assert.GreaterOrEqual(t, got[0].Result, int32(3))
}

func TestThreadsRecordEveryOpenUnderTheirOwnTid(t *testing.T) {
	te := newTrace(t, ring.Config{})
	res := sameAsUntraced(t, te, "threads")
	evs := filter(fileEvents(te.drain(), res.pid), func(e event) bool { return e.Op == "open" && e.Access == W })
	require.Len(t, evs, 8*200)
	perTid := map[int32]int{}
	for _, e := range evs {
		perTid[e.TID]++
		assert.True(t, strings.HasPrefix(e.Path, te.dir+"/t"), e.Path)
		assert.GreaterOrEqual(t, e.Result, int32(3))
	}
	assert.Len(t, perTid, 8, "one tid per thread")
	for tid, n := range perTid {
		assert.NotEqual(t, int32(res.pid), tid, "threads are not the main thread")
		assert.Equal(t, 200, n)
	}
}

func TestAProgramThatClosesEveryDescriptorKeepsBeingTraced(t *testing.T) {
	te := newTrace(t, ring.Config{})
	res := sameAsUntraced(t, te, "closeall")
	evs := afterBegin(fileEvents(te.drain(), res.pid))
	require.Len(t, evs, 1, dump(evs))
	assert.Equal(t, te.dir+"/after-close.txt", evs[0].Path)
}

func TestWithoutAUsableRingTheProgramRunsExactlyAsWithoutTheShim(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	require.NoError(t, os.WriteFile(garbage, make([]byte, 1<<17), 0o600))
	short := filepath.Join(dir, "short")
	require.NoError(t, os.WriteFile(short, []byte("RTRING"), 0o600))
	for _, tc := range []struct{ name, ring string }{
		{"the ring file does not exist", filepath.Join(dir, "missing")},
		{"the ring file is not a ring", garbage},
		{"the ring file is too short", short},
		{"RESTRACK_RING is empty", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newTrace(t, ring.Config{})
			te.ring = tc.ring
			for _, c := range []string{"namespace", "exec:execve", "errno", "fds", "signal"} {
				sameAsUntraced(t, te, c)
			}
		})
	}
}

// spinTotal is how many records "probe spin N" makes with room for all.
func spinTotal(t *testing.T, n string) int {
	t.Helper()
	te := newTrace(t, ring.Config{DataSize: 16 << 20})
	res := te.run(probe(t), "spin", te.dir, n)
	require.NoError(t, res.err)
	evs := te.drain()
	require.Zero(t, te.reader.Counters().Dropped())
	return len(evs)
}

func TestAFullRingDropsAndCountsExactlyAndTheProgramCarriesOn(t *testing.T) {
	total := spinTotal(t, "3000")
	te := newTrace(t, ring.Config{DataSize: ring.MinDataSize, FullWait: 20 * time.Microsecond})
	// Nobody drains while the program runs: the ring fills, appends wait
	// their bounded time and drop.
	res := te.run(probe(t), "spin", te.dir, "3000")
	require.NoError(t, res.err)
	assert.Contains(t, res.stdout, "spin done")
	evs := te.drain()
	c := te.reader.Counters()
	assert.NotZero(t, c.DroppedFullRecords)
	assert.Equal(t, uint64(total), uint64(len(evs))+c.DroppedFullRecords, "every record is either in the ring or counted as dropped")
	assert.NotZero(t, c.FullWaits)
}

func TestADeadCollectorCostsTheProgramNothing(t *testing.T) {
	total := spinTotal(t, "3000")
	te := newTrace(t, ring.Config{DataSize: ring.MinDataSize, FullWait: time.Second})
	// The collector goes away: producers see no consumer and drop at once
	// instead of waiting (a second each here) on a ring nobody drains.
	require.NoError(t, te.reader.Close())
	start := time.Now()
	res := te.run(probe(t), "spin", te.dir, "3000")
	require.NoError(t, res.err)
	assert.Contains(t, res.stdout, "spin done")
	assert.Less(t, time.Since(start), 20*time.Second, "no bounded wait per dropped record")
	r, err := ring.Open(te.ring, ring.Options{})
	require.NoError(t, err)
	defer r.Close()
	te.reader = r
	evs := te.drain()
	c := r.Counters()
	assert.NotZero(t, c.DroppedFullRecords)
	assert.Equal(t, uint64(total), uint64(len(evs))+c.DroppedFullRecords)
}

func TestOpensFromAnotherLibrarysConstructorBeforeTheShimsAreRecorded(t *testing.T) {
	lib := ctest.Build(t, "libpreinit.so", []string{"libcshim/tests/preinit_lib.c"}, "-shared", "-fPIC")
	prog := ctest.Build(t, "preinit", []string{"libcshim/tests/preinit_main.c"}, "-Wl,--no-as-needed", lib, "-Wl,-rpath,"+filepath.Dir(lib))
	te := newTrace(t, ring.Config{})
	res := te.run(prog)
	require.NoError(t, res.err, res.stderr)
	plain := runUntraced(t, prog)
	assert.Equal(t, plain.stdout, res.stdout)
	assert.Equal(t, "preinit fd 3 errno 0\n", res.stdout)
	all := te.drain()
	evs := fileEvents(all, res.pid)
	var open, fopen event
	for _, e := range evs {
		switch e.Path {
		case te.dir + "/preinit.txt":
			open = e
		case te.dir + "/preinit-stdio.txt":
			fopen = e
		}
	}
	require.Equal(t, "open", open.Op, dump(evs))
	assert.Equal(t, int32(3), open.Result)
	assert.Equal(t, "fopen", fopen.Op)
	assert.NotZero(t, open.RFlags&ring.RFPreInit, "recorded before the shim's constructor: %s", open)
	// The lazy initialisation still wrote the process record first.
	mine := filter(all, func(e event) bool { return e.PID == int32(res.pid) })
	require.NotEmpty(t, mine)
	assert.Equal(t, "proc_start", mine[0].Op)
}

func TestSetuidProgramsIgnoreThePreloadAndRunNormally(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a setuid-root binary and run it as another user")
	}
	// A setuid-root copy of the probe, run by nobody: the loader is in
	// secure-execution mode and ignores LD_PRELOAD paths with a slash.
	dir, err := os.MkdirTemp("", "restrack-setuid-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o777))
	bin := filepath.Join(dir, "probe-suid")
	data, err := os.ReadFile(probe(t))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, data, 0o755))
	require.NoError(t, os.Chmod(bin, 0o4755|os.ModeSetuid))
	te := newTrace(t, ring.Config{})
	require.NoError(t, os.Chmod(te.ring, 0o666)) // even a writable ring is not used
	cmd := exec.Command(bin, "secure", dir)
	cmd.Dir = dir
	cmd.Env = te.environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	res := runCmd(t, cmd)
	require.NoError(t, res.err, res.stderr)
	if strings.Contains(res.stdout, "secure 0") {
		t.Skipf("the loader did not enter secure mode (nosuid mount?): %s", res.stdout)
	}
	assert.Contains(t, res.stdout, "secure 1 euid 0\nfd 3\n")
	assert.Empty(t, filter(te.drain(), func(e event) bool { return e.PID == int32(res.pid) }),
		"setuid programs are a documented blind spot: nothing is recorded")
}

func TestRecordsWrapAroundTheEndOfASmallRingIntact(t *testing.T) {
	total := spinTotal(t, "20000")
	te := newTrace(t, ring.Config{DataSize: ring.MinDataSize})
	// Drain while the program runs so the ring laps many times; records
	// of 3 slots in 1024 start at every offset, so their strings wrap.
	done := make(chan runResult, 1)
	go func() { done <- te.run(probe(t), "spin", te.dir, "20000") }()
	var evs []event
	for running := true; running; {
		select {
		case res := <-done:
			require.NoError(t, res.err)
			running = false
		default:
			te.reader.Wait(time.Millisecond)
		}
		evs = append(evs, te.drain()...)
	}
	c := te.reader.Counters()
	assert.Equal(t, uint64(total), uint64(len(evs))+c.DroppedFullRecords)
	assert.Greater(t, len(evs), 3*1024/3, "the ring lapped")
	spins := filter(evs, func(e event) bool { return e.Op == "open" })
	for _, e := range spins {
		require.Equal(t, te.dir+"/spin.txt", e.Path, "a wrapped path comes back whole")
	}
}

func TestDlopenOfABareNameStillUsesTheCallersRunpath(t *testing.T) {
	lib := ctest.Build(t, "libpreinit.so", []string{"libcshim/tests/preinit_lib.c"}, "-shared", "-fPIC")
	prog := ctest.Build(t, "dlopen_runpath", []string{"libcshim/tests/dlopen_runpath.c"},
		"-Wl,--enable-new-dtags,-rpath,"+filepath.Dir(lib), "-ldl")
	plain := runUntraced(t, prog, "libpreinit.so")
	require.NoError(t, plain.err, plain.stdout)
	te := newTrace(t, ring.Config{})
	res := te.run(prog, "libpreinit.so")
	require.NoError(t, res.err, "the library must load as without the shim: %s", res.stdout)
	assert.Equal(t, "loaded\n", res.stdout)
	evs := filter(fileEvents(te.drain(), res.pid), func(e event) bool { return e.Op == "dlopen" })
	require.Len(t, evs, 1)
	assert.Equal(t, "libpreinit.so", evs[0].Path, "a bare name is recorded as given")
	assert.NotZero(t, evs[0].RFlags&ring.RFUnresolved)
	assert.Equal(t, uint8(R), evs[0].Access)
}

func TestThreadsSignalsChdirAndForksAtOnceNeitherDeadlockNorCorrupt(t *testing.T) {
	te := newTrace(t, ring.Config{DataSize: 16 << 20})
	res := te.run(probe(t), "chaos", te.dir)
	require.NoError(t, res.err, res.stderr)
	assert.Equal(t, "chaos ok 1\n", res.stdout)
	evs := te.drain() // fails on any corrupted record
	require.Zero(t, te.reader.Counters().Dropped())
	var forked, alarms int
	for _, e := range evs {
		if e.isProc() || e.Op == "fork" {
			continue
		}
		require.True(t, strings.HasPrefix(e.Path, "/"), "every path absolute: %s", e)
		require.Zero(t, e.RFlags&ring.RFUnresolved, e.String())
		switch {
		case strings.HasSuffix(e.Path, "/forked.txt"):
			forked++
			assert.NotEqual(t, int32(res.pid), e.PID)
		case strings.HasSuffix(e.Path, "/alarm.txt"):
			alarms++
		}
	}
	assert.Equal(t, 100, forked, "every forked child's open, under its own pid")
	assert.NotZero(t, alarms, "opens from the signal handler")
	// Relative opens resolve against the cwd of the moment: the workers'
	// files are in the work directory or in sub/, nowhere else.
	for _, e := range evs {
		if strings.HasSuffix(e.Path, "/c0") {
			dir := filepath.Dir(e.Path)
			assert.True(t, dir == te.dir || dir == te.dir+"/sub", e.Path)
		}
	}
}
