//go:build linux

package shimtest

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/ring"
)

func argv(e event) []string { return strings.Split(e.Str3, "\x00") }

// procsOf returns the process records of pid, in order.
func procsOf(evs []event, pid int32) []event {
	return filter(evs, func(e event) bool { return e.isProc() && e.PID == pid })
}

func requireProc(t *testing.T, evs []event, pid int32, op string) event {
	t.Helper()
	for _, e := range procsOf(evs, pid) {
		if e.Op == op {
			return e
		}
	}
	t.Fatalf("no %s record for pid %d in:\n%s", op, pid, dump(evs))
	return event{}
}

func TestAProcessRecordIsWrittenAtStartWithIdentityExeArgvAndCwd(t *testing.T) {
	te := newTrace(t, ring.Config{})
	p := probe(t)
	res := te.run(p, "exit0", te.dir)
	require.NoError(t, res.err)
	evs := te.drain()
	start := requireProc(t, evs, int32(res.pid), "proc_start")
	assert.Equal(t, p, start.Path, "exe")
	assert.Equal(t, te.dir, start.Path2, "cwd at start")
	assert.Equal(t, []string{p, "exit0", te.dir}, argv(start))
	assert.Equal(t, int32(os.Getpid()), start.PPID)
	// start_ns is /proc/PID/stat starttime in ns: a positive multiple of
	// the clock tick, at most now since boot.
	assert.NotZero(t, start.StartNs)
	assert.Zero(t, start.StartNs%uint64(10_000_000), "start time is a multiple of 1/CLK_TCK (100 Hz)")
	// The proc record comes first, and every event carries the same identity.
	first := filter(evs, func(e event) bool { return e.PID == int32(res.pid) })[0]
	assert.Equal(t, "proc_start", first.Op)
	for _, e := range filter(evs, func(e event) bool { return e.PID == int32(res.pid) }) {
		assert.Equal(t, start.StartNs, e.StartNs, e.String())
		assert.Equal(t, start.PPID, e.PPID, e.String())
	}
	// The libraries mapped before the shim ran are reads.
	loaded := filter(evs, func(e event) bool { return e.Op == "loaded" })
	var libc bool
	for _, e := range loaded {
		assert.Equal(t, uint8(R), e.Access)
		assert.True(t, strings.HasPrefix(e.Path, "/"), e.Path)
		libc = libc || strings.Contains(e.Path, "libc.so")
	}
	assert.True(t, libc, "libc among the loaded libraries:\n%s", dump(loaded))
}

var childExitRE = regexp.MustCompile(`child exit (\d+)`)

func requireChildrenOK(t *testing.T, stdout string) {
	t.Helper()
	m := childExitRE.FindAllStringSubmatch(stdout, -1)
	require.NotEmpty(t, m, stdout)
	for _, x := range m {
		require.Equal(t, "0", x[1], stdout)
	}
}

func TestEveryExecVariantRecordsTheBinaryAndTheNewImageSaysExec(t *testing.T) {
	for _, op := range []string{"execve", "execv", "execvp", "execvpe", "execl", "execlp", "execle", "fexecve", "execveat"} {
		t.Run(op, func(t *testing.T) {
			te := newTrace(t, ring.Config{})
			p := probe(t)
			res := te.run(p, "exec:"+op, te.dir)
			require.NoError(t, res.err, res.stderr)
			requireChildrenOK(t, res.stdout)
			evs := te.drain()
			// The forked child: PROC_FORK, then the exec event, then the
			// new image's PROC_EXEC with the same pid.
			execs := filter(evs, func(e event) bool { return e.Op == op })
			require.Len(t, execs, 1, dump(evs))
			ex := execs[0]
			assert.Equal(t, p, ex.Path)
			assert.Equal(t, uint8(R), ex.Access)
			assert.Zero(t, ex.Result)
			child := ex.PID
			assert.NotEqual(t, int32(res.pid), child)
			fork := requireProc(t, evs, child, "proc_fork")
			assert.Equal(t, int32(res.pid), fork.PPID)
			after := requireProc(t, evs, child, "proc_exec")
			assert.Equal(t, int32(res.pid), after.PPID)
			assert.Equal(t, fork.StartNs, after.StartNs, "exec keeps the process start time")
			assert.Equal(t, p, after.Path)
			assert.Equal(t, []string{p, "exit0", te.dir}, argv(after))
			assert.Empty(t, procsOf(filter(evs, func(e event) bool { return e.Op == "proc_start" }), child), "an exec is not a fresh start")
			assert.Less(t, ex.TimeNs, after.TimeNs)
		})
	}
}

func TestPosixSpawnRecordsTheBinaryAndTheChildPid(t *testing.T) {
	te := newTrace(t, ring.Config{})
	p := probe(t)
	res := te.run(p, "spawn", te.dir)
	require.NoError(t, res.err, res.stderr)
	requireChildrenOK(t, res.stdout)
	evs := te.drain()
	calls := parseCalls(t, res.stdout)
	require.Len(t, calls, 2)
	got := afterBegin(fileEvents(evs, res.pid))
	require.Len(t, got, 2, dump(got))
	assert.Equal(t, "posix_spawn", got[0].Op)
	assert.Equal(t, p, got[0].Path)
	assert.Equal(t, calls[0].result, got[0].Result, "result is the child pid")
	assert.Equal(t, "posix_spawnp", got[1].Op)
	truePath, err := exec.LookPath("true") // the same PATH search, from the same PATH
	require.NoError(t, err)
	assert.Equal(t, truePath, got[1].Path, "PATH search resolved the name")
	assert.Equal(t, calls[1].result, got[1].Result)
	// A spawned child is a new process: PROC_START with us as parent.
	st := requireProc(t, evs, calls[0].result, "proc_start")
	assert.Equal(t, int32(res.pid), st.PPID)
	st2 := requireProc(t, evs, calls[1].result, "proc_start")
	assert.Equal(t, int32(res.pid), st2.PPID)
}

func pidFromLine(t *testing.T, stdout, prefix string) int32 {
	t.Helper()
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, prefix+" ") {
			f := strings.Fields(line)
			v, err := strconv.Atoi(f[1])
			require.NoError(t, err)
			return int32(v)
		}
	}
	t.Fatalf("no %q line in %s", prefix, stdout)
	return 0
}

func TestForkWithoutExecGivesTheChildItsOwnIdentity(t *testing.T) {
	te := newTrace(t, ring.Config{})
	p := probe(t)
	res := te.run(p, "fork", te.dir)
	require.NoError(t, res.err, res.stderr)
	requireChildrenOK(t, res.stdout)
	child := pidFromLine(t, res.stdout, "FORK")
	evs := te.drain()
	parentStart := requireProc(t, evs, int32(res.pid), "proc_start")
	fk := requireProc(t, evs, child, "proc_fork")
	assert.Equal(t, int32(res.pid), fk.PPID)
	assert.Equal(t, p, fk.Path)
	assert.Equal(t, te.dir, fk.Path2)
	assert.GreaterOrEqual(t, fk.StartNs, parentStart.StartNs)
	forks := filter(evs, func(e event) bool { return e.Op == "fork" })
	require.Len(t, forks, 1)
	assert.Equal(t, int32(res.pid), forks[0].PID)
	assert.Equal(t, child, forks[0].Result)
	opens := fileEvents(evs, int(child))
	require.Len(t, opens, 1, dump(evs))
	assert.Equal(t, te.dir+"/child.txt", opens[0].Path)
	assert.Equal(t, child, opens[0].TID, "the child's tid is its own, not the parent's cached one")
	assert.Equal(t, int32(res.pid), opens[0].PPID)
	assert.Equal(t, fk.StartNs, opens[0].StartNs)
}

func TestVforkThenExecWorksAndTheChildIsTraced(t *testing.T) {
	te := newTrace(t, ring.Config{})
	p := probe(t)
	res := te.run(p, "vfork", te.dir)
	require.NoError(t, res.err, res.stderr)
	requireChildrenOK(t, res.stdout)
	assert.Contains(t, res.stdout, "shared=1", "vfork semantics kept: the child shares the parent's memory")
	child := pidFromLine(t, res.stdout, "VFORK")
	evs := te.drain()
	vf := filter(evs, func(e event) bool { return e.Op == "vfork" })
	require.Len(t, vf, 1)
	assert.Equal(t, int32(res.pid), vf[0].PID)
	ex := filter(evs, func(e event) bool { return e.Op == "execve" })
	require.Len(t, ex, 1, dump(evs))
	assert.Equal(t, child, ex[0].PID, "recorded with the vfork child's pid, not the parent's")
	assert.Equal(t, child, ex[0].TID)
	assert.Equal(t, int32(res.pid), ex[0].PPID)
	after := requireProc(t, evs, child, "proc_exec")
	assert.Equal(t, int32(res.pid), after.PPID)
	// The parent's own identity is untouched by the child.
	parent := filter(evs, func(e event) bool { return e.PID == int32(res.pid) && e.Op == "chdir" })
	require.NotEmpty(t, parent)
}

func TestCloneWithoutVMAnnouncesTheChild(t *testing.T) {
	te := newTrace(t, ring.Config{})
	p := probe(t)
	res := te.run(p, "clone", te.dir)
	require.NoError(t, res.err, res.stderr)
	requireChildrenOK(t, res.stdout)
	child := pidFromLine(t, res.stdout, "CLONE")
	evs := te.drain()
	cl := filter(evs, func(e event) bool { return e.Op == "clone" })
	require.Len(t, cl, 1)
	assert.Equal(t, child, cl[0].Result)
	fk := requireProc(t, evs, child, "proc_fork")
	assert.Equal(t, int32(res.pid), fk.PPID)
	opens := fileEvents(evs, int(child))
	require.Len(t, opens, 1, dump(evs))
	assert.Equal(t, te.dir+"/cloned.txt", opens[0].Path)
	assert.Equal(t, child, opens[0].TID)
}

func TestSystemAndPopenRecordTheShellAndTheirChildrenAreTraced(t *testing.T) {
	te := newTrace(t, ring.Config{})
	p := probe(t)
	res := te.run(p, "shell", te.dir)
	require.NoError(t, res.err, res.stderr)
	evs := te.drain()
	got := afterBegin(fileEvents(evs, res.pid))
	require.Len(t, got, 2, dump(got))
	cmd := fmt.Sprintf("%s exit0 %s", p, te.dir)
	for i, op := range []string{"system", "popen"} {
		assert.Equal(t, op, got[i].Op)
		assert.Equal(t, "/bin/sh", got[i].Path)
		assert.Equal(t, cmd, got[i].Str3)
		assert.Equal(t, uint8(R), got[i].Access)
	}
	assert.Zero(t, got[0].Result, "system's exit status")
	// Both shells (children of the probe) and the probes they ran are
	// traced: dash execs the last command, so each shell's pid ends as the
	// probe (proc_exec) — or forks it, depending on the shell.
	var shells, probes int
	for _, e := range procEvents(evs) {
		if e.Op == "proc_start" && e.PPID == int32(res.pid) {
			shells++
		}
		if (e.Op == "proc_exec" || e.Op == "proc_start") && e.Path == p && e.PID != int32(res.pid) {
			probes++
			assert.Equal(t, []string{p, "exit0", te.dir}, argv(e))
		}
	}
	assert.Equal(t, 2, shells, dump(procEvents(evs)))
	assert.Equal(t, 2, probes, dump(procEvents(evs)))
}

func TestAProgramThatClearsItsEnvironmentStillHasTracedChildren(t *testing.T) {
	te := newTrace(t, ring.Config{})
	p := probe(t)
	res := te.run(p, "clearenv", te.dir)
	require.NoError(t, res.err, res.stderr)
	requireChildrenOK(t, res.stdout)
	// The children saw the contract variables (and no marker) …
	assert.Contains(t, res.stdout, "system 0\n")
	assert.Contains(t, res.stdout, "popen child: ENV LD_PRELOAD="+te.shim+"\n")
	assert.Contains(t, res.stdout, "popen child: ENV RESTRACK_RING="+te.ring+"\n")
	assert.NotContains(t, res.stdout, "EXEC_FROM")
	assert.Contains(t, res.stdout, "environ empty 1\n", "the program's own environment stays as it made it")
	// … and were traced: two exec children, and for system and popen a
	// shell started by the probe that runs the probe again.
	evs := te.drain()
	var execs, shells, shellKids int
	shellPids := map[int32]bool{}
	for _, e := range procEvents(evs) {
		if e.Op == "proc_exec" && e.PPID == int32(res.pid) && e.Path == p {
			execs++
		}
		if e.Op == "proc_start" && e.PPID == int32(res.pid) {
			shells++
			shellPids[e.PID] = true
		}
	}
	for _, e := range procEvents(evs) {
		if e.Path == p && (shellPids[e.PPID] || shellPids[e.PID]) && e.PID != int32(res.pid) {
			shellKids++
		}
	}
	assert.Equal(t, 2, execs, "execv after clearenv and execve with an empty envp:\n%s", dump(procEvents(evs)))
	assert.Equal(t, 2, shells, "the shells of system and popen:\n%s", dump(procEvents(evs)))
	assert.Equal(t, 2, shellKids, "the probe each shell ran:\n%s", dump(procEvents(evs)))
	for _, e := range procEvents(evs) {
		assert.Zero(t, e.RFlags&ring.RFPreInit, "made by the constructor, not before it: %s", e)
	}
}

func TestTheNextImageSeesTheContractVariablesButNotTheExecMarker(t *testing.T) {
	te := newTrace(t, ring.Config{})
	p := probe(t)
	// env -i clears everything and execs the probe: the shim re-inserts
	// LD_PRELOAD and RESTRACK_RING, and removes its own one-shot marker
	// before main.
	res := te.run("/usr/bin/env", "-i", p, "env", te.dir)
	require.NoError(t, res.err, res.stderr)
	assert.Equal(t, fmt.Sprintf("ENV LD_PRELOAD=%s\nENV RESTRACK_RING=%s\n", te.shim, te.ring), res.stdout)
	evs := te.drain()
	assert.NotEmpty(t, requireProc(t, evs, int32(res.pid), "proc_exec"))
}

func TestEachProcessRecordsOneExitWithItsStatusAndAVforkChildNeverSpeaksForItsParent(t *testing.T) {
	te := newTrace(t, ring.Config{})
	res := te.run(probe(t), "exits", te.dir)
	require.NoError(t, res.err)
	var pids [5]int32
	_, err := fmt.Sscanf(res.stdout[strings.Index(res.stdout, "EXITS"):], "EXITS %d %d %d %d %d", &pids[0], &pids[1], &pids[2], &pids[3], &pids[4])
	require.NoError(t, err, res.stdout)
	assert.Equal(t, 5, strings.Count(res.stdout, "STATUS"), res.stdout)
	assert.Contains(t, res.stdout, "STATUS 3\nSTATUS 4\nSTATUS 5\nSTATUS 0\nSTATUS 6\n", "the hooks exit exactly as asked")
	evs := te.drain()
	exits := func(pid int32) []event {
		return filter(procsOf(evs, pid), func(e event) bool { return e.Op == "proc_exit" })
	}
	for i, want := range []int32{3, 4, 5, 0} {
		got := exits(pids[i])
		require.Len(t, got, 1, "child %d (pid %d):\n%s", i, pids[i], dump(procsOf(evs, pids[i])))
		assert.Equal(t, want, got[0].Result, "exit status of child %d", i)
	}
	parent := exits(int32(res.pid))
	require.Len(t, parent, 1, "the vfork child's _exit is not the parent's:\n%s", dump(procsOf(evs, int32(res.pid))))
	all := filter(evs, func(e event) bool { return e.PID == int32(res.pid) })
	assert.Equal(t, "proc_exit", all[len(all)-1].Op, "the parent's exit is its last record")
	assert.Empty(t, exits(pids[4]), "a vfork child carries its parent's identity: it records no exit")
}
