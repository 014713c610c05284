package planner

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func (b *traceBuilder) net(pid int32, op, endpoint string) *traceBuilder {
	return b.access(pid, endpoint, op, true, 1, 0)
}

func TestEndpointTies(t *testing.T) {
	const pg = "/usr/lib/postgresql/15/bin/postgres"
	tests := []struct {
		name     string
		trace    *Trace
		ap       string
		aps      []int32
		listen   []string // listen_endpoints
		external []string // external_endpoints ("!" prefix: local)
		check    func(t *testing.T, pl *Plan)
	}{
		{
			name: "a TCP client brings the local server it connects to, through a wildcard bind",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/usr/bin/psql").proc(20, 1, pg).
				net(20, "bind", "tcp://0.0.0.0:5432").net(20, "listen", "tcp://0.0.0.0:5432").
				net(20, "accept", "tcp://0.0.0.0:5432?peer=127.0.0.1").
				net(10, "connect", "tcp://127.0.0.1:5432").trace(),
			ap: "10", aps: []int32{10, 20}, listen: []string{"tcp://0.0.0.0:5432"}, external: []string{},
			check: func(t *testing.T, pl *Plan) {
				c := pl.APs[1].Cause
				require.NotNil(t, c)
				assert.Equal(t, "port", c.Via)
				assert.Equal(t, "tcp://0.0.0.0:5432", c.Path)
				assert.Equal(t, "tcp://127.0.0.1:5432", c.Connected)
				assert.Equal(t, "AP 20 moves because it listens on tcp://0.0.0.0:5432, which AP 10 (moving) connects to as tcp://127.0.0.1:5432", pl.APs[1].Reason)
				require.Len(t, pl.ListenEndpoints[0].Clients, 1)
				assert.True(t, pl.ListenEndpoints[0].Clients[0].Moving)
				assert.Empty(t, pl.ListenEndpoints[0].RemoteClients, "127.0.0.1 is this host")
			},
		},
		{
			name: "an IPv6 wildcard server takes IPv4 and IPv6 loopback clients",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/a").proc(20, 1, "/srv").proc(30, 1, "/b").
				net(20, "listen", "tcp://[::]:8080").net(10, "connect", "tcp://127.0.0.1:8080").net(30, "connect", "tcp://[::1]:8080").trace(),
			ap: "30", aps: []int32{30, 20}, listen: []string{"tcp://[::]:8080"}, external: []string{},
			check: func(t *testing.T, pl *Plan) {
				cl := pl.ListenEndpoints[0].Clients
				require.Len(t, cl, 2)
				assert.False(t, cl[0].Moving, "the other client stays: moving a server never pulls its clients")
				assert.True(t, cl[1].Moving)
				assert.Contains(t, pl.ListenEndpoints[0].Reason, "AP 10 stay and must be redirected")
			},
		},
		{
			name: "an IPv4 wildcard server is not reached through [::1]",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/a").proc(20, 1, "/srv").
				net(20, "listen", "tcp://0.0.0.0:8080").net(10, "connect", "tcp://[::1]:8080").trace(),
			ap: "10", aps: []int32{10}, listen: []string{}, external: []string{"!tcp://[::1]:8080"},
		},
		{
			name: "two clients of one server are not tied to each other",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/a").proc(20, 1, "/srv").proc(30, 1, "/b").
				net(20, "listen", "tcp://127.0.0.1:9000").net(10, "connect", "tcp://127.0.0.1:9000").net(30, "connect", "tcp://127.0.0.1:9000").trace(),
			ap: "10", aps: []int32{10, 20}, listen: []string{"tcp://127.0.0.1:9000"}, external: []string{},
		},
		{
			name: "a server moved alone lists its staying clients and remote client hosts",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/a").proc(20, 1, "/srv").
				net(20, "listen", "tcp://0.0.0.0:443").net(20, "accept4", "tcp://0.0.0.0:443?peer=10.1.2.3").
				net(20, "accept4", "tcp://0.0.0.0:443?peer=127.0.0.1").net(10, "connect", "tcp://127.0.0.1:443").trace(),
			ap: "20", aps: []int32{20}, listen: []string{"tcp://0.0.0.0:443"}, external: []string{},
			check: func(t *testing.T, pl *Plan) {
				assert.Equal(t, []string{"10.1.2.3"}, pl.ListenEndpoints[0].RemoteClients)
				assert.Equal(t, int32(10), pl.ListenEndpoints[0].Clients[0].AP)
				assert.False(t, pl.ListenEndpoints[0].Clients[0].Moving)
			},
		},
		{
			name: "loopback traffic to an untraced listener (a host daemon) ties nobody and is listed as local",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/a").proc(20, 1, "/b").
				net(10, "connect", "tcp://127.0.0.1:6379").net(20, "connect", "tcp://127.0.0.1:6379").
				net(10, "sendto", "udp://127.0.0.53:53").trace(),
			ap: "10", aps: []int32{10}, listen: []string{}, external: []string{"!tcp://127.0.0.1:6379", "!udp://127.0.0.53:53"},
		},
		{
			name: "a remote address is external: the target must reach it",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/a").
				net(10, "connect", "tcp://93.184.216.34:443").trace(),
			ap: "10", aps: []int32{10}, listen: []string{}, external: []string{"tcp://93.184.216.34:443"},
		},
		{
			name: "a UDP client brings the process bound to the port it sends to; the protocols never mix",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/a").proc(20, 1, "/udpd").proc(30, 1, "/tcpd").
				net(20, "bind", "udp://127.0.0.1:5353").net(30, "listen", "tcp://127.0.0.1:5353").
				net(10, "sendto", "udp://127.0.0.1:5353").trace(),
			ap: "10", aps: []int32{10, 20}, listen: []string{"udp://127.0.0.1:5353"}, external: []string{},
			check: func(t *testing.T, pl *Plan) {
				assert.Contains(t, pl.APs[1].Reason, "receives on udp://127.0.0.1:5353, which AP 10 (moving) sends to")
			},
		},
		{
			name: "a client's ephemeral bind and a failed connect tie nobody",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/a").proc(20, 1, "/srv").
				net(20, "listen", "tcp://127.0.0.1:7000").net(10, "bind", "udp://0.0.0.0:0").
				access(10, "tcp://127.0.0.1:7000", "connect", true, 0, 3).trace(),
			ap: "10", aps: []int32{10}, listen: []string{}, external: []string{},
		},
		{
			name: "the tie is transitive: a client's server brings the server's own database",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/curl").proc(20, 1, "/web").proc(30, 1, pg).
				net(20, "listen", "tcp://0.0.0.0:8080").net(10, "connect", "tcp://127.0.0.1:8080").
				net(30, "listen", "tcp://127.0.0.1:5432").net(20, "connect", "tcp://127.0.0.1:5432").trace(),
			ap: "10", aps: []int32{10, 20, 30}, listen: []string{"tcp://0.0.0.0:8080", "tcp://127.0.0.1:5432"}, external: []string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pl := mustPlan(t, tc.trace, tc.ap, Options{})
			var roots []int32
			for _, a := range pl.APs {
				roots = append(roots, a.Root)
			}
			assert.Equal(t, tc.aps, roots, "moving APs in the order they joined")
			listen := []string{}
			for _, l := range pl.ListenEndpoints {
				listen = append(listen, l.Endpoint)
			}
			assert.Equal(t, tc.listen, listen)
			ext := []string{}
			for _, e := range pl.ExternalEndpoints {
				s := e.Endpoint
				if e.Local {
					s = "!" + s
				}
				ext = append(ext, s)
			}
			assert.Equal(t, tc.external, ext)
			assert.Empty(t, pl.MoveFiles, "an endpoint is never a file")
			assert.Empty(t, pl.HostSockets)
			if tc.check != nil {
				tc.check(t, pl)
			}
		})
	}
}

func TestExplainShowsAChainThroughAPort(t *testing.T) {
	tr := newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/curl").proc(20, 1, "/web").proc(30, 1, "/db").
		net(20, "listen", "tcp://0.0.0.0:8080").net(10, "connect", "tcp://127.0.0.1:8080").
		net(30, "listen", "tcp://127.0.0.1:5432").net(20, "connect", "tcp://127.0.0.1:5432").trace()
	pl := mustPlan(t, tr, "10", Options{})
	lines, err := pl.ExplainProcess(pl.APs[2].Cause.Proc)
	require.NoError(t, err)
	require.Len(t, lines, 4, strings.Join(lines, "\n"))
	assert.Equal(t, "AP 30 moves because it listens on tcp://127.0.0.1:5432, which AP 20 (moving) connects to.", lines[1])
	assert.Equal(t, "AP 20 moves because it listens on tcp://0.0.0.0:8080, which AP 10 (moving) connects to as tcp://127.0.0.1:8080.", lines[2])

	var text, dot strings.Builder
	require.NoError(t, pl.WriteTable(&text))
	assert.Contains(t, text.String(), "Ports the moving APs serve (2)")
	assert.Contains(t, text.String(), "tcp://0.0.0.0:8080")
	require.NoError(t, pl.WriteDOT(&dot))
	assert.Contains(t, dot.String(), "tcp://127.0.0.1:5432")
}

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in, text, addr string
		port           uint16
		peer           string
		ok             bool
	}{
		{"tcp://127.0.0.1:5432", "tcp://127.0.0.1:5432", "127.0.0.1", 5432, "", true},
		{"tcp://[::ffff:127.0.0.1]:80", "tcp://[::ffff:127.0.0.1]:80", "127.0.0.1", 80, "", true},
		{"tcp://[fe80::1%2]:22", "tcp://[fe80::1%2]:22", "fe80::1%2", 22, "", true},
		{"tcp://0.0.0.0:5432?peer=10.0.0.7", "tcp://0.0.0.0:5432", "0.0.0.0", 5432, "10.0.0.7", true},
		{"tcp://?", "", "", 0, "", false},
		{"tcp://127.0.0.1", "", "", 0, "", false},
	} {
		ep, ok := parseEndpoint(tc.in)
		require.Equal(t, tc.ok, ok, tc.in)
		if !ok {
			continue
		}
		assert.Equal(t, tc.text, ep.text)
		assert.Equal(t, tc.addr, ep.addr.String())
		assert.Equal(t, tc.port, ep.port)
		if tc.peer != "" {
			assert.Equal(t, tc.peer, ep.peer.String())
		}
	}
}

func TestTheEndpointTablesFitEightyColumns(t *testing.T) {
	long := "/opt/very/long/install/prefix/of/the/service/bin/service-with-a-long-name"
	tr := newTrace().proc(1, 0, "/bin/sh").proc(10, 1, long, long, "--config", "/etc/service/config-file.toml").
		proc(20, 1, "/usr/lib/postgresql/15/bin/postgres", "postgres", "-D", "/var/lib/postgresql/15/main", "-c", "config_file=/etc/postgresql/15/main/postgresql.conf").
		proc(30, 1, long, long, "--worker", "--queue", "/var/spool/service/queue-number-one").
		net(20, "listen", "tcp://0.0.0.0:5432").net(10, "connect", "tcp://127.0.0.1:5432").
		net(30, "connect", "tcp://[::1]:5432").net(20, "connect", "tcp://[2001:db8:1234:5678:9abc:def0:1234:5678]:443").trace()
	pl := mustPlan(t, tr, "20", Options{})
	require.NotEmpty(t, pl.ListenEndpoints)
	require.NotEmpty(t, pl.ExternalEndpoints)
	var out bytes.Buffer
	require.NoError(t, pl.WriteTableWidth(&out, 80))
	for _, line := range strings.Split(out.String(), "\n") {
		assert.LessOrEqual(t, utf8.RuneCountInString(line), 80, "%q", line)
	}
	assert.Contains(t, out.String(), "STAYS", "the staying client is still said")
}
