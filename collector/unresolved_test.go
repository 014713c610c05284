package collector

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/ring"
)

func TestStatusCountsThePathsTheShimCouldNotMakeAbsoluteByCause(t *testing.T) {
	ringPath := mustRing(t, 1<<20)
	st := mustStore(t, t.TempDir(), store.Options{})
	src, err := OpenRing(ringPath, ring.Options{})
	require.NoError(t, err)
	defer src.Close()
	w, err := ring.OpenWriter(ringPath)
	require.NoError(t, err)
	defer w.Close()
	for _, rec := range []ring.Record{
		{Type: ring.TypeEvent, Op: ring.OpOpenat, Access: ring.AccessWrite, PID: 5, StartNs: 9, RFlags: ring.RFUnresolved | ring.RFTooLong, Str1: []byte("deep.txt")},
		{Type: ring.TypeEvent, Op: ring.OpOpenat, Access: ring.AccessRead, PID: 5, StartNs: 9, RFlags: ring.RFUnresolved | ring.RFSandboxed, Str1: []byte("at.txt")},
		{Type: ring.TypeEvent, Op: ring.OpOpenat, Access: ring.AccessRead, PID: 5, StartNs: 9, RFlags: ring.RFUnresolved, Str1: []byte("x")},
		{Type: ring.TypeEvent, Op: ring.OpRename, Access: ring.AccessWrite, PID: 5, StartNs: 9, RFlags: ring.RFPath2Unresolved, Str1: []byte("/a"), Str2: []byte("b")},
		{Type: ring.TypeEvent, Op: ring.OpOpen, Access: ring.AccessRead, PID: 5, StartNs: 9, Str1: []byte("/whole")},
	} {
		require.NoError(t, w.Append(&rec))
	}
	c := New(src, st, Config{})
	_, err = c.DrainOnce()
	require.NoError(t, err)
	s := c.Status(context.Background())
	assert.Equal(t, uint64(1), s.UnresolvedTooLong)
	assert.Equal(t, uint64(1), s.UnresolvedSandboxed)
	assert.Equal(t, uint64(2), s.UnresolvedBaseUnknown, "a relative second path counts too")
}
