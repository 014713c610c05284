package store

import (
	"context"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/ring"
)

// Network endpoints travel as event paths (docs/ring-abi.md, "Network
// endpoints"): the store aggregates them per process, endpoint and role
// like file accesses, never one row per call or connection.
func TestEndpointsAreAggregatedPerProcessEndpointAndRole(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	const srv, cli = "tcp://0.0.0.0:5432", "tcp://127.0.0.1:5432"
	recs := []ring.Record{
		proc(100, 1, 1000, "/usr/lib/postgresql/15/bin/postgres"),
		proc(200, 1, 1100, "/usr/bin/psql"),
		ev(100, 1000, 1200, ring.OpBind, ring.AccessWrite, 0, srv),
		ev(100, 1000, 1300, ring.OpListen, ring.AccessWrite, 0, srv),
	}
	for i := range 50 {
		// Each connection has its own client port: only str2 shows it.
		recs = append(recs,
			ev(200, 1100, uint64(2000+10*i), ring.OpConnect, ring.AccessWrite, 0, cli),
			ev(100, 1000, uint64(2005+10*i), ring.OpAccept4, ring.AccessWrite, int32(7+i), srv+"?peer=127.0.0.1",
				"tcp://127.0.0.1:"+string(rune('a'+i%26))))
	}
	inProgress := ev(200, 1100, 9000, ring.OpConnect, ring.AccessWrite, -int32(syscall.EINPROGRESS), cli)
	inProgress.RFlags = ring.RFInProgress
	refused := ev(200, 1100, 9100, ring.OpConnect, ring.AccessWrite, -int32(syscall.ECONNREFUSED), cli)
	recs = append(recs, inProgress, refused)
	mustCommit(t, s, 1, recs...)

	tr, err := s.Trace(context.Background())
	require.NoError(t, err)
	type row struct {
		pid           int32
		path, op      string
		count, failed uint64
		first, last   uint64
	}
	var rows []row
	for _, a := range tr.Accesses {
		rows = append(rows, row{a.Proc.PID, a.Path, a.Op, a.Count, a.Failures, a.FirstNs, a.LastNs})
	}
	assert.ElementsMatch(t, []row{
		{100, srv, "bind", 1, 0, 1200, 1200},
		{100, srv, "listen", 1, 0, 1300, 1300},
		{100, srv + "?peer=127.0.0.1", "accept4", 50, 0, 2005, 2495},
		{200, cli, "connect", 51, 1, 2000, 9100},
	}, rows, "one row per process, endpoint and role; a connect in progress counts as made, a refused one as failed")
}
