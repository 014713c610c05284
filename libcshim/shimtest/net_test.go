//go:build linux

package shimtest

import (
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/internal/ctest"
	"github.com/restrack/restrack/ring"
)

// netProbe runs libcshim/tests/net_probe.c's case traced and untraced and
// requires the same output (the kernel's port numbers aside); it returns
// the traced run and its network records.
func netProbe(t *testing.T, args ...string) (runResult, []event) {
	t.Helper()
	te := newTrace(t, ring.Config{})
	p := ctest.Build(t, "net_probe", []string{"libcshim/tests/net_probe.c"})
	res := te.run(p, args...)
	require.NoError(t, res.err, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	plain := runUntraced(t, p, args...)
	require.NoError(t, plain.err, plain.stderr)
	require.Equal(t, comparable(plain.stdout), comparable(res.stdout), "the shim changed what the program saw")
	evs := filter(te.drain(), func(e event) bool {
		return !e.isProc() && strings.Contains(e.Path, "://")
	})
	return res, evs
}

func firstInt(t *testing.T, re, s string) int {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	require.NotNil(t, m, "%q in %q", re, s)
	var n int
	_, err := fmt.Sscan(m[1], &n)
	require.NoError(t, err)
	return n
}

func ops(evs []event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Op+" "+e.Path)
	}
	return out
}

func TestTCPEndpointsAreRecordedWithAddressPortAndResult(t *testing.T) {
	tests := []struct {
		name         string
		probe        string
		listen, conn string // %d: the port
		peer         string // the accepted peer's host
	}{
		{"a server and its client on 127.0.0.1", "tcp4", "tcp://127.0.0.1:%d", "tcp://127.0.0.1:%d", "127.0.0.1"},
		{"a server and its client on [::1]", "tcp6", "tcp://[::1]:%d", "tcp://[::1]:%d", "::1"},
		{"a wildcard listener reached through 127.0.0.1", "wildcard", "tcp://0.0.0.0:%d", "tcp://127.0.0.1:%d", "127.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, evs := netProbe(t, tc.probe)
			port := firstInt(t, `PORT (\d+)`, res.stdout)
			listen, conn := fmt.Sprintf(tc.listen, port), fmt.Sprintf(tc.conn, port)
			want := []string{
				"bind " + listen, // the port the kernel chose for port 0
				"listen " + listen,
				"connect " + conn,
				"accept " + listen + "?peer=" + tc.peer,
				"connect " + conn,
				"accept4 " + listen,
			}
			require.Equal(t, want, ops(evs), dump(evs))
			for _, e := range evs {
				assert.GreaterOrEqual(t, e.Result, int32(0), "every call succeeded: %v", e)
				assert.Equal(t, uint8(ring.AccessWrite), e.Access)
			}
			assert.Regexp(t, `^tcp://(127\.0\.0\.1|\[::1\]):\d+$`, evs[3].Path2, "the accepted peer with its port")
			assert.Equal(t, uint32(syscall.SOCK_CLOEXEC), evs[5].Flags, "accept4's flags as passed")
		})
	}
}

func TestAUDPPeerIsRecordedTheFirstTimeItIsMetNotPerDatagram(t *testing.T) {
	res, evs := netProbe(t, "udp")
	assert.Contains(t, res.stdout, "UDP sent 8 received 8")
	var a, b, c int
	_, err := fmt.Sscanf(regexp.MustCompile(`PORTS \d+ \d+ \d+`).FindString(res.stdout), "PORTS %d %d %d", &a, &b, &c)
	require.NoError(t, err)
	want := []string{
		// A datagram socket bound to port 0 serves the port the kernel chose.
		fmt.Sprintf("bind udp://127.0.0.1:%d", a), fmt.Sprintf("bind udp://127.0.0.1:%d", b), fmt.Sprintf("bind udp://127.0.0.1:%d", c),
		fmt.Sprintf("sendto udp://127.0.0.1:%d", b),
		fmt.Sprintf("sendmsg udp://127.0.0.1:%d", c),
	}
	require.Equal(t, want, ops(evs), "5 datagrams to one peer and 3 to another are two records:\n%s", dump(evs))
	assert.Equal(t, int32(1), evs[3].Result, "the first send's result")
}

func TestANonBlockingConnectIsRecordedInProgressWithErrnoUntouched(t *testing.T) {
	res, evs := netProbe(t, "nonblock")
	assert.Contains(t, res.stdout, "connect -1 errno EINPROGRESS\n", "the program sees EINPROGRESS")
	assert.Contains(t, res.stdout, "completed SO_ERROR 0\n", "and the connection completes")
	conns := filter(evs, func(e event) bool { return e.Op == "connect" })
	require.Len(t, conns, 1, dump(evs))
	assert.Equal(t, -int32(syscall.EINPROGRESS), conns[0].Result)
	assert.Equal(t, uint16(ring.RFInProgress), conns[0].RFlags&ring.RFInProgress, "flagged: started, it completes later")
}

func TestAccept4InASignalHeavyLoopKeepsEINTRAndRecordsEveryConnection(t *testing.T) {
	const n = 150
	res, evs := netProbe(t, "accept4-signals", fmt.Sprint(n))
	assert.Contains(t, res.stdout, fmt.Sprintf("ACCEPTED %d OTHER 0 CHILD 0", n))
	eintr := firstInt(t, `eintr (\d+)`, res.stderr)
	t.Logf("accept4 interrupted %d times", eintr)
	accepts := filter(evs, func(e event) bool { return e.Op == "accept4" })
	assert.Len(t, accepts, n, "one record per accepted connection, none for EINTR")
	for _, e := range accepts {
		assert.GreaterOrEqual(t, e.Result, int32(0))
		assert.Contains(t, e.Path, "?peer=127.0.0.1")
	}
	connects := filter(evs, func(e event) bool { return e.Op == "connect" && e.Result >= 0 })
	assert.Len(t, connects, n, "the child's connects")
	sends := filter(evs, func(e event) bool { return e.Op == "sendto" })
	assert.LessOrEqual(t, len(sends), 2, "the handler's datagrams name one peer: one record per process that sent")
}
