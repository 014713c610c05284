package planner_test

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/planner"
)

// planJSON runs `restrack plan --json` for ap on a store.
func planJSON(t *testing.T, build, storeDir string, ap int32, extra ...string) planner.Plan {
	t.Helper()
	cmd := exec.Command(filepath.Join(build, "restrack"), append([]string{"plan", "--store", storeDir, "--ap", strconv.Itoa(int(ap)), "--json"}, extra...)...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
	out, err := cmd.Output()
	var stderr string
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = string(ee.Stderr)
	}
	require.NoError(t, err, "restrack plan: %s", stderr)
	var pl planner.Plan
	require.NoError(t, json.Unmarshal(out, &pl))
	return pl
}

func readPIDFile(t *testing.T, path string) int32 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return int32(n)
}

func movingPIDs(pl planner.Plan) map[int32]bool {
	m := map[int32]bool{}
	for _, p := range pl.MoveProcesses {
		m[p.PID] = true
	}
	return m
}

// TestTwoClientsOfAnUntracedDaemonStayApart: two unrelated traced programs
// talk to a D-Bus-like socket that an untraced process (this test) bound.
// Neither brings the other (issue 11 §5), and the socket is listed as one
// the host provides.
func TestTwoClientsOfAnUntracedDaemonStayApart(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: this test builds the binaries and traces real processes")
	}
	python := mustLookPath(t, "python3")
	build := mustBuild(t, repoRoot(t))
	dir := t.TempDir()
	sock := filepath.Join(dir, "bus.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("x"))
			c.Close()
		}
	}()
	client := `import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.recv(1)
open(sys.argv[2], "w").write(str(os.getpid()))
`
	script := filepath.Join(dir, "client.py")
	require.NoError(t, os.WriteFile(script, []byte(client), 0o644))
	storeDir := filepath.Join(dir, "store")
	out, err := exec.Command(filepath.Join(build, "restrack"), "run", "--store", storeDir, "--",
		"sh", "-c", `"$0" "$1" "$2" "$3.a" & "$0" "$1" "$2" "$3.b" & wait`, python, script, sock, filepath.Join(dir, "pid")).CombinedOutput()
	require.NoError(t, err, "restrack run:\n%s", out)
	a, b := readPIDFile(t, filepath.Join(dir, "pid.a")), readPIDFile(t, filepath.Join(dir, "pid.b"))

	pl := planJSON(t, build, storeDir, a)
	assert.False(t, movingPIDs(pl)[b], "the other client of the daemon must stay: %+v", pl.APs)
	var hosts []string
	for _, h := range pl.HostSockets {
		hosts = append(hosts, h.Path)
	}
	assert.Contains(t, hosts, sock, "the daemon's socket is listed as the host's")
	for _, f := range pl.MoveFiles {
		assert.NotEqual(t, sock, f.Path, "a host daemon's socket never moves")
	}
}

func mustLookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	require.NoError(t, err, "%s is required (sudo ./scripts/setup-debian.sh)", name)
	return p
}
