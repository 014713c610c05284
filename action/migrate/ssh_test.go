package migrate_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/action/migrate"
)

// startSSHD runs a private sshd on a free port of 127.0.0.1 that lets this
// test's own key log in as root, and returns the ssh command to reach it.
func startSSHD(t *testing.T) string {
	t.Helper()
	require.Equal(t, 0, os.Geteuid(), "a private sshd that accepts root needs root: run the tests as root (CI does)")
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		sshd = "/usr/sbin/sshd"
	}
	_, err = os.Stat(sshd)
	require.NoError(t, err, "openssh-server is needed for the ssh migration test (setup-debian.sh installs it)")
	// sshd insists on its privilege-separation directory.
	require.NoError(t, os.MkdirAll("/run/sshd", 0o755))
	d := t.TempDir()
	for _, k := range []string{"host", "client"} {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(d, k)).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	pub, err := os.ReadFile(filepath.Join(d, "client.pub"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(d, "authorized_keys"), pub, 0o600))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := fmt.Sprintf("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nAuthorizedKeysFile %s\nPidFile none\nPermitRootLogin prohibit-password\n"+
		"PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n",
		port, filepath.Join(d, "host"), filepath.Join(d, "authorized_keys"))
	require.NoError(t, os.WriteFile(filepath.Join(d, "sshd_config"), []byte(cfg), 0o600))
	cmd := exec.Command(sshd, "-D", "-e", "-f", filepath.Join(d, "sshd_config"))
	// Its log goes to a file, read only on failure: a buffer would be
	// written by the copier goroutine while the test reads it.
	logFile, err := os.Create(filepath.Join(d, "sshd.log"))
	require.NoError(t, err)
	defer logFile.Close()
	cmd.Stderr = logFile
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ssh := fmt.Sprintf("ssh -p %d -i %s -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
		port, filepath.Join(d, "client"))
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := exec.Command("sh", "-c", ssh+" root@127.0.0.1 true").CombinedOutput()
		if err == nil {
			return ssh
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(filepath.Join(d, "sshd.log"))
			t.Fatalf("sshd on port %d never let us in: %v %s\nsshd: %s", port, err, out, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMigrateOverSSH moves a live AP to root@127.0.0.1:ROOT through a
// private sshd: rsync over ssh, then the start on the "remote" host,
// chrooted in ROOT there.
func TestMigrateOverSSH(t *testing.T) {
	ssh := startSSHD(t)
	dir, pid, tr, pl := liveLoop(t)
	root := filepath.Join(t.TempDir(), "remote-root")
	t.Cleanup(func() {
		for _, p := range inRoot(root) {
			_ = exec.Command("kill", "-9", strconv.Itoa(p)).Run()
		}
	})

	s, err := migrate.Build(migrate.Options{Plan: pl, Trace: tr, Target: migrate.Target{Host: "root@127.0.0.1", Root: root},
		StopTimeout: 5 * time.Second, IDs: func(int32) (*uint32, *uint32) { return nil, nil }})
	require.NoError(t, err)
	t.Setenv("RESTRACK_SSH", ssh)
	var out bytes.Buffer
	require.NoError(t, s.Run(context.Background(), &out, &out), "%s", out.String())
	require.True(t, gone(pid), "the source process is stopped:\n%s", out.String())
	ticks := filepath.Join(root, dir, "ticks")
	first, err := os.ReadFile(ticks)
	require.NoError(t, err, "the file went over rsync+ssh:\n%s", out.String())
	deadline := time.Now().Add(15 * time.Second)
	for {
		now, _ := os.ReadFile(ticks)
		if len(now) > len(first) {
			break
		}
		logs, _ := os.ReadFile(filepath.Join(root, "var/log/restrack-migrate", "ap-"+fmt.Sprint(pl.LiveAPs[0])+".log"))
		require.True(t, time.Now().Before(deadline), "the loop restarted over ssh writes in the remote root:\n%s\nlog: %s", out.String(), logs)
		time.Sleep(50 * time.Millisecond)
	}
}
