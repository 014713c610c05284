package planner_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/planner"
)

// repoRoot is the repository's top directory, found from this file.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(tb, ok)
	return filepath.Clean(filepath.Join(filepath.Dir(file), ".."))
}

// mustBuild runs make for the shim, the collector and the CLI, so the test
// uses the binaries the user would. It is quick when they are
// up to date (make test builds them first).
func mustBuild(tb testing.TB, root string) string {
	tb.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		tb.Fatalf("make is required to build the binaries this end-to-end test runs: %v (sudo ./scripts/setup-debian.sh)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Only what the test runs: a broken unrelated command must not fail it.
	targets := []string{"build/restrack", "build/collector", "build/librestrack.so"}
	out, err := exec.CommandContext(ctx, "make", append([]string{"-s", "-C", root}, targets...)...).CombinedOutput()
	require.NoError(tb, err, "make %v:\n%s", targets, out)
	return filepath.Join(root, "build")
}

// mustDemoDir lays out the demo workload's state in a fresh directory, as
// scripts/demo/demo.sh does before tracing.
func mustDemoDir(tb testing.TB) string {
	tb.Helper()
	if _, err := exec.LookPath("sqlite3"); err != nil {
		tb.Fatalf("the demo workload needs the sqlite3 CLI: %v (sudo ./scripts/setup-debian.sh)", err)
	}
	d := tb.TempDir()
	for _, sub := range []string{"srv/etc", "srv/log", "srv/db", "ship", "work", "batch", "pids"} {
		require.NoError(tb, os.MkdirAll(filepath.Join(d, sub), 0o755))
	}
	require.NoError(tb, os.WriteFile(filepath.Join(d, "srv/etc/app.conf"), []byte("port=8080\nworkers=2\n"), 0o644))
	require.NoError(tb, os.WriteFile(filepath.Join(d, "batch/input.txt"), []byte("3\n1\n2\n"), 0o644))
	out, err := exec.Command("sqlite3", filepath.Join(d, "srv/db/app.db"), "CREATE TABLE requests(id INTEGER PRIMARY KEY, path TEXT);").CombinedOutput()
	require.NoError(tb, err, "%s", out)
	return d
}

// traceWithDaemon traces the workload the long-running way (design §1): a
// collector daemon drains a ring, and the workload runs with the shim
// preloaded and pointed at that ring.
func traceWithDaemon(t *testing.T, build, workload, demo, storeDir string) {
	ringPath := fmt.Sprintf("/dev/shm/restrack-planner-e2e-%d-%d.ring", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() { os.Remove(ringPath) })
	coll := exec.Command(filepath.Join(build, "collector"), "-ring", ringPath, "-store", storeDir,
		"-drain-interval", "10ms", "-socket", "none", "-rendezvous", "none")
	stderr, err := coll.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, coll.Start())
	t.Cleanup(func() { _ = coll.Process.Kill(); _ = coll.Wait() })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var all strings.Builder
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "draining") {
				ready <- ""
			}
		}
		ready <- all.String()
	}()
	select {
	case msg := <-ready:
		require.Empty(t, msg, "the collector exited before draining:\n%s", msg)
	case <-time.After(30 * time.Second):
		t.Fatal("the collector did not start draining within 30s")
	}
	cmd := exec.Command(workload, demo)
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+filepath.Join(build, "librestrack.so"), "RESTRACK_RING="+ringPath)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "workload:\n%s", out)
	require.NoError(t, coll.Process.Signal(syscall.SIGTERM))
	require.NoError(t, coll.Wait(), "the collector must exit 0 on SIGTERM after a final drain")
}

func readPID(t *testing.T, demo, name string) int32 {
	b, err := os.ReadFile(filepath.Join(demo, "pids", name))
	require.NoError(t, err)
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return int32(n)
}

// traceWithRun traces the workload the one-shot way: restrack run.
func traceWithRun(t *testing.T, build, workload, demo, storeDir string) {
	out, err := exec.Command(filepath.Join(build, "restrack"), "run", "--store", storeDir, "--", workload, demo).CombinedOutput()
	require.NoError(t, err, "restrack run:\n%s", out)
}

// TestEndToEndDemoWorkload traces the demo's real workload with the real
// shim, both ways design §1 offers (restrack run, and a collector daemon
// with the shim preloaded), then checks the plan `restrack plan` prints
// for the log shipper: the service (it writes the log the shipper reads)
// and the janitor (it writes the database the service writes) move; the
// workers only read the config the service reads, so they stay with a
// copy; the batch job and the workload's shell stay.
func TestEndToEndDemoWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: this test builds the binaries and traces a 2-second workload twice")
	}
	root := repoRoot(t)
	build := mustBuild(t, root)
	for _, tc := range []struct {
		name  string
		trace func(t *testing.T, build, workload, demo, storeDir string)
	}{
		{"traced by restrack run", traceWithRun},
		{"traced by a collector daemon and LD_PRELOAD", traceWithDaemon},
	} {
		t.Run(tc.name, func(t *testing.T) {
			demo := mustDemoDir(t)
			storeDir := filepath.Join(t.TempDir(), "store")
			tc.trace(t, build, filepath.Join(root, "scripts/demo/workload.sh"), demo, storeDir)
			checkDemoPlan(t, build, demo, storeDir)
		})
	}
}

func checkDemoPlan(t *testing.T, build, demo, storeDir string) {
	shipper, service, janitor := readPID(t, demo, "shipper"), readPID(t, demo, "service"), readPID(t, demo, "janitor")
	workers, batch := readPID(t, demo, "workers"), readPID(t, demo, "batch")
	restrack := filepath.Join(build, "restrack")
	cmd := exec.Command(restrack, "plan", "--store", storeDir, "--ap", strconv.Itoa(int(shipper)), "--json")
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "restrack plan: %s", stderr.String())
	var pl planner.Plan
	require.NoError(t, json.Unmarshal(out, &pl))

	var roots []int32
	for _, a := range pl.APs {
		roots = append(roots, a.Root)
	}
	assert.ElementsMatch(t, []int32{shipper, service, janitor}, roots, "moving APs")
	moving := map[int32]bool{}
	for _, p := range pl.MoveProcesses {
		moving[p.PID] = true
	}
	for _, stays := range []int32{workers, batch} {
		assert.False(t, moving[stays], "AP %d shares nothing written with the plan", stays)
	}
	assert.Greater(t, len(pl.MoveProcesses), 10, "the moving APs' children (sqlite3, tail, grep, sleep…) move with them")

	paths := func(fs []planner.MoveFile) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Path)
		}
		return out
	}(pl.MoveFiles)
	real := func(p string) string { r, err := filepath.EvalSymlinks(p); require.NoError(t, err); return r }
	demoReal := real(demo)
	inDemo := func(rel string) string {
		// The shim records the path the program gave, made absolute.
		for _, p := range paths {
			if p == filepath.Join(demo, rel) || p == filepath.Join(demoReal, rel) {
				return p
			}
		}
		return ""
	}
	assert.NotEmpty(t, inDemo("srv/log/service.log"), "the log moves (Model 2); move_files: %v", paths)
	assert.NotEmpty(t, inDemo("srv/db/app.db"), "the database moves (Model 2); move_files: %v", paths)
	assert.NotEmpty(t, inDemo("ship/shipped.log"), "the shipper's own output moves; move_files: %v", paths)
	var conf *planner.CopyFile
	for i, f := range pl.CopyFiles {
		if strings.HasSuffix(f.Path, "/srv/etc/app.conf") {
			conf = &pl.CopyFiles[i]
		}
	}
	require.NotNil(t, conf, "the config is only read: it moves with a copy left behind (Model 1); copy_files: %+v", pl.CopyFiles)
	assert.Contains(t, conf.ForPIDs, workers, "the copy stays for the worker pool")
	assert.True(t, slices.ContainsFunc(pl.IgnoredFiles, func(p string) bool { return strings.HasPrefix(p, "/usr/bin/") || strings.Contains(p, "/lib") }),
		"host-provided programs and libraries are ignored and listed: %v", pl.IgnoredFiles)
	assert.False(t, slices.ContainsFunc(pl.IgnoredFiles, func(p string) bool { return strings.HasPrefix(p, demo) || strings.HasPrefix(p, demoReal) }))
	assert.False(t, pl.Incomplete, "no event may be lost on a workload this small (dropped %d)", pl.DroppedEvents)

	cmd = exec.Command(restrack, "explain", "--store", storeDir, "--ap", strconv.Itoa(int(shipper)), "--pid", strconv.Itoa(int(janitor)))
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Len(t, lines, 4, "process line, janitor ← service, service ← shipper, the requested AP:\n%s", out)
	assert.Contains(t, lines[1], fmt.Sprintf("AP %d moves because", janitor))
	assert.Contains(t, lines[1], "/srv/db/app.db")
	assert.Contains(t, lines[2], fmt.Sprintf("AP %d moves because", service))
	assert.Contains(t, lines[2], "/srv/log/service.log")
	assert.Equal(t, fmt.Sprintf("AP %d is the AP you asked to move.", shipper), lines[3])
}

// TestDemoScript runs `make demo`'s script against the built binaries, in
// a scratch build directory so it never touches the user's build/demo:
// the README's main job must keep working.
func TestDemoScript(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: this test builds the binaries and traces a 2-second workload")
	}
	root := repoRoot(t)
	build := mustBuild(t, root)
	scratch := t.TempDir()
	for _, f := range []string{"restrack", "librestrack.so"} {
		require.NoError(t, os.Symlink(filepath.Join(build, f), filepath.Join(scratch, f)))
	}
	cmd := exec.Command(filepath.Join(root, "scripts/demo/demo.sh"), scratch)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "demo.sh:\n%s", out)
	text := string(out)
	for _, want := range []string{
		"== 1. Tracing a workload of five applications",
		"Migration plan for AP ",
		"(Model 2): they all move",
		"Files that move with a copy left behind",
		"is the AP you asked to move.",
		"Reading the plan:",
	} {
		assert.Contains(t, text, want)
	}
	assert.NotContains(t, text, "\x1b", "no terminal escapes when the output is not a terminal")
	for _, f := range []string{"plan.txt", "plan.json", "plan.dot"} {
		fi, err := os.Stat(filepath.Join(scratch, "demo", f))
		require.NoError(t, err)
		assert.NotZero(t, fi.Size(), f)
	}
	if _, err := exec.LookPath("dot"); err == nil {
		svg, err := os.ReadFile(filepath.Join(scratch, "demo", "plan.svg"))
		require.NoError(t, err, "Graphviz is installed, so the demo renders plan.svg")
		assert.Contains(t, string(svg), "<svg")
	} else {
		assert.Contains(t, text, "install Graphviz to render it")
	}
}
