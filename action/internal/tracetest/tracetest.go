// Package tracetest traces real workloads for the action packages' tests:
// it builds restrack and the shim the way make does, runs a command under
// `restrack run`, and plans from the store it wrote. Tests only.
package tracetest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/internal/ctest"
	"github.com/restrack/restrack/planner"
)

var buildOnce sync.Once
var buildErr error
var buildOut []byte

// Build makes build/restrack and build/librestrack.so (quick when make
// test built them already) and returns build/.
func Build(tb testing.TB) string {
	tb.Helper()
	root := ctest.RepoRoot(tb)
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		buildOut, buildErr = exec.CommandContext(ctx, "make", "-s", "-C", root, "build/restrack", "build/librestrack.so").CombinedOutput()
	})
	require.NoError(tb, buildErr, "make build/restrack build/librestrack.so:\n%s", buildOut)
	return filepath.Join(root, "build")
}

// Run traces argv under `restrack run` into a new store and returns it.
func Run(tb testing.TB, dir string, argv ...string) (storeDir string) {
	tb.Helper()
	build := Build(tb)
	storeDir = filepath.Join(tb.TempDir(), "store")
	// --no-wait: a test may leave a process running on purpose (a live AP).
	cmd := exec.Command(filepath.Join(build, "restrack"), append([]string{"run", "--no-wait", "--store", storeDir, "--"}, argv...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(tb, err, "restrack run %v:\n%s", argv, out)
	return storeDir
}

// Root is the traced command's own process: the earliest one without a
// traced parent.
func Root(tb testing.TB, tr *planner.Trace) int32 {
	tb.Helper()
	var best *planner.Process
	for i := range tr.Processes {
		p := &tr.Processes[i]
		if p.Parent == (planner.ProcKey{}) && (best == nil || p.Key.StartNs < best.Key.StartNs) {
			best = p
		}
	}
	require.NotNil(tb, best, "the trace holds no process")
	return best.Key.PID
}

// Load reads a store's trace.
func Load(tb testing.TB, storeDir string) *planner.Trace {
	tb.Helper()
	s, err := store.Open(storeDir, store.Options{ReadOnly: true})
	require.NoError(tb, err)
	defer s.Close()
	tr, err := s.Trace(context.Background())
	require.NoError(tb, err)
	return tr
}

// Plan loads the store and plans the move of spec, checked against this host.
func Plan(tb testing.TB, storeDir, spec string) (*planner.Trace, *planner.Plan) {
	tb.Helper()
	tr := Load(tb, storeDir)
	key, err := planner.Resolve(tr, spec)
	require.NoError(tb, err)
	pl, err := planner.Compute(tr, planner.Options{AP: key})
	require.NoError(tb, err)
	pl.Enrich(planner.LocalHost{})
	return tr, pl
}

// WaitFile waits until path exists with content, for a background process
// that writes its pid.
func WaitFile(tb testing.TB, path string) string {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return strings.TrimSpace(string(b))
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatalf("%s did not appear within 20s", path)
	return ""
}
