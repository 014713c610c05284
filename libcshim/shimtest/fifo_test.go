//go:build linux

package shimtest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/ring"
	"github.com/restrack/restrack/ring/fifo"
)

// fifoEnv runs programs with the shim in FIFO mode.
type fifoEnv struct {
	dir, fifo, shim string
}

func newFIFO(t *testing.T) *fifoEnv {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	fe := &fifoEnv{dir: filepath.Join(base, "work"), fifo: filepath.Join(base, "fifo"), shim: shim(t)}
	require.NoError(t, os.Mkdir(fe.dir, 0o755))
	require.NoError(t, fifo.Create(fe.fifo))
	return fe
}

func (fe *fifoEnv) run(t *testing.T, extra []string, name string, args ...string) runResult {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = fe.dir
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "LD_PRELOAD=") && !strings.HasPrefix(e, "RESTRACK_") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, "LD_PRELOAD="+fe.shim, "RESTRACK_MODE=fifo", "RESTRACK_FIFO="+fe.fifo)
	cmd.Env = append(cmd.Env, extra...)
	return runCmd(t, cmd)
}

// readAll takes every record already in the pipe. The traced program has
// exited and its writes were synchronous, so they are all there; the
// deadline only ends the wait on the now-empty pipe.
func readAll(t *testing.T, r *fifo.Reader) []event {
	t.Helper()
	var evs []event
	var rec ring.Record
	for {
		require.NoError(t, r.SetDeadline(time.Now().Add(200*time.Millisecond)))
		err := r.Next(&rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return evs
		}
		require.NoError(t, err)
		evs = append(evs, event{Type: rec.Type, Access: rec.Access, Op: rec.Op.String(), RFlags: rec.RFlags,
			PID: rec.PID, TID: rec.TID, PPID: rec.PPID, Result: rec.Result, Flags: rec.Flags, Mode: rec.Mode,
			StartNs: rec.StartNs, TimeNs: rec.TimeNs, Path: string(rec.Str1), Path2: string(rec.Str2), Str3: string(rec.Str3)})
	}
}

func TestFIFOModeRecordsTheSameCallsAsTheRing(t *testing.T) {
	fe := newFIFO(t)
	r, err := fifo.Open(fe.fifo)
	require.NoError(t, err)
	defer r.Close()
	res := fe.run(t, nil, probe(t), "namespace", fe.dir)
	require.NoError(t, res.err, res.stderr)
	evs := readAll(t, r)
	calls := parseCalls(t, res.stdout)
	got := afterBegin(fileEvents(evs, res.pid))
	require.Len(t, got, len(calls), dump(got))
	for i, c := range calls {
		assert.Equal(t, c.op, got[i].Op)
		assert.Equal(t, c.result, got[i].Result)
		assert.Equal(t, uint8(W), got[i].Access)
	}
	assert.Equal(t, fe.dir+"/n1", got[0].Path)
	assert.Equal(t, fe.dir+"/n2", got[0].Path2)
	st := requireProc(t, evs, int32(res.pid), "proc_start")
	assert.Equal(t, []string{probe(t), "namespace", fe.dir}, argv(st))
}

func TestFIFOModeFollowsForkAndExec(t *testing.T) {
	fe := newFIFO(t)
	r, err := fifo.Open(fe.fifo)
	require.NoError(t, err)
	defer r.Close()
	res := fe.run(t, nil, probe(t), "exec:execv", fe.dir)
	require.NoError(t, res.err, res.stderr)
	requireChildrenOK(t, res.stdout)
	evs := readAll(t, r)
	ex := filter(evs, func(e event) bool { return e.Op == "execv" })
	require.Len(t, ex, 1, dump(evs))
	requireProc(t, evs, ex[0].PID, "proc_exec")
}

func TestFIFOModeWithoutAReaderLeavesTheProgramAlone(t *testing.T) {
	fe := newFIFO(t) // nobody has the pipe open: the shim stays off
	p := probe(t)
	res := fe.run(t, nil, p, "errno", fe.dir)
	require.NoError(t, res.err)
	plain := runUntraced(t, p, "errno", "@DIR")
	assert.Equal(t, comparable(plain.stdout), comparable(res.stdout))
}

func TestFIFOModeSurvivesItsReaderDying(t *testing.T) {
	fe := newFIFO(t)
	r, err := fifo.Open(fe.fifo)
	require.NoError(t, err)
	// The program attaches while the reader is alive; the reader then goes
	// away for good. Writes must neither kill it (SIGPIPE) nor block it:
	// the pipe fills, each write waits its bounded time and drops.
	done := make(chan runResult, 1)
	go func() {
		done <- fe.run(t, []string{"RESTRACK_FULL_WAIT_US=10"}, probe(t), "spin", fe.dir, "20000")
	}()
	var rec ring.Record
	require.NoError(t, r.SetDeadline(time.Now().Add(30*time.Second)))
	require.NoError(t, r.Next(&rec), "the program attached and wrote")
	require.NoError(t, r.Close())
	res := <-done
	require.NoError(t, res.err, res.stderr)
	assert.Contains(t, res.stdout, "spin done")
}
