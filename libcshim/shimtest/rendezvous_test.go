//go:build linux

package shimtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/collector"
	"github.com/restrack/restrack/ring"
)

// The rendezvous (docs/shim.md, docs/collector.md): a process with nothing
// but the shim preloaded finds the collector at its socket and gets the
// ring of its own uid.

// rdvEnv is a rendezvous server on a private socket and ring directory,
// and a copy of the shim every uid can load.
type rdvEnv struct {
	t       *testing.T
	dir     string // world-searchable: the socket and the shim live here
	sock    string
	ringDir string
	shim    string
	rv      *collector.Rendezvous
	stop    func()
}

// publicDir is a directory every uid can enter and read (t.TempDir is
// private to the test's uid).
func publicDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "restrack-shimtest-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(d) })
	require.NoError(t, os.Chmod(d, 0o755))
	d, err = filepath.EvalSymlinks(d)
	require.NoError(t, err)
	return d
}

func newRendezvous(t *testing.T, cfg collector.RendezvousConfig) *rdvEnv {
	t.Helper()
	dir := publicDir(t)
	shimCopy := filepath.Join(dir, "librestrack.so")
	b, err := os.ReadFile(shim(t))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(shimCopy, b, 0o755))
	cfg.Socket = filepath.Join(dir, "collector.sock")
	cfg.RingDir = filepath.Join(dir, "rings")
	if cfg.RingSize == 0 {
		cfg.RingSize = ring.MinDataSize * 4
	}
	var mu sync.Mutex
	var logs []string
	cfg.Logf = func(f string, a ...any) {
		mu.Lock()
		logs = append(logs, fmt.Sprintf(f, a...))
		mu.Unlock()
	}
	rv, err := collector.ListenRendezvous(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rv.Serve(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		require.NoError(t, <-done)
	})
	t.Cleanup(stop)
	return &rdvEnv{t: t, dir: dir, sock: cfg.Socket, ringDir: cfg.RingDir, shim: shimCopy, rv: rv, stop: stop}
}

// env is the environment of a traced process: the test's, minus anything
// of restrack's, plus the shim and the socket only.
func (e *rdvEnv) env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LD_PRELOAD=") || strings.HasPrefix(kv, "RESTRACK_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "LD_PRELOAD="+e.shim, "RESTRACK_SOCKET="+e.sock)
	return append(env, extra...)
}

// runAs runs argv as uid (its primary group) in e.dir.
func (e *rdvEnv) runAs(uid, gid uint32, env []string, argv ...string) runResult {
	e.t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = e.dir
	cmd.Env = env
	if uid != 0 || gid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	}
	return runCmd(e.t, cmd)
}

// ringEvents drains uid's ring in the ring directory (nil if it has none).
func (e *rdvEnv) ringEvents(uid uint32) []event {
	e.t.Helper()
	path := filepath.Join(e.ringDir, "uid-"+strconv.FormatUint(uint64(uid), 10)+".ring")
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil
	}
	r, err := ring.Open(path, ring.Options{})
	require.NoError(e.t, err)
	defer r.Close()
	te := &traceEnv{t: e.t, reader: r, batch: ring.NewBatch(4096, 8<<20)}
	return te.drain()
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: processes of several uids")
	}
}

// lookupUser is a user that scripts/setup-debian.sh creates.
func lookupUser(t *testing.T, name string) (uint32, uint32) {
	t.Helper()
	u, err := user.Lookup(name)
	require.NoError(t, err, "user %s is missing: run scripts/setup-debian.sh", name)
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return uint32(uid), uint32(gid)
}

func opensOf(evs []event, path string) []event {
	return filter(evs, func(e event) bool { return !e.isProc() && e.Path == path })
}

func TestEveryUIDGetsItsOwnRingWithNoConfiguration(t *testing.T) {
	needRoot(t)
	e := newRendezvous(t, collector.RendezvousConfig{})
	testUID, testGID := lookupUser(t, "restrack-test")
	users := []struct {
		name     string
		uid, gid uint32
	}{
		{"root", 0, 0},
		{"nobody", 65534, 65534},
		{"restrack-test", testUID, testGID},
	}
	// A file only this uid's process opens: it must show in its ring and
	// in no other.
	for _, u := range users {
		marker := filepath.Join(e.dir, "marker-"+u.name)
		require.NoError(t, os.WriteFile(marker, []byte(u.name+"\n"), 0o644))
		res := e.runAs(u.uid, u.gid, e.env(), "/bin/cat", marker)
		require.NoError(t, res.err, res.stderr)
		assert.Equal(t, u.name+"\n", res.stdout, "the traced program's output is its own")
		assert.Empty(t, res.stderr, "the shim says nothing")
	}
	for _, u := range users {
		t.Run(u.name, func(t *testing.T) {
			path := filepath.Join(e.ringDir, "uid-"+strconv.FormatUint(uint64(u.uid), 10)+".ring")
			fi, err := os.Stat(path)
			require.NoError(t, err, "uid %d has a ring", u.uid)
			st := fi.Sys().(*syscall.Stat_t)
			assert.Equal(t, u.uid, st.Uid, "the ring belongs to its uid")
			assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "and to nobody else")
			evs := e.ringEvents(u.uid)
			for _, other := range users {
				got := opensOf(evs, filepath.Join(e.dir, "marker-"+other.name))
				if other.uid == u.uid {
					assert.Len(t, got, 1, "its own process's open is in its ring:\n%s", dump(evs))
				} else {
					assert.Empty(t, got, "uid %d's open is not in uid %d's ring", other.uid, u.uid)
				}
			}
			procs := procEvents(evs)
			require.NotEmpty(t, procs)
			for _, p := range procs {
				if p.Op != "proc_start" {
					continue
				}
				assert.Equal(t, "/usr/bin/cat", p.Path, "the collector told the shim its executable")
				assert.Equal(t, statStartNs(t, p), p.StartNs, "start_ns is /proc's")
			}
		})
	}
	for _, s := range e.rv.Stats() {
		assert.Zero(t, s.Untraced, "uid %d: every process got its ring", s.UID)
	}
}

// statStartNs is what /proc/PID/stat said for an exited process: we can
// only check it is tick-aligned and recent (the process is gone).
func statStartNs(t *testing.T, p event) uint64 {
	t.Helper()
	assert.NotZero(t, p.StartNs)
	assert.Zero(t, p.StartNs%10_000_000, "a whole number of clock ticks")
	return p.StartNs
}

func TestAProcessOfAnotherUIDIsRefusedAndCountedByANonRootCollector(t *testing.T) {
	needRoot(t)
	// This collector serves one uid only, as a non-root one does.
	only := uint32(12345)
	e := newRendezvous(t, collector.RendezvousConfig{OnlyUID: &only})
	res := e.runAs(65534, 65534, e.env(), "/bin/cat", "/etc/hostname")
	require.NoError(t, res.err)
	assert.Empty(t, res.stderr, "refused, the shim is still silent")
	want, err := os.ReadFile("/etc/hostname")
	require.NoError(t, err)
	assert.Equal(t, string(want), res.stdout)

	res = e.runAs(65534, 65534, e.env("RESTRACK_DEBUG=1"), "/bin/cat", "/etc/hostname")
	require.NoError(t, res.err)
	assert.Equal(t, string(want), res.stdout)
	assert.Contains(t, res.stderr, "not traced: the collector refused")
	assert.Contains(t, res.stderr, "run the collector as root", "RESTRACK_DEBUG=1 says why, with the remedy")
	assert.Equal(t, 1, strings.Count(res.stderr, "restrack:"), "once")

	_, err = os.Stat(filepath.Join(e.ringDir, "uid-65534.ring"))
	assert.True(t, os.IsNotExist(err), "no ring was made for a uid the collector cannot serve")
	w := e.rv.UntracedWarnings()
	require.Len(t, w, 1)
	assert.Contains(t, w[0], "2 processes of uid 65534 were not traced")
	assert.Contains(t, w[0], "run the collector as root")
}

func TestWithNoCollectorTheShimIsInertAndSilentUnlessAskedWhy(t *testing.T) {
	dir := publicDir(t)
	missing := filepath.Join(dir, "nobody-listens.sock")
	base := (&rdvEnv{shim: shim(t), sock: missing}).env()
	want, err := os.ReadFile("/etc/hostname")
	require.NoError(t, err)
	tests := []struct {
		name   string
		env    []string
		stderr string
	}{
		{"silent by default", base, ""},
		{"RESTRACK_DEBUG=1 says why, once", append(base, "RESTRACK_DEBUG=1"), "no collector is listening at the socket (" + missing + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("/bin/cat", "/etc/hostname")
			cmd.Env = tt.env
			res := runCmd(t, cmd)
			require.NoError(t, res.err)
			assert.Equal(t, string(want), res.stdout)
			if tt.stderr == "" {
				assert.Empty(t, res.stderr)
			} else {
				assert.Contains(t, res.stderr, tt.stderr)
				assert.Equal(t, 1, strings.Count(res.stderr, "\n"), "one line")
			}
		})
	}
}

func TestAStalledCollectorCostsAProcessStartHalfASecondAtMost(t *testing.T) {
	// A socket that accepts (the kernel does, from the backlog) and
	// never answers: a stopped collector.
	dir := publicDir(t)
	sock := filepath.Join(dir, "stalled.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer ln.Close()
	cmd := exec.Command("/bin/true")
	cmd.Env = (&rdvEnv{shim: shim(t), sock: sock}).env("RESTRACK_DEBUG=1")
	t0 := time.Now()
	res := runCmd(t, cmd)
	took := time.Since(t0)
	require.NoError(t, res.err)
	assert.Contains(t, res.stderr, "did not answer in time")
	assert.Less(t, took, 2*time.Second, "bounded by the shim's registration timeout")
}

func TestARendezvousClientThatNeverSpeaksDoesNotHoldUpShutdown(t *testing.T) {
	e := newRendezvous(t, collector.RendezvousConfig{})
	c, err := net.Dial("unix", e.sock)
	require.NoError(t, err)
	defer c.Close()
	done := make(chan struct{})
	go func() {
		e.stop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(500 * time.Millisecond):
		t.Fatal("Serve did not return at once with an idle client connected")
	}
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = io.ReadAll(c)
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the idle client was hung up on (%v)", err)
}

func registered(rv *collector.Rendezvous, uid uint32) uint64 {
	for _, s := range rv.Stats() {
		if s.UID == uid {
			return s.Registered
		}
	}
	return 0
}

func TestAnExecdProgramTakesTheRingItsParentLentItWithoutAskingTheCollector(t *testing.T) {
	e := newRendezvous(t, collector.RendezvousConfig{})
	marker := filepath.Join(e.dir, "marker")
	require.NoError(t, os.WriteFile(marker, []byte("x\n"), 0o644))
	uid := uint32(os.Geteuid())
	// sh forks and execs cat three times; exec replaces sh itself last.
	res := e.runAs(0, 0, e.env(), "/bin/sh", "-c", "cat "+marker+"; cat "+marker+"; exec cat "+marker)
	require.NoError(t, res.err, res.stderr)
	assert.Equal(t, "x\nx\nx\n", res.stdout)
	evs := e.ringEvents(uid)
	assert.Len(t, opensOf(evs, marker), 3, "every cat is traced:\n%s", dump(evs))
	assert.Equal(t, uint64(1), registered(e.rv, uid), "only sh asked the collector; each cat took the lent ring")
	for _, p := range procEvents(evs) {
		if p.Op == "proc_exec" {
			assert.NotZero(t, p.StartNs, "an exec'd image keeps its process's start time")
			assert.Equal(t, "/usr/bin/cat", p.Path)
		}
	}
}

func TestAProgramThatChangedUserBeforeExecAsksForItsOwnRing(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv")
	}
	e := newRendezvous(t, collector.RendezvousConfig{})
	marker := filepath.Join(e.dir, "marker")
	require.NoError(t, os.WriteFile(marker, []byte("x\n"), 0o644))
	// setpriv (root, traced) execs cat as nobody: the root ring it could
	// lend is not nobody's, so cat registers and writes into nobody's.
	res := e.runAs(0, 0, e.env(), "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/cat", marker)
	require.NoError(t, res.err, res.stderr)
	assert.Equal(t, "x\n", res.stdout)
	assert.Empty(t, opensOf(e.ringEvents(0), marker), "nobody's open is not in root's ring")
	assert.Len(t, opensOf(e.ringEvents(65534), marker), 1, "it is in nobody's")
	assert.Equal(t, uint64(1), registered(e.rv, 65534))
}
