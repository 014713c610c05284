package planner_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/planner"
)

// pgBin finds Debian's versioned PostgreSQL binaries.
func pgBin(t *testing.T) string {
	t.Helper()
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(m) == 0 {
		t.Fatal("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl): run scripts/setup-debian.sh")
	}
	return filepath.Dir(m[len(m)-1])
}

// freePort is a TCP port the kernel just handed out on 127.0.0.1: never a
// fixed one (PostgreSQL cannot take port 0, it names its socket after it).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestPsqlOverTCPBringsThePostgreSQLServer: a private PostgreSQL (initdb in
// a temporary directory, as nobody since it refuses root, on a free port)
// and psql -h 127.0.0.1 are traced together; the plan for psql brings the
// server, through its port.
func TestPsqlOverTCPBringsThePostgreSQLServer(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: this test builds the binaries and runs PostgreSQL")
	}
	bin := pgBin(t)
	build := mustBuild(t, repoRoot(t))
	dir, err := os.MkdirTemp("", "restrack-net-pg-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		const nobody = 65534
		cred = &syscall.Credential{Uid: nobody, Gid: nobody}
		require.NoError(t, os.Chown(dir, nobody, nobody))
		require.NoError(t, os.Chmod(dir, 0o755))
	}
	run := func(name string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC", "HOME="+dir, "XDG_CONFIG_HOME="+dir)
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s %v:\n%s", name, args, out)
		return out
	}
	data := filepath.Join(dir, "data")
	run(filepath.Join(bin, "initdb"), "-D", data, "-U", "restrack", "--auth=trust", "-E", "UTF8", "--no-sync")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sock"), 0o755))
	if cred != nil {
		require.NoError(t, os.Chown(filepath.Join(dir, "sock"), int(cred.Uid), int(cred.Gid)))
	}
	port := strconv.Itoa(freePort(t))
	script := `bin="$1"; d="$2"; port="$3"
"$bin/pg_ctl" -D "$d/data" -l "$d/log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $d/sock -c fsync=off -c max_connections=10" start || exit 1
sh -c 'echo $$ > "$1/psql.pid"; exec "$2/psql" -h 127.0.0.1 -p "$3" -U restrack -d postgres -Atc "select 42"' sh "$d" "$bin" "$port"
rc=$?
head -1 "$d/data/postmaster.pid" > "$d/server.pid"
"$bin/pg_ctl" -D "$d/data" -m fast -w -t 60 stop
exit $rc`
	storeDir := filepath.Join(dir, "store")
	defer func() {
		// Never leave a server behind, whatever failed.
		stop := exec.Command(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop")
		if cred != nil {
			stop.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		_ = stop.Run()
	}()
	out := run(filepath.Join(build, "restrack"), "run", "--store", storeDir, "--", "sh", "-c", script, "sh", bin, dir, port)
	assert.Contains(t, string(out), "42", "psql got its answer over TCP")
	psql, server := readPIDFile(t, filepath.Join(dir, "psql.pid")), readPIDFile(t, filepath.Join(dir, "server.pid"))

	pl := planJSON(t, build, storeDir, psql)
	require.True(t, movingPIDs(pl)[server], "the plan of psql brings the PostgreSQL server it reached over TCP: %+v", pl.APs)
	ep := "tcp://127.0.0.1:" + port
	var via string
	for _, a := range pl.APs {
		if containsPID(a.Processes, server) && a.Cause != nil {
			via = a.Cause.Via + " " + a.Cause.Path
		}
	}
	assert.Equal(t, "port "+ep, via, "pulled in through the port")
	found := false
	for _, l := range pl.ListenEndpoints {
		if l.Endpoint == ep {
			found = true
			for _, c := range l.Clients {
				if c.PID == psql {
					assert.True(t, c.Moving)
				}
			}
		}
	}
	assert.True(t, found, "the server's port is a listen endpoint of the plan: %+v", pl.ListenEndpoints)
	assert.False(t, strings.Contains(strings.Join(movedPaths(pl), " "), "tcp://"), "an endpoint is never a file")
}

func movedPaths(pl planner.Plan) []string {
	var out []string
	for _, f := range pl.MoveFiles {
		out = append(out, f.Path)
	}
	return out
}
