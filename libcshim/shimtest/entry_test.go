//go:build linux

package shimtest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/ring"
)

const (
	R = ring.AccessRead
	W = ring.AccessWrite
	N = ring.AccessNone
	L = ring.AccessLookup
)

// want is the expected record of one CALL line: path and path2 relative to
// the work directory (or absolute when they start with '/'), and access.
// path "*" matches any path (names chosen at random by the call).
type want struct {
	path, path2 string
	access      uint8
}

func (te *traceEnv) abs(p string) string {
	if p == "" || p == "*" || strings.HasPrefix(p, "/") {
		return p
	}
	if strings.HasPrefix(p, "=") {
		return p[1:] // verbatim: a symlink's target
	}
	return te.dir + "/" + p // not Join: the shim keeps ".." (symlinks)
}

// checkProbe runs probe CASE traced and untraced, requires the same
// observable behaviour (return values, errno, output), and matches every
// CALL line with the next file event of the probe process: same op, same
// result, and the wanted path(s) and access.
func checkProbe(t *testing.T, name string, wants []want) []event {
	t.Helper()
	te := newTrace(t, ring.Config{})
	p := probe(t)
	res := te.run(p, name, te.dir)
	require.NoError(t, res.err, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	plain := runUntraced(t, p, name, "@DIR")
	require.NoError(t, plain.err, plain.stderr)
	assert.Equal(t, comparable(plain.stdout), comparable(res.stdout), "the shim changed what the program saw")

	evs := te.drain()
	assert.Zero(t, te.reader.Counters().ProducerErrors, "every path resolved")
	calls := parseCalls(t, res.stdout)
	require.Len(t, calls, len(wants), "probe output:\n%s", res.stdout)
	got := afterBegin(fileEvents(evs, res.pid))
	require.Len(t, got, len(calls), "records:\n%s\nprobe output:\n%s", dump(got), res.stdout)
	for i, c := range calls {
		e, w := got[i], wants[i]
		assert.Equal(t, c.op, e.Op, "call %d", i)
		assert.Equal(t, c.result, e.Result, "call %d (%s): result", i, c.op)
		if w.path != "*" {
			assert.Equal(t, te.abs(w.path), e.Path, "call %d (%s): path", i, c.op)
		} else {
			assert.True(t, strings.HasPrefix(e.Path, "/"), "call %d (%s): absolute path, got %q", i, c.op, e.Path)
		}
		assert.Equal(t, te.abs(w.path2), e.Path2, "call %d (%s): path2", i, c.op)
		assert.Equal(t, w.access, e.Access, "call %d (%s): access", i, c.op)
		assert.Equal(t, int32(res.pid), e.PID, "call %d: pid", i)
		assert.NotZero(t, e.TID, "call %d: tid", i)
		assert.NotZero(t, e.StartNs, "call %d: start time", i)
		assert.NotZero(t, e.TimeNs, "call %d: timestamp", i)
	}
	return evs
}

func TestEveryEntryPointIsRecordedWithItsResultPathAndAccess(t *testing.T) {
	tmpfileDir := "/tmp"
	for _, tc := range []struct {
		name  string
		wants []want
	}{
		{"open", []want{{path: "a.txt", access: W}, {path: "a.txt", access: R}, {path: "missing/none", access: R}, {path: "a.txt", access: W}}},
		{"openat", []want{{path: "sub/b.txt", access: W}, {path: "sub/b.txt", access: R}, {path: "sub/b.txt", access: W}, {path: "sub/nope", access: R}}},
		{"creat", []want{{path: "c.txt", access: W}, {path: "c64.txt", access: W}, {path: "nodir/c.txt", access: W}}},
		{"fortify", []want{{path: "f.txt", access: R}, {path: "f.txt", access: W}, {path: "sub/..", access: R}, {path: "missing", access: R}}},
		{"stdio", []want{{path: "s.txt", access: W}, {path: "s.txt", access: R}, {path: "s.txt", access: W}, {path: "s.txt", access: R}, {path: "/nonexistent/x", access: R}, {path: "missing.txt", access: R}}},
		{"tmp", []want{{path: "*", access: W}, {path: "*", access: W}, {path: "*", access: W}, {path: "*", access: W}, {path: "*", access: W}, {path: "*", access: W}, {path: "*", access: W}, {path: "*", access: W}, {path: "*", access: W}, {path: "*", access: W}, {path: "*", access: W}, {path: "noXs", access: W}}},
		{"opendir", []want{{path: "dd", access: R}, {path: "nodir", access: R}}},
		{"namespace", []want{
			{path: "n1", path2: "n2", access: W},
			{path: "n2", path2: "nd/n3", access: W},
			{path: "nd/n3", path2: "n4", access: W},
			{path: "n4", path2: "n5", access: W},
			{path: "n5", path2: "nd/n6", access: W},
			{path: "s1", path2: "=n4", access: W}, // symlink: str2 is the target as written
			{path: "nd/s2", path2: "=../n4", access: W},
			{path: "s1", access: W},
			{path: "nd/s2", access: W},
			{path: "n5", access: W},
			{path: "m1", access: W},
			{path: "nd/m2", access: W},
			{path: "m1", access: W},
			{path: "nd/m2", access: W},
			{path: "ff", access: W},
			{path: "nd/ff2", access: W},
			{path: "nod", access: W},
			{path: "nd/nod2", access: W},
			{path: "n4", access: W},
			{path: "n4", access: W},
			{path: "missing", path2: "x", access: W},
			{path: "missing", access: W},
		}},
		{"syscall", []want{{path: "o2", access: W}, {path: "missing", access: R}, {path: "o2", path2: "o3", access: W}}},
		{"chdir", []want{{path: "cd1", access: N}, {path: "cd1/x", access: W}, {path: "cd2", access: N}, {path: "cd2/y", access: W}, {path: "cd2/nonexistent", access: N}}},
		{"ipc", []want{{path: "sock", access: W}, {path: "sock", access: W}, {path: "*", access: W}, {path: "*", access: W}, {path: "*", access: W}, {path: "*", access: W}}},
		{"lookup", []want{{path: "l.txt", access: L}, {path: "ln", access: L}, {path: "ld", access: L}, {path: "/", access: L},
			{path: "missing", access: L}, {path: "l.txt", access: L}, {path: "ld/../l.txt", access: L}, {path: "ln", access: L},
			{path: "l.txt", access: L}, {path: "l.txt", access: L}, {path: "appears", access: L}, {path: "appears", access: W},
			{path: "appears", access: L}}},
		{"sem", []want{{path: "*", access: W}, {path: "*", access: W}, {path: "*", access: W}, {path: "*", access: W}}},
		{"dlopen", []want{{path: "/lib/x86_64-linux-gnu/libm.so.6", access: R}, {path: "nolib.so", access: R},
			{path: "/lib/x86_64-linux-gnu/libm.so.6", access: R}, {path: "=libdoesnotexist.so", access: R}}},
		{"execfail", []want{{path: "not-there", access: R}, {path: "not-there", access: R}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs := checkProbe(t, tc.name, tc.wants)
			if tc.name == "tmp" {
				// tmpfile() lives in /tmp (an O_TMPFILE file: "/tmp/#N (deleted)").
				for _, e := range evs {
					if e.Op == "tmpfile" || e.Op == "tmpfile64" {
						assert.True(t, strings.HasPrefix(e.Path, tmpfileDir+"/"), e.String())
					}
				}
			}
			if tc.name == "sem" {
				// glibc keeps "/NAME" in /dev/shm/sem.NAME: that file is the tie.
				sems := filter(evs, func(e event) bool { return strings.HasPrefix(e.Op, "sem_") })
				require.Len(t, sems, 4, dump(evs))
				for _, e := range sems {
					assert.Regexp(t, `^/dev/shm/sem\.rt-probe-(no)?sem-\d+$`, e.Path, e.String())
				}
			}
			if tc.name == "ipc" {
				for _, e := range evs {
					switch e.Op {
					case "shm_open", "shm_unlink":
						assert.True(t, strings.HasPrefix(e.Path, "/dev/shm/rt-probe-"), e.String())
					case "mq_open", "mq_unlink":
						assert.True(t, strings.HasPrefix(e.Path, "/dev/mqueue/rt-probe-"), e.String())
					}
				}
			}
		})
	}
}

func TestAPathWhoseBaseCannotBeNamedIsKeptAsGivenFlaggedAndCounted(t *testing.T) {
	te := newTrace(t, ring.Config{})
	res := te.run(probe(t), "unresolved", te.dir)
	require.NoError(t, res.err, res.stderr)
	calls := parseCalls(t, res.stdout)
	require.Len(t, calls, 1)
	got := afterBegin(fileEvents(te.drain(), res.pid))
	require.Len(t, got, 1)
	assert.Equal(t, "openat", got[0].Op)
	assert.Equal(t, calls[0].result, got[0].Result)
	assert.Equal(t, "x", got[0].Path, "never guessed, never cut")
	assert.NotZero(t, got[0].RFlags&ring.RFUnresolved)
	assert.Equal(t, uint64(1), te.reader.Counters().ProducerErrors, "the shim counts what it could not resolve")
}
