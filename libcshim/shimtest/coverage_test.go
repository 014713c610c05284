//go:build linux

package shimtest

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/internal/ctest"
	"github.com/restrack/restrack/ring"
)

// Tests of what issue 13 found the shim missing or recording wrongly.

func TestAPathDeeperThanPathMaxIsFlaggedTooLongAndCountedNeverStoredBare(t *testing.T) {
	te := newTrace(t, ring.Config{})
	res := te.run(probe(t), "deep", te.dir)
	require.NoError(t, res.err, res.stderr)
	calls := parseCalls(t, res.stdout)
	require.Len(t, calls, 3, res.stdout)
	got := afterBegin(fileEvents(te.drain(), res.pid))
	require.Len(t, got, 3, dump(got))
	for i, c := range calls {
		e := got[i]
		assert.Equal(t, c.op, e.Op)
		assert.Equal(t, c.result, e.Result, e.String())
		assert.False(t, strings.HasPrefix(e.Path, "/"), "the kernel cannot name the base: %s", e)
		assert.NotZero(t, e.RFlags&ring.RFUnresolved, "a relative path is marked unresolved: %s", e)
		assert.NotZero(t, e.RFlags&ring.RFTooLong, "and says why: %s", e)
	}
	assert.GreaterOrEqual(t, te.reader.Counters().ProducerErrors, uint64(3), "each one is counted")
}

func TestADlopenRecordsTheLibraryTheLoaderMappedAndEveryLibraryItPulledIn(t *testing.T) {
	// libtop.so needs libdep.so, found through libtop's RUNPATH ($ORIGIN):
	// the program never names libdep, the loader maps it for libtop.
	dep := ctest.Build(t, "libdep.so", []string{"libcshim/tests/preinit_lib.c"}, "-shared", "-fPIC", "-Wl,-soname,libdep.so")
	top := filepath.Join(filepath.Dir(dep), "libtop.so")
	out, err := exec.Command("cc", "-shared", "-fPIC", "-o", top, "-x", "c", "/dev/null",
		"-L"+filepath.Dir(dep), "-Wl,--no-as-needed", "-ldep", "-Wl,--enable-new-dtags,-rpath,$ORIGIN").CombinedOutput()
	require.NoError(t, err, string(out))

	te := newTrace(t, ring.Config{})
	res := te.run(probe(t), "dlopen", te.dir, top)
	require.NoError(t, res.err, res.stderr)
	calls := parseCalls(t, res.stdout)
	require.Len(t, calls, 5, res.stdout)
	require.Equal(t, int32(0), calls[4].result, "libtop.so loads: %s", res.stdout)
	evs := afterBegin(filter(te.drain(), func(e event) bool { return !e.isProc() && int(e.PID) == res.pid }))
	var dlopens []event
	loaded := map[string]bool{}
	for _, e := range evs {
		switch e.Op {
		case "dlopen":
			dlopens = append(dlopens, e)
		case "loaded":
			loaded[e.Path] = true
		}
	}
	require.Len(t, dlopens, 5, dump(evs))
	assert.Equal(t, "/lib/x86_64-linux-gnu/libm.so.6", dlopens[2].Path, "a bare name is the file the loader found")
	assert.Equal(t, int32(0), dlopens[2].Result)
	assert.Zero(t, dlopens[2].RFlags&ring.RFUnresolved)
	assert.Equal(t, "libdoesnotexist.so", dlopens[3].Path, "a library that was not found is no file")
	assert.Equal(t, int32(-2), dlopens[3].Result, "and the call failed")
	assert.Equal(t, top, dlopens[4].Path)
	assert.True(t, loaded[dep], "the dependency the loader pulled in is recorded: %v", loaded)
	assert.False(t, loaded[top], "the dlopen'd library is not recorded twice")
	assert.False(t, loaded["/lib/x86_64-linux-gnu/libc.so.6"], "libraries mapped before are not new: %v", loaded)
}

func TestASeccompSandboxNeverKillsTheProgramAndItsUnreadablePathsAreFlagged(t *testing.T) {
	for _, tc := range []struct {
		name, mode string
		cwdKnown   bool // the filter came after the shim started: the cwd was cached before
	}{
		{"a filter installed with prctl that kills on readlinkat", "kill", true},
		{"a filter installed with syscall(SYS_seccomp) that answers EPERM", "errno", true},
		{"a killing filter inherited across exec", "kill-exec", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newTrace(t, ring.Config{})
			res := te.run(probe(t), "seccomp", te.dir, tc.mode)
			require.NoError(t, res.err, "the sandboxed program must run as without the shim: %s", res.stderr)
			calls := parseCalls(t, res.stdout)
			require.Len(t, calls, 2, res.stdout)
			got := afterBegin(fileEvents(te.drain(), res.pid))
			require.Len(t, got, 2, dump(got))
			at := got[0]
			assert.Equal(t, calls[0].result, at.Result)
			assert.Equal(t, "at.txt", at.Path, "a dirfd's path needs /proc: kept as given")
			assert.Equal(t, uint16(ring.RFUnresolved|ring.RFSandboxed), at.RFlags&(ring.RFUnresolved|ring.RFSandboxed), at.String())
			rel := got[1]
			assert.Equal(t, calls[1].result, rel.Result)
			if tc.cwdKnown {
				assert.Equal(t, te.dir+"/rel.txt", rel.Path, "the cwd was cached before the filter")
				assert.Zero(t, rel.RFlags&ring.RFUnresolved)
			} else {
				assert.Equal(t, "rel.txt", rel.Path)
				assert.NotZero(t, rel.RFlags&ring.RFSandboxed, rel.String())
			}
			assert.NotZero(t, te.reader.Counters().ProducerErrors, "each is counted")
		})
	}
}

func TestPosixSpawnFileActionsAndAVforkChildsOpensAreRecordedUnderTheChild(t *testing.T) {
	te := newTrace(t, ring.Config{})
	res := te.run(probe(t), "spawnfa", te.dir)
	require.NoError(t, res.err, res.stderr)
	var children []int32
	for _, line := range strings.Split(res.stdout, "\n") {
		if pid, ok := strings.CutPrefix(line, "CHILD "); ok {
			n, err := strconv.Atoi(pid)
			require.NoError(t, err)
			children = append(children, int32(n))
		}
	}
	require.Len(t, children, 2, res.stdout)
	spawned, vforked := children[0], children[1]
	evs := afterBegin(filter(te.drain(), func(e event) bool { return !e.isProc() && e.Op != "loaded" }))
	byPath := map[string]event{}
	for _, e := range evs {
		byPath[e.Path] = e
	}

	out, ok := byPath[te.dir+"/spawn-out.txt"]
	require.True(t, ok, "the spawn's addopen is recorded:\n%s", dump(evs))
	assert.Equal(t, "posix_spawn(open)", out.Op)
	assert.Equal(t, spawned, out.PID, "under the child that opened it")
	assert.Equal(t, int32(res.pid), out.PPID)
	assert.NotZero(t, out.StartNs)
	assert.Equal(t, uint8(W), out.Access)
	assert.Equal(t, int32(1), out.Result, "the fd the action opened")
	in, ok := byPath[te.dir+"/sub/in.txt"]
	require.True(t, ok, "an addopen after addchdir_np resolves against the child's new cwd:\n%s", dump(evs))
	assert.Equal(t, uint8(R), in.Access)
	assert.Equal(t, spawned, in.PID)

	v, ok := byPath[te.dir+"/vchild.txt"]
	require.True(t, ok, dump(evs))
	assert.Equal(t, vforked, v.PID, "a vfork child's open is the child's")
	assert.Equal(t, int32(res.pid), v.PPID)
	assert.Equal(t, int32(res.pid), byPath[te.dir+"/parent.txt"].PID, "and the parent is itself again after it")
}
