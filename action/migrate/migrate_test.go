package migrate_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/action/internal/tracetest"
	"github.com/restrack/restrack/action/migrate"
	"github.com/restrack/restrack/internal/ctest"
	"github.com/restrack/restrack/planner"
)

func TestQuoteSurvivesTheShell(t *testing.T) {
	for _, s := range []string{"plain/path.txt", "with space", "it's", "new\nline", "bad\xffbyte", "$HOME `x` \"q\" \\", "", "-dash"} {
		t.Run(fmt.Sprintf("%q comes back byte for byte", s), func(t *testing.T) {
			out, err := exec.Command("bash", "-c", "printf %s "+migrate.Quote(s)).Output()
			require.NoError(t, err)
			assert.Equal(t, s, string(out))
		})
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		name, in string
		want     migrate.Target
		err      string
	}{
		{"an absolute directory is a local root", "/srv/new", migrate.Target{Root: "/srv/new"}, ""},
		{"host:root goes over ssh", "db2:/srv/new", migrate.Target{Host: "db2", Root: "/srv/new"}, ""},
		{"user@host: alone means the remote /", "root@db2:", migrate.Target{Host: "root@db2", Root: "/"}, ""},
		{"a remote root must be absolute", "db2:srv", migrate.Target{}, "absolute"},
		{"the host's own / is refused", "/", migrate.Target{}, "not a migration"},
		{"nothing is an error", "", migrate.Target{}, "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := migrate.ParseTarget(tt.in)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// emit builds and prints the script for a plan.
func emit(t *testing.T, pl *planner.Plan, tr *planner.Trace, target migrate.Target, restart string) string {
	t.Helper()
	s, err := migrate.Build(migrate.Options{Plan: pl, Trace: tr, Target: target, Restart: restart, StopTimeout: 5 * time.Second,
		CRIU: migrate.CheckCRIU(context.Background())})
	require.NoError(t, err)
	var b bytes.Buffer
	require.NoError(t, s.Write(&b))
	return b.String()
}

func TestStopOrderDependentsFirst(t *testing.T) {
	// A service writes a log a shipper reads, and serves a socket a client
	// connects to; all three run. Moving the client brings the service,
	// which brings the shipper.
	tr := &planner.Trace{
		Processes: []planner.Process{
			{Key: planner.ProcKey{PID: 1, StartNs: 1e7}, Exe: "/bin/sh"},
			{Key: planner.ProcKey{PID: 10, StartNs: 2e7}, PPID: 1, Parent: planner.ProcKey{PID: 1, StartNs: 1e7}, Exe: "/srv/service", Argv: []string{"service"}},
			{Key: planner.ProcKey{PID: 20, StartNs: 3e7}, PPID: 1, Parent: planner.ProcKey{PID: 1, StartNs: 1e7}, Exe: "/srv/shipper", Argv: []string{"shipper"}},
			{Key: planner.ProcKey{PID: 30, StartNs: 4e7}, PPID: 1, Parent: planner.ProcKey{PID: 1, StartNs: 1e7}, Exe: "/srv/client", Argv: []string{"client"}},
		},
		Accesses: []planner.Access{
			{Proc: planner.ProcKey{PID: 10, StartNs: 2e7}, Path: "/srv/log", Op: "openat", Write: true, Count: 1},
			{Proc: planner.ProcKey{PID: 20, StartNs: 3e7}, Path: "/srv/log", Op: "openat", Count: 1},
			{Proc: planner.ProcKey{PID: 10, StartNs: 2e7}, Path: "/srv/app.sock", Op: "bind", Write: true, Count: 1},
			{Proc: planner.ProcKey{PID: 30, StartNs: 4e7}, Path: "/srv/app.sock", Op: "connect", Count: 1},
		},
	}
	pl, err := planner.Compute(tr, planner.Options{AP: planner.ProcKey{PID: 30, StartNs: 4e7}})
	require.NoError(t, err)
	script := emit(t, pl, tr, migrate.Target{Root: "/srv/target"}, "live")
	stopAt := func(ap int) int { return strings.Index(script, fmt.Sprintf("\nstop_ap %d ", ap)) }
	startAt := func(ap int) int { return strings.Index(script, fmt.Sprintf("\nstart_ap %d ", ap)) }
	for _, ap := range []int{10, 20, 30} {
		require.Positive(t, stopAt(ap), "AP %d is stopped:\n%s", ap, script)
		require.Positive(t, startAt(ap), "AP %d is started", ap)
	}
	assert.Less(t, stopAt(20), stopAt(10), "the shipper reads the service's log: it stops first")
	assert.Less(t, stopAt(30), stopAt(10), "the client connects to the service's socket: it stops first")
	assert.Less(t, startAt(10), startAt(20), "the service starts before its reader")
	assert.Less(t, startAt(10), startAt(30), "and before its client")
	assert.Contains(t, script, "not moved, its process makes it again (socket): /srv/app.sock")
}

// demoDir lays out the demo workload's state (scripts/demo/demo.sh does the same).
func demoDir(t *testing.T) string {
	d := t.TempDir()
	for _, sub := range []string{"srv/etc", "srv/log", "srv/db", "ship", "work", "batch", "pids"} {
		require.NoError(t, os.MkdirAll(filepath.Join(d, sub), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(d, "srv/etc/app.conf"), []byte("port=8080\nworkers=2\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(d, "batch/input.txt"), []byte("3\n1\n2\n"), 0o644))
	out, err := exec.Command("sqlite3", filepath.Join(d, "srv/db/app.db"), "CREATE TABLE requests(id INTEGER PRIMARY KEY, path TEXT);").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return d
}

func TestMigrateDemoShipper(t *testing.T) {
	demo := demoDir(t)
	workload := filepath.Join(ctest.RepoRoot(t), "scripts", "demo", "workload.sh")
	storeDir := tracetest.Run(t, demo, workload, demo)
	shipper := tracetest.WaitFile(t, filepath.Join(demo, "pids", "shipper"))
	tr, pl := tracetest.Plan(t, storeDir, shipper)
	target := filepath.Join(t.TempDir(), "target")

	t.Run("the emitted script passes bash -n and shellcheck", func(t *testing.T) {
		script := emit(t, pl, tr, migrate.Target{Root: target}, "all")
		file := filepath.Join(t.TempDir(), "migrate.sh")
		require.NoError(t, os.WriteFile(file, []byte(script), 0o755))
		out, err := exec.Command("bash", "-n", file).CombinedOutput()
		require.NoError(t, err, "%s", out)
		out, err = exec.Command("shellcheck", file).CombinedOutput()
		require.NoError(t, err, "shellcheck:\n%s", out)
		assert.Contains(t, script, "criu", "the script says what CRIU can or cannot do here")
	})
	t.Run("an ssh target's script passes too", func(t *testing.T) {
		script := emit(t, pl, tr, migrate.Target{Host: "app@db2", Root: "/srv/new"}, "all")
		file := filepath.Join(t.TempDir(), "migrate.sh")
		require.NoError(t, os.WriteFile(file, []byte(script), 0o755))
		out, err := exec.Command("shellcheck", file).CombinedOutput()
		require.NoError(t, err, "shellcheck:\n%s", out)
		assert.Contains(t, script, `"$HOST:$ROOT/"`)
	})
	t.Run("migrate moves the shipper's plan into a target root and starts it there", func(t *testing.T) {
		require.Equal(t, 0, os.Geteuid(), "starting APs chrooted in the target root needs root: run the tests as root (CI does)")
		s, err := migrate.Build(migrate.Options{Plan: pl, Trace: tr, Target: migrate.Target{Root: target}, Restart: "all"})
		require.NoError(t, err)
		var out bytes.Buffer
		require.NoError(t, s.Run(context.Background(), &out, &out), "%s", out.String())
		shipped := filepath.Join(target, demo, "ship", "shipped.log")
		before, err := os.ReadFile(shipped)
		require.NoError(t, err, "the shipper's file moved:\n%s", out.String())
		orig, _ := os.ReadFile(filepath.Join(demo, "ship", "shipped.log"))
		assert.Equal(t, orig, before[:min(len(before), len(orig))], "it moved with its content")
		// The restarted shipper appends to its file in the target root.
		deadline := time.Now().Add(20 * time.Second)
		for {
			now, _ := os.ReadFile(shipped)
			if len(now) > len(orig) {
				break
			}
			if time.Now().After(deadline) {
				logs, _ := exec.Command("sh", "-c", "cat "+migrate.Quote(filepath.Join(target, "var/log/restrack-migrate"))+"/*").CombinedOutput()
				t.Fatalf("the restarted shipper wrote nothing in the target within 20s:\n%s\nlogs:\n%s", out.String(), logs)
			}
			time.Sleep(100 * time.Millisecond)
		}
		now, _ := os.ReadFile(filepath.Join(demo, "ship", "shipped.log"))
		assert.Equal(t, orig, now, "the source's copy is untouched: the restarted AP writes in its root")
		waitQuiet(t, target)
	})
}

// waitQuiet waits for the processes started in the target root to finish
// (the demo's APs end on their own), so the test leaves nothing running.
func waitQuiet(t *testing.T, root string) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if len(inRoot(root)) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, pid := range inRoot(root) {
		_ = exec.Command("kill", "-9", strconv.Itoa(pid)).Run()
	}
}

// inRoot lists the processes whose root directory is root.
func inRoot(root string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if r, err := os.Readlink("/proc/" + e.Name() + "/root"); err == nil && r == root {
			out = append(out, pid)
		}
	}
	return out
}

// TestMigrateLiveAP: a live AP is stopped at the source, its files move,
// and it runs again in the target root with its recorded argv and cwd.
func TestMigrateLiveAP(t *testing.T) {
	require.Equal(t, 0, os.Geteuid(), "starting APs chrooted in the target root needs root: run the tests as root (CI does)")
	dir, pid, tr, pl := liveLoop(t)
	target := filepath.Join(t.TempDir(), "target")
	t.Cleanup(func() {
		for _, p := range inRoot(target) {
			_ = exec.Command("kill", "-9", strconv.Itoa(p)).Run()
		}
	})

	s, err := migrate.Build(migrate.Options{Plan: pl, Trace: tr, Target: migrate.Target{Root: target}, StopTimeout: 5 * time.Second})
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, s.Run(context.Background(), &out, &out), "%s", out.String())
	assert.True(t, gone(pid), "the source process is stopped:\n%s", out.String())
	ticks := filepath.Join(target, dir, "ticks")
	first, err := os.ReadFile(ticks)
	require.NoError(t, err, "its file moved")
	deadline := time.Now().Add(10 * time.Second)
	for {
		now, _ := os.ReadFile(ticks)
		if len(now) > len(first) {
			break
		}
		require.True(t, time.Now().Before(deadline), "the restarted loop writes in the target root:\n%s", out.String())
		time.Sleep(50 * time.Millisecond)
	}
	var loop int
	for _, p := range inRoot(target) {
		if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p)); bytes.Contains(cmd, []byte("loop.sh")) {
			loop = p
		}
	}
	require.NotZero(t, loop, "the loop runs chrooted in the target")
	cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", loop))
	assert.Equal(t, filepath.Join(target, dir), cwd, "in its recorded cwd")
}

// liveLoop traces a shell that leaves a loop running, appending to
// DIR/ticks from DIR/loop.sh: a live AP, planned from the trace's root.
func liveLoop(t *testing.T) (dir, pid string, tr *planner.Trace, pl *planner.Plan) {
	dir = t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "loop.sh"), []byte("while :; do echo tick >> \"$1\"; sleep 0.05; done\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "start.sh"), []byte(
		"bash loop.sh \"$PWD/ticks\" </dev/null >/dev/null 2>&1 &\necho $! > loop.pid\n"+
			// Wait until the loop wrote once: its records are then in the trace.
			"while [ ! -s ticks ]; do sleep 0.01; done\n"), 0o644))
	storeDir := tracetest.Run(t, dir, "bash", "start.sh")
	pid = tracetest.WaitFile(t, filepath.Join(dir, "loop.pid"))
	t.Cleanup(func() { _ = exec.Command("kill", "-9", pid).Run() })
	tr = tracetest.Load(t, storeDir)
	_, pl = tracetest.Plan(t, storeDir, fmt.Sprint(tracetest.Root(t, tr)))
	require.NotEmpty(t, pl.LiveAPs, "the loop runs: %+v", pl.MoveProcesses)
	return dir, pid, tr, pl
}

// gone: no such process, or only its zombie (its parent has not reaped it).
func gone(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0] == "Z"
}
