package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/internal/usock"
	"github.com/restrack/restrack/planner/serve"
)

// mustDaemonSocket serves plan, explain and ps on a socket from the test
// store, held open for writing as a collector holds it.
func mustDaemonSocket(t *testing.T) string {
	t.Helper()
	st, err := store.Open(mustPlanStore(t), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	sockDir, err := os.MkdirTemp("", "rtcli") // socket paths are short
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	srv, err := usock.Listen(filepath.Join(sockDir, "s"))
	require.NoError(t, err)
	for name, h := range serve.Handlers() {
		srv.Handle(name, h(st))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv.Path()
}

func TestPlanExplainAndPSAskARunningCollector(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	sock := mustDaemonSocket(t)

	code, out, errOut := runCmd(planCmd, "--socket", sock, "--ap", "300", "--json")
	require.Equal(t, 0, code, errOut)
	var doc struct {
		MoveFiles []struct{ Path string } `json:"move_files"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	require.Len(t, doc.MoveFiles, 1)
	assert.Equal(t, "/srv/service.log", doc.MoveFiles[0].Path)

	code, out, errOut = runCmd(planCmd, "--socket", sock, "--ap", "300")
	require.Equal(t, 0, code, errOut)
	assert.True(t, strings.HasPrefix(out, "Migration plan for AP 300 (tail)"), out)

	code, out, errOut = runCmd(planCmd, "--socket", sock, "--ap", "300", "--dot")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "digraph restrack_plan {")

	code, out, errOut = runCmd(explainCmd, "--socket", sock, "--ap", "300", "--pid", "200", "--json")
	require.Equal(t, 0, code, errOut)
	var ex serve.ExplainResult
	require.NoError(t, json.Unmarshal([]byte(out), &ex))
	assert.Equal(t, "process 200 (service) moves: it is the root of AP 200.", ex.Lines[0])

	code, out, errOut = runCmd(psCmd, "--socket", sock, "--time", "mono")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "6 traced processes\n")

	code, _, errOut = runCmd(planCmd, "--socket", sock, "--ap", "4242")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "no process with pid 4242")

	code, _, errOut = runCmd(planCmd, "--socket", sock)
	assert.Equal(t, 2, code, "a missing --ap is a usage error before any question")
	assert.Contains(t, errOut, "--ap PID is required")
}

func TestTheDaemonAppliesTheClientsIgnoreFile(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	sock := mustDaemonSocket(t)
	rules := filepath.Join(t.TempDir(), "ignore")
	require.NoError(t, os.WriteFile(rules, []byte("# site rules\n/srv/app.conf\n"), 0o600))
	code, out, errOut := runCmd(planCmd, "--socket", sock, "--ap", "300", "--json", "--ignore-file", rules)
	require.Equal(t, 0, code, errOut)
	var doc struct {
		CopyFiles []struct{ Path string } `json:"copy_files"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	assert.Empty(t, doc.CopyFiles, "the config is ignored by the rules file the client read")
}

func TestExplainJSONFromTheStore(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	code, out, errOut := runCmd(explainCmd, "--store", mustPlanStore(t), "--ap", "300", "--file", "/srv/app.conf", "--json")
	require.Equal(t, 0, code, errOut)
	var ex serve.ExplainResult
	require.NoError(t, json.Unmarshal([]byte(out), &ex))
	assert.Equal(t, []string{
		"/srv/app.conf moves and a copy stays for AP 400: every AP that shares it only reads it (Model 1).",
		"AP 200 moves because it writes /srv/service.log, which AP 300 (moving) reads.",
		"AP 300 is the AP you asked to move.",
	}, ex.Lines)
}

func summaryCmd(args []string, o, e *bytes.Buffer) int { return runSummaryCmd(args, o, e) }

func TestSummaryCountsCallsByOpProcessAndFile(t *testing.T) {
	dir := mustPlanStore(t)
	code, out, errOut := runCmd(summaryCmd, "--store", dir, "--json")
	require.Equal(t, 0, code, errOut)
	var s summaryOut
	require.NoError(t, json.Unmarshal([]byte(out), &s))
	assert.Equal(t, uint64(6), s.Calls)
	assert.Equal(t, uint64(1), s.Failures)
	assert.Equal(t, summaryRow{Name: "openat", Calls: 5, Failures: 1, Writes: 1}, s.ByOp[0])
	assert.Equal(t, summaryRow{Name: "fopen", Calls: 1}, s.ByOp[1])
	assert.Equal(t, summaryRow{Name: "service", PID: 200, StartNs: 2000, Calls: 4, Failures: 1, Writes: 1}, s.ByProcess[0])
	assert.Equal(t, summaryRow{Name: "/srv/app.conf", Calls: 2, Procs: 2}, s.ByFile[0], "two processes read the config")

	code, out, errOut = runCmd(summaryCmd, "--store", dir, "--top", "1")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "6 calls on 4 paths by 6 processes, 1 failed")
	assert.Regexp(t, `(?m)^ 83\.33%\s+5\s+1\s+1  openat$`, out)
	assert.Contains(t, out, "PROCESS (top 1)")
	assert.NotContains(t, out, "tail", "--top 1 keeps the busiest process only")
}
