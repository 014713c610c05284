package ebpf

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/ring"
)

// fakeFS is a /proc with fixed answers.
type fakeFS struct {
	fds  map[[2]int32]string
	cwds map[int32]string
}

func (f fakeFS) fdPath(pid, fd int32) (string, bool) { s, ok := f.fds[[2]int32{pid, fd}]; return s, ok }
func (f fakeFS) cwd(pid int32) (string, bool)        { s, ok := f.cwds[pid]; return s, ok }
func (f fakeFS) exe(pid int32) (string, bool)        { return "", false }

func mustConvert(tb testing.TB, c *converter, b []byte) ring.Record {
	tb.Helper()
	var ev rawEvent
	require.NoError(tb, decodeEvent(b, &ev))
	var out [2]ring.Record
	require.Equal(tb, 1, c.convert(&ev, &out))
	return out[0]
}

func TestRelativePathsAreResolvedAgainstTheTrackedCwdOrTheDirfd(t *testing.T) {
	fs := fakeFS{
		fds:  map[[2]int32]string{{10, 5}: "/srv/data"},
		cwds: map[int32]string{10: "/home/u"},
	}
	c := newConverter(fs)
	ev := func(op ring.Op, dfd int32, flags uint32, strs ...string) []byte {
		return sample(typeEvent, uint16(op), 10, dfd, flags, strs...)
	}
	for _, s := range []struct {
		name   string
		sample []byte
		path   string
		path2  string
		access uint8
		rflags uint16
	}{
		{"an absolute path is kept as passed", ev(ring.OpOpenat, atFDCWD, 0, "/etc//passwd"), "/etc//passwd", "", ring.AccessRead, 0},
		{"a relative path joins the cwd", ev(ring.OpOpenat, atFDCWD, 0x241, "out.txt"), "/home/u/out.txt", "", ring.AccessWrite, 0},
		{"dot-dot is cleaned", ev(ring.OpOpenat, atFDCWD, 0, "../v/x"), "/home/v/x", "", ring.AccessRead, 0},
		{"a dirfd-relative path joins the fd's directory", ev(ring.OpOpenat, 5, 0, "f"), "/srv/data/f", "", ring.AccessRead, 0},
		{"an unknown dirfd leaves the path relative and flagged", ev(ring.OpOpenat, 9, 0, "f"), "f", "", ring.AccessRead, ring.RFUnresolved},
		{"both paths of a rename are resolved", ev(ring.OpRename, atFDCWD, 0, "a", "/b"), "/home/u/a", "/b", ring.AccessWrite, 0},
		{"chdir moves the cwd for later calls", ev(ring.OpChdir, atFDCWD, 0, "sub"), "/home/u/sub", "", ring.AccessNone, 0},
		{"a path after chdir uses the new cwd", ev(ring.OpMkdir, atFDCWD, 0, "d"), "/home/u/sub/d", "", ring.AccessWrite, 0},
		{"O_APPEND alone is a write", ev(ring.OpOpen, atFDCWD, 0x401, "/log"), "/log", "", ring.AccessWrite, 0},
		{"creat is a write", ev(ring.OpCreat, atFDCWD, 0x241, "/c"), "/c", "", ring.AccessWrite, 0},
		{"the kernel's base wins over the tracked cwd", ev(ring.OpOpenat, atFDCWD, 0, "k", "", "/kernel/cwd"), "/kernel/cwd/k", "", ring.AccessRead, 0},
		{"the kernel's base of a dirfd needs no /proc", ev(ring.OpUnlinkat, 42, 0, "z", "", "/gone/dir"), "/gone/dir/z", "", ring.AccessWrite, 0},
		{"each path of a rename has its own base", ev(ring.OpRenameat, 7, 0, "a", "b", "/d1", "/d2"), "/d1/a", "/d2/b", ring.AccessWrite, 0},
		{"fchdir names the kernel's base", ev(ring.OpFchdir, 3, 0, "", "", "/srv/new"), "/srv/new", "", ring.AccessNone, 0},
		{"and later relative paths without a base use it", ev(ring.OpOpenat, atFDCWD, 0, "f"), "/srv/new/f", "", ring.AccessRead, 0},
	} {
		t.Run(s.name, func(t *testing.T) {
			r := mustConvert(t, c, s.sample)
			assert.Equal(t, s.path, string(r.Str1))
			assert.Equal(t, s.path2, string(r.Str2))
			assert.Equal(t, s.access, r.Access)
			assert.Equal(t, s.rflags, r.RFlags)
			assert.Equal(t, uint8(ring.TypeEvent), r.Type)
		})
	}
}

func TestAChildInheritsItsParentsCwdAndExecSetsItsExe(t *testing.T) {
	c := newConverter(fakeFS{cwds: map[int32]string{10: "/w"}})
	fork := sample(typeProc, uint16(ring.OpProcFork), 11, atFDCWD, 0)
	fork[20] = 10 // ppid
	r := mustConvert(t, c, fork)
	assert.Equal(t, "/w", string(r.Str2))

	exec := sample(typeProc, uint16(ring.OpProcExec), 11, atFDCWD, 0, "./tool", "/w", "./tool\x00-v\x00")
	r = mustConvert(t, c, exec)
	assert.Equal(t, "/w/tool", string(r.Str1))
	assert.Equal(t, "/w", string(r.Str2))
	assert.Equal(t, []string{"./tool", "-v"}, r.Argv())

	moved := sample(typeProc, uint16(ring.OpProcExec), 11, atFDCWD, 0, "./tool", "/elsewhere", "./tool\x00")
	r = mustConvert(t, c, moved)
	assert.Equal(t, "/elsewhere/tool", string(r.Str1), "the kernel's cwd at exec wins over the tracked one")

	exit := sample(typeProc, uint16(ring.OpProcExit), 11, atFDCWD, 0)
	r = mustConvert(t, c, exit)
	assert.Equal(t, "/elsewhere/tool", string(r.Str1))
	assert.NotContains(t, c.procs, int32(11), "an exited process is forgotten")
}

func TestChildrenOfAFollowOnlyRootAreReportedFromTheirFirstRecordOn(t *testing.T) {
	c := newConverter(fakeFS{cwds: map[int32]string{1: "/w"}})
	c.followRoot = 1
	convert := func(b []byte) []ring.Record {
		var ev rawEvent
		require.NoError(t, decodeEvent(b, &ev))
		var out [2]ring.Record
		return out[:c.convert(&ev, &out)]
	}
	fork := func(pid int32) []byte {
		b := sample(typeProc, uint16(ring.OpProcFork), pid, atFDCWD, 0)
		b[20] = 1 // ppid: the root
		return b
	}
	assert.Empty(t, convert(fork(2)), "a child's fork is held back")
	assert.Empty(t, convert(sample(typeProc, uint16(ring.OpProcExit), 2, atFDCWD, 0)),
		"a child that exits without a record of its own (a runtime probe) is never reported")

	assert.Empty(t, convert(fork(3)))
	recs := convert(sample(typeEvent, uint16(ring.OpExecve), 3, atFDCWD, 0, "/bin/app"))
	require.Len(t, recs, 2, "the workload's first record brings its fork along")
	assert.Equal(t, ring.OpProcFork, recs[0].Op)
	assert.Equal(t, "/w", string(recs[0].Str2))
	assert.Equal(t, ring.OpExecve, recs[1].Op)
	assert.Len(t, convert(sample(typeProc, uint16(ring.OpProcExit), 3, atFDCWD, 0)), 1)
}

func TestATruncatedArgvKeepsOnlyWholeArguments(t *testing.T) {
	c := newConverter(fakeFS{})
	b := sample(typeProc, uint16(ring.OpProcExec), 5, atFDCWD, 0, "/bin/x", "", "x\x00--long\x00abc")
	b[10] = efArgvTruncated
	r := mustConvert(t, c, b)
	assert.Equal(t, []string{"x", "--long"}, r.Argv())
	assert.Equal(t, uint16(ring.RFArgvTruncated), r.RFlags&ring.RFArgvTruncated)
}
