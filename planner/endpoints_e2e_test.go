package planner_test

import (
	"fmt"
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

// The workload of TestTCPClientsBringTheirLocalServer: a server listening
// on the IPv6 wildcard (dual stack, so 127.0.0.1 reaches it too) and a UDP
// socket on the IPv4 wildcard, both on kernel-chosen ports.
const pyServer = `import os, socket, sys
d = sys.argv[1]
t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
t.bind(("::", 0)); t.listen(8)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", 0))
open(d + "/server.pid", "w").write(str(os.getpid()))
open(d + "/ports.tmp", "w").write("%d %d" % (t.getsockname()[1], u.getsockname()[1]))
os.rename(d + "/ports.tmp", d + "/ports")
for _ in range(2):
    c, _ = t.accept(); c.recv(16); c.sendall(b"ok"); c.close()
u.recvfrom(16)
`

// A client: TCP to host:port, and a datagram to the UDP port when asked.
const pyClient = `import os, socket, sys, time
d, name, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = socket.create_connection((host, port)); c.sendall(b"hi"); c.recv(16); c.close()
if len(sys.argv) > 5:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(5):
        s.sendto(b"u", ("127.0.0.1", int(sys.argv[5])))
if len(sys.argv) > 6:
    socket.create_connection(("127.0.0.1", int(sys.argv[6]))).close()
open(d + "/" + name + ".pid", "w").write(str(os.getpid()))
`

// TestTCPClientsBringTheirLocalServer traces a python TCP server and two
// clients (one on 127.0.0.1 with a UDP datagram and a connection to an
// untraced listener, one on [::1]) and checks both plans: each client
// brings the server, the other client stays and is listed to redirect, the
// untraced listener ties nobody and is listed as a host service.
func TestTCPClientsBringTheirLocalServer(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: this test builds the binaries and traces real processes")
	}
	python := mustLookPath(t, "python3")
	build := mustBuild(t, repoRoot(t))
	dir := t.TempDir()
	// The untraced listener: this test process, a host daemon's stand-in.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	untraced := ln.Addr().(*net.TCPAddr).Port
	for name, src := range map[string]string{"server.py": pyServer, "client.py": pyClient} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644))
	}
	script := `py="$1"; d="$2"; other="$3"
"$py" "$d/server.py" "$d" &
i=0; while [ ! -e "$d/ports" ]; do i=$((i+1)); [ $i -gt 500 ] && exit 9; sleep 0.02; done
read tp up < "$d/ports"
"$py" "$d/client.py" "$d" v4 127.0.0.1 "$tp" "$up" "$other"
"$py" "$d/client.py" "$d" v6 ::1 "$tp"
wait`
	storeDir := filepath.Join(dir, "store")
	out, err := exec.Command(filepath.Join(build, "restrack"), "run", "--store", storeDir, "--",
		"sh", "-c", script, "sh", python, dir, strconv.Itoa(untraced)).CombinedOutput()
	require.NoError(t, err, "restrack run:\n%s", out)
	server, v4, v6 := readPIDFile(t, filepath.Join(dir, "server.pid")), readPIDFile(t, filepath.Join(dir, "v4.pid")), readPIDFile(t, filepath.Join(dir, "v6.pid"))
	ports := strings.Fields(mustRead(t, filepath.Join(dir, "ports")))
	tcpEP, udpEP := "tcp://[::]:"+ports[0], "udp://0.0.0.0:"+ports[1]

	for _, tc := range []struct {
		name          string
		client, other int32
	}{
		{"the client on 127.0.0.1 (a wildcard listener reached through loopback)", v4, v6},
		{"the client on [::1]", v6, v4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl := planJSON(t, build, storeDir, tc.client)
			moving := movingPIDs(pl)
			require.True(t, moving[server], "the server the client connects to moves with it: %+v", pl.APs)
			assert.False(t, moving[tc.other], "the other client stays: clients are never tied to each other")
			var srvAP *planner.AP
			for i := range pl.APs {
				if containsPID(pl.APs[i].Processes, server) {
					srvAP = &pl.APs[i]
				}
			}
			require.NotNil(t, srvAP)
			require.NotNil(t, srvAP.Cause)
			assert.Equal(t, "port", srvAP.Cause.Via, "pulled in through a port: %s", srvAP.Reason)
			assert.Contains(t, srvAP.Reason, "listens on "+tcpEP)

			var le *planner.ListenEndpoint
			for i := range pl.ListenEndpoints {
				if pl.ListenEndpoints[i].Endpoint == tcpEP {
					le = &pl.ListenEndpoints[i]
				}
			}
			require.NotNil(t, le, "listen_endpoints: %+v", pl.ListenEndpoints)
			clients := map[int32]bool{}
			for _, c := range le.Clients {
				clients[c.PID] = c.Moving
			}
			assert.Equal(t, map[int32]bool{tc.client: true, tc.other: false}, clients, "both clients seen, the staying one to redirect")
			assert.Contains(t, le.Reason, "must be redirected")
		})
	}

	pl := planJSON(t, build, storeDir, v4)
	eps := map[string]bool{}
	for _, l := range pl.ListenEndpoints {
		eps[l.Endpoint] = true
	}
	assert.True(t, eps[udpEP], "the UDP port the client sent to is served by the moving server: %v", eps)
	ext := map[string]bool{}
	for _, e := range pl.ExternalEndpoints {
		ext[e.Endpoint] = e.Local
	}
	local, listed := ext[fmt.Sprintf("tcp://127.0.0.1:%d", untraced)]
	assert.True(t, listed && local, "the untraced listener is listed as a host service on this host: %+v", pl.ExternalEndpoints)

	cmd := exec.Command(filepath.Join(build, "restrack"), "explain", "--store", storeDir, "--ap", strconv.Itoa(int(v6)), "--pid", strconv.Itoa(int(server)))
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
	expl, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", expl)
	assert.Contains(t, string(expl), "listens on "+tcpEP+", which AP "+strconv.Itoa(int(v6))+" (moving) connects to as tcp://[::1]:"+ports[0])
}

func containsPID(xs []int32, x int32) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}
