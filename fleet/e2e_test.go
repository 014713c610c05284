//go:build linux

package fleet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/internal/ctest"
	"github.com/restrack/restrack/internal/pgtest"
)

// relayEnv makes the test binary a byte pipe between its stdio and a unix
// socket: ssh's ProxyCommand inside a simulated host, whose network
// namespace has no route to the sshd, reaches it through the socket the
// test serves (a path, which network namespaces do not separate).
const relayEnv = "RESTRACK_FLEET_RELAY"

func TestMain(m *testing.M) {
	if sock := os.Getenv(relayEnv); sock != "" {
		c, err := net.Dial("unix", sock)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go func() { _, _ = io.Copy(c, os.Stdin); c.(*net.UnixConn).CloseWrite() }()
		_, _ = io.Copy(os.Stdout, c)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// sshExport is an sshd on loopback exporting dir over SFTP, reachable by
// the simulated hosts through relaySock.
type sshExport struct {
	dir, key, relaySock string
}

func startSSHExport(t *testing.T, base string) *sshExport {
	t.Helper()
	for _, tool := range []string{"/usr/sbin/sshd", "ssh", "ssh-keygen", "sshfs", "fusermount3", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			pgtest.Skip(t, fmt.Sprintf("%s is missing: the fleet test shares files over sshfs between namespaces", tool))
		}
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		pgtest.Skip(t, "no /dev/fuse: sshfs cannot mount")
	}
	if os.Geteuid() != 0 {
		pgtest.Skip(t, "not root: simulated hosts need mount and network namespaces (unshare -m -n)")
	}
	e := &sshExport{dir: filepath.Join(base, "export"), key: filepath.Join(base, "id"), relaySock: filepath.Join(base, "relay.sock")}
	require.NoError(t, os.MkdirAll(filepath.Join(e.dir, "shared"), 0o755))
	for _, k := range []string{filepath.Join(base, "hostkey"), e.key} {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	pub, err := os.ReadFile(e.key + ".pub")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(base, "authorized_keys"), pub, 0o600))
	// sshd refuses to start without its privilege-separation directory;
	// a package install creates it at boot, a container may lack it.
	require.NoError(t, os.MkdirAll("/run/sshd", 0o755))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := filepath.Join(base, "sshd_config")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf(`ListenAddress 127.0.0.1
Port %d
HostKey %s/hostkey
AuthorizedKeysFile %s/authorized_keys
PidFile %s/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
`, port, base, base, base)), 0o600))
	sshd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", conf)
	sshdLog, _ := os.Create(filepath.Join(base, "sshd.log"))
	sshd.Stdout, sshd.Stderr = sshdLog, sshdLog
	require.NoError(t, sshd.Start())
	t.Cleanup(func() { _ = sshd.Process.Kill(); _ = sshd.Wait() })
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "sshd did not listen; its log is %s/sshd.log", base)

	// The link between the hosts' namespaces and the sshd.
	rl, err := net.Listen("unix", e.relaySock)
	require.NoError(t, err)
	t.Cleanup(func() { rl.Close() })
	go func() {
		for {
			c, err := rl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
				if err != nil {
					return
				}
				defer s.Close()
				go func() { _, _ = io.Copy(s, c); s.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(c, s)
			}()
		}
	}()
	return e
}

// simHost runs script as one simulated host: its own mount and network
// namespaces, the export mounted with sshfs at mountPoint, its own tmpfs
// on localDir (the same path on every host, other files), then script.
func (e *sshExport) simHost(t *testing.T, mountPoint, localDir, script string) (string, error) {
	t.Helper()
	require.NoError(t, os.MkdirAll(mountPoint, 0o755))
	proxy := fmt.Sprintf("ProxyCommand=env %s=%s %s", relayEnv, e.relaySock, os.Args[0])
	wrapper := fmt.Sprintf(`set -e
ip link set lo up 2>/dev/null || true
sshfs -o %q -o IdentityFile=%s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR root@127.0.0.1:%s %s
trap 'fusermount3 -u %s' EXIT
mount -t tmpfs tmpfs %s
%s
`, proxy, e.key, e.dir, mountPoint, mountPoint, localDir, script)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "unshare", "--mount", "--net", "--propagation", "private", "sh", "-c", wrapper).CombinedOutput()
	return string(out), err
}

func mustBuild(t *testing.T) string {
	t.Helper()
	root := ctest.RepoRoot(t)
	out, err := exec.Command("make", "-s", "-C", root, "build/restrack", "build/librestrack.so").CombinedOutput()
	require.NoError(t, err, "make: %s", out)
	return filepath.Join(root, "build")
}

// TestFleetPlanAcrossSimulatedHostsSharingAnSSHFSExport: three hosts in
// their own namespaces share one sshfs export, mounted at a different place
// on each. alpha's service appends to a log on it, beta's shipper reads the
// log and a config, gamma's report reads the config. Each traces with
// restrack run --publish. PostgreSQL is down while gamma publishes; restrack
// publish pushes gamma's backlog once it is back. The plan for beta's
// shipper pulls alpha's service in (Model 2, across hosts through the
// export) and leaves a copy of the config for gamma (Model 1).
func TestFleetPlanAcrossSimulatedHostsSharingAnSSHFSExport(t *testing.T) {
	base, err := os.MkdirTemp("", "restrack-fleet-e2e-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	exp := startSSHExport(t, base)
	pg := pgtest.Start(t)
	bin := mustBuild(t)
	restrack := filepath.Join(bin, "restrack")
	require.NoError(t, os.WriteFile(filepath.Join(exp.dir, "shared", "cfg"), []byte("level=2\n"), 0o644))
	local := filepath.Join(base, "local")
	require.NoError(t, os.MkdirAll(local, 0o755))

	hosts := []struct{ name, mount, work string }{
		{"alpha", filepath.Join(base, "alpha", "mnt", "a"), `echo started >> $M/shared/log; echo state > ` + local + `/state; echo served >> $M/shared/log`},
		{"beta", filepath.Join(base, "beta", "data"), `cat $M/shared/log > /dev/null; cat $M/shared/cfg > /dev/null; echo b > ` + local + `/state`},
		{"gamma", filepath.Join(base, "gamma", "srv"), `cat $M/shared/cfg > /dev/null; echo g > ` + local + `/state`},
	}
	pids := map[string]string{}
	for _, h := range hosts {
		storeDir := filepath.Join(base, h.name, "store")
		if h.name == "gamma" {
			pg.Stop()
		}
		script := fmt.Sprintf(`%s run --store %s --publish %q --host-id %s --publish-timeout 10s -- sh -c 'echo $$ > %s/%s.pid; M=%s; %s'`,
			restrack, storeDir, pg.DSN(), h.name, base, h.name, h.mount, h.work)
		out, err := exp.simHost(t, h.mount, local, script)
		if h.name == "gamma" {
			require.Error(t, err, "gamma's trace could not be published: run says so\n%s", out)
			assert.Contains(t, out, "restrack publish --store "+storeDir)
			pg.StartAgain()
			pout, perr := exec.Command(restrack, "publish", "--store", storeDir, "--publish", pg.DSN(), "--host-id", "gamma").CombinedOutput()
			require.NoError(t, perr, "%s", pout)
		} else {
			require.NoError(t, err, "host %s:\n%s", h.name, out)
		}
		b, err := os.ReadFile(filepath.Join(base, h.name+".pid"))
		require.NoError(t, err)
		pids[h.name] = strings.TrimSpace(string(b))
		assertPublishedExactly(t, pg.DSN(), h.name, storeDir)
	}

	plan := exec.Command(restrack, "plan", "--fleet", pg.DSN(), "--ap", "beta:"+pids["beta"])
	plan.Env = append(os.Environ(), "COLUMNS=1000") // one row a line: the 80-column layout is tested in planner
	out, err := plan.CombinedOutput()
	require.NoError(t, err, "%s", out)
	table := string(out)
	t.Logf("the cross-host plan:\n%s", table)
	src := "//[127.0.0.1:" + exp.dir + "]"
	assert.Contains(t, table, fmt.Sprintf("AP alpha:%s moves because", pids["alpha"]))
	assert.Regexp(t, fmt.Sprintf(`writes \Q%s\E/shared/log, which process beta:\d+ \(cat log\) of AP beta:%s \(moving\) reads`, src, pids["beta"]), table)
	assert.Regexp(t, `\Q`+src+`/shared/cfg\E\s.*gamma:`+pids["gamma"], table, "Model 1: a copy of the config stays for gamma")
	assert.Contains(t, table, "//alpha"+local+"/state", "each host's own tmpfs file is its own file")
	assert.Contains(t, table, "//beta"+local+"/state")
	assert.NotContains(t, table, "//gamma"+local+"/state", "gamma writes the same path on its own host: no tie")
	assert.NotContains(t, table, "incomplete")

	out, err = exec.Command(restrack, "explain", "--fleet", pg.DSN(), "--ap", "beta:"+pids["beta"], "--pid", "alpha:"+pids["alpha"]).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Regexp(t, fmt.Sprintf(`AP alpha:%s moves because it writes \Q%s\E/shared/log, which process beta:\d+ \(cat log\) of AP beta:%s \(moving\) reads`, pids["alpha"], src, pids["beta"]), string(out))
	assert.Contains(t, string(out), fmt.Sprintf("AP beta:%s is the AP you asked to move", pids["beta"]))

	out, err = exec.Command(restrack, "plan", "--fleet", pg.DSN(), "--ap", "beta:"+pids["beta"], "--dot").Output()
	require.NoError(t, err)
	assert.Contains(t, string(out), "AP alpha:"+pids["alpha"])
	// A synthetic pid stands alone; temp dir names (…-1944731279) end in digits too.
	assert.NotRegexp(t, `(?:^|[\s:(="])(?:1[1-9]\d{8}|20\d{8})\b`, string(out), "no synthetic pid is left in the graph")

	out, err = exec.Command(restrack, "plan", "--fleet", pg.DSN(), "--ap", "beta:"+pids["beta"], "--json").Output()
	require.NoError(t, err)
	var pl struct {
		APs []struct {
			Root int32  `json:"root_pid"`
			Host string `json:"host"`
		} `json:"aps"`
		MoveProcesses []struct {
			Host string `json:"host"`
		} `json:"move_processes"`
	}
	require.NoError(t, json.Unmarshal(out, &pl), "%s", out)
	require.Len(t, pl.APs, 2, "beta's shipper and alpha's service; gamma stays")
	assert.Equal(t, "beta", pl.APs[0].Host)
	assert.Equal(t, "alpha", pl.APs[1].Host)
	assert.Equal(t, pids["alpha"], strconv.Itoa(int(pl.APs[1].Root)))
	for _, p := range pl.MoveProcesses {
		assert.Contains(t, []string{"alpha", "beta"}, p.Host)
	}
}

// assertPublishedExactly: the fleet database holds what the host's store
// holds, each aggregate once with its count.
func assertPublishedExactly(t *testing.T, dsn, host, storeDir string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(storeDir, store.Options{ReadOnly: true})
	require.NoError(t, err)
	defer st.Close()
	tr, err := st.Trace(ctx)
	require.NoError(t, err)
	var calls uint64
	for _, a := range tr.Accesses {
		calls += a.Count + a.Failures
	}
	var procs, accs, pgCalls int64
	pgtest.QueryRow(t, dsn, `SELECT (SELECT count(*) FROM restrack.processes WHERE host_id = $1),
		(SELECT count(*) FROM restrack.accesses WHERE host_id = $1), (SELECT coalesce(sum(count + failures), 0) FROM restrack.accesses WHERE host_id = $1)`,
		[]any{host}, &procs, &accs, &pgCalls)
	assert.Equal(t, int64(len(tr.Processes)), procs, "host %s: processes", host)
	assert.Equal(t, int64(len(tr.Accesses)), accs, "host %s: aggregates", host)
	assert.Equal(t, int64(calls), pgCalls, "host %s: calls", host)
}
