package planner

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHostDaemonSockets covers issue 11 §5: a socket ties a client to the
// server that bound it, never clients to each other, and the host's own
// daemons' sockets tie nobody but are listed.
func TestHostDaemonSockets(t *testing.T) {
	const bus = "/run/dbus/system_bus_socket"
	tests := []struct {
		name        string
		trace       *Trace
		aps         []int32
		hostSockets []string
		boundBy     []int32
	}{
		{
			name: "two unrelated clients of the system bus, bound by an untraced daemon, stay apart",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/app").proc(20, 1, "/unrelated").
				access(10, bus, "connect", true, 3, 0).access(20, bus, "connect", true, 5, 0).trace(),
			aps: []int32{10}, hostSockets: []string{bus}, boundBy: []int32{},
		},
		{
			name: "clients of a socket nobody traced bound stay apart outside /run too",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/app").proc(20, 1, "/unrelated").
				access(10, "/home/u/.cache/agent.sock", "connect", true, 1, 0).
				access(20, "/home/u/.cache/agent.sock", "connect", true, 1, 0).trace(),
			aps: []int32{10}, hostSockets: []string{"/home/u/.cache/agent.sock"}, boundBy: []int32{},
		},
		{
			name: "a daemon's socket under /run is the host's even when the daemon was traced",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/app").proc(20, 1, "/usr/bin/dbus-daemon").proc(30, 1, "/unrelated").
				access(20, bus, "bind", true, 1, 0).
				access(10, bus, "connect", true, 1, 0).access(30, bus, "connect", true, 1, 0).trace(),
			aps: []int32{10}, hostSockets: []string{bus}, boundBy: []int32{20},
		},
		{
			name: "under /tmp/.X11-unix the X server's socket is the host's",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/app").proc(20, 1, "/usr/bin/Xorg").
				access(20, "/tmp/.X11-unix/X0", "bind", true, 1, 0).access(10, "/tmp/.X11-unix/X0", "connect", true, 1, 0).trace(),
			aps: []int32{10}, hostSockets: []string{"/tmp/.X11-unix/X0"}, boundBy: []int32{20},
		},
		{
			name: "a failed connect to a socket creates no dependency and lists nothing",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/app").proc(20, 1, "/srv/server").
				access(20, "/srv/app.sock", "bind", true, 1, 0).access(10, "/srv/app.sock", "connect", true, 0, 2).trace(),
			aps: []int32{10}, hostSockets: []string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pl := mustPlan(t, tc.trace, "10", Options{})
			assert.Equal(t, tc.aps, apRoots(pl))
			var paths []string
			for _, h := range pl.HostSockets {
				paths = append(paths, h.Path)
				assert.Equal(t, tc.boundBy, h.BoundBy)
				assert.Equal(t, []int32{10}, h.APs)
				assert.NotEmpty(t, h.Reason)
			}
			if len(tc.hostSockets) == 0 {
				assert.Empty(t, paths)
			} else {
				assert.Equal(t, tc.hostSockets, paths)
			}
			assert.Empty(t, pl.MoveFiles, "a host socket is never moved")
			assert.Empty(t, pl.CopyFiles, "a host socket is never copied")
		})
	}
}

func TestKeepMakesADaemonSocketUnderRunTheApplications(t *testing.T) {
	tr := newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/app").proc(20, 1, "/srv/appd").
		access(20, "/run/appd/appd.sock", "bind", true, 1, 0).access(10, "/run/appd/appd.sock", "connect", true, 1, 0).trace()
	rules := NewRules(true)
	require.NoError(t, rules.Keep("/run/appd"))
	pl := mustPlan(t, tr, "10", Options{Rules: rules})
	assert.Equal(t, []int32{10, 20}, apRoots(pl), "kept: the client brings the daemon that bound it")
	assert.Empty(t, pl.HostSockets)
	lines, err := pl.ExplainProcess(pl.APs[1].Cause.ByProc)
	require.NoError(t, err)
	assert.NotEmpty(t, lines)
}

func TestExplainHostSocket(t *testing.T) {
	tr := newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/app").
		access(10, "/run/dbus/system_bus_socket", "connect", true, 1, 0).trace()
	pl := mustPlan(t, tr, "10", Options{})
	lines, err := pl.ExplainFile("/run/dbus/system_bus_socket")
	require.NoError(t, err)
	require.Len(t, lines, 1)
	assert.Contains(t, lines[0], "socket the host provides")
	var buf strings.Builder
	require.NoError(t, pl.WriteTable(&buf))
	assert.Contains(t, buf.String(), "Sockets the host provides (1)")
}

func TestNetworkEndpointsAreNeverFiles(t *testing.T) {
	tr := newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/app").proc(20, 1, "/unrelated").
		access(10, "udp://127.0.0.53:53", "sendto", true, 1, 0).access(20, "udp://127.0.0.53:53", "sendto", true, 1, 0).
		access(10, "tcp://93.184.216.34:443", "connect", true, 1, 0).access(20, "tcp://93.184.216.34:443", "connect", true, 1, 0).trace()
	pl := mustPlan(t, tr, "10", Options{})
	assert.Equal(t, []int32{10}, apRoots(pl), "two clients of one resolver or one remote service are not tied")
	assert.Empty(t, pl.MoveFiles)
	assert.Empty(t, pl.HostSockets)
}
