//go:build linux

package ebpf

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/internal/ctest"
	"github.com/restrack/restrack/ring"
)

// The kernel side sees the socket calls the shim records and the
// converter spells their endpoints the same way (docs/ring-abi.md), so
// `restrack coverage` can compare the two.
func TestSocketCallsAreSeenAsTheShimsEndpoints(t *testing.T) {
	probe := ctest.Build(t, "net_probe", []string{"libcshim/tests/net_probe.c"})
	for _, tc := range []struct {
		name, probe, listen, conn, peer string
	}{
		{"TCP on 127.0.0.1", "tcp4", "tcp://127.0.0.1:%d", "tcp://127.0.0.1:%d", "127.0.0.1"},
		{"TCP on [::1]", "tcp6", "tcp://[::1]:%d", "tcp://[::1]:%d", "::1"},
		{"a wildcard listener reached through 127.0.0.1", "wildcard", "tcp://0.0.0.0:%d", "tcp://127.0.0.1:%d", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(probe, tc.probe)
			var out strings.Builder
			recs := traceRunOut(t, cmd, &out)
			m := regexp.MustCompile(`PORT (\d+)`).FindStringSubmatch(out.String())
			require.NotNil(t, m, out.String())
			port, _ := strconv.Atoi(m[1])
			listen, conn := fmt.Sprintf(tc.listen, port), fmt.Sprintf(tc.conn, port)
			var got []string
			for _, r := range recs {
				if r.Type == ring.TypeEvent && strings.Contains(r.Path, "://") {
					got = append(got, r.Op.String()+" "+r.Path)
				}
			}
			assert.Contains(t, got, "bind "+listen, "a bind to port 0 names the port the kernel chose")
			assert.Contains(t, got, "listen "+listen)
			assert.Contains(t, got, "connect "+conn)
			accepted := 0
			for _, g := range got {
				if strings.HasPrefix(g, "accept") && strings.HasPrefix(strings.Fields(g)[1], listen) {
					accepted++
				}
			}
			assert.Equal(t, 2, accepted, "both accepts, on the listening endpoint: %v", got)
			assert.True(t, containsStr(got, listen+"?peer="+tc.peer), "the peer host when the program asked for it: %v", got)
		})
	}
}

func TestANonBlockingConnectIsSeenInProgressByTheKernelSide(t *testing.T) {
	probe := ctest.Build(t, "net_probe", []string{"libcshim/tests/net_probe.c"})
	var out strings.Builder
	recs := traceRunOut(t, exec.Command(probe, "nonblock"), &out)
	for _, r := range recs {
		if r.Op == ring.OpConnect && strings.HasPrefix(r.Path, "tcp://127.0.0.1:") {
			assert.Equal(t, -int32(syscall.EINPROGRESS), r.Result)
			assert.NotZero(t, r.RFlags&ring.RFInProgress)
			return
		}
	}
	t.Fatalf("no connect record: %+v", recs)
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if strings.HasSuffix(x, " "+s) {
			return true
		}
	}
	return false
}

// traceRunOut is traceRun keeping the workload's stdout (in a file: traceRun
// collects the combined output itself).
func traceRunOut(t *testing.T, cmd *exec.Cmd, out *strings.Builder) []rec {
	t.Helper()
	file := filepath.Join(t.TempDir(), "stdout")
	sh := exec.Command("sh", append([]string{"-c", `f="$1"; shift; exec "$@" > "$f"`, "sh", file}, cmd.Args...)...)
	recs := traceRun(t, sh)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	out.Write(b)
	return recs
}
