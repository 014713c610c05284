//go:build linux

package shimtest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/ring"
)

// Tests of what issue 13 found the shim missing or recording wrongly.

func TestAPathDeeperThanPathMaxIsFlaggedTooLongAndCountedNeverStoredBare(t *testing.T) {
	te := newTrace(t, ring.Config{})
	res := te.run(probe(t), "deep", te.dir)
	require.NoError(t, res.err, res.stderr)
	calls := parseCalls(t, res.stdout)
	require.Len(t, calls, 3, res.stdout)
	got := afterBegin(fileEvents(te.drain(), res.pid))
	require.Len(t, got, 3, dump(got))
	for i, c := range calls {
		e := got[i]
		assert.Equal(t, c.op, e.Op)
		assert.Equal(t, c.result, e.Result, e.String())
		assert.False(t, strings.HasPrefix(e.Path, "/"), "the kernel cannot name the base: %s", e)
		assert.NotZero(t, e.RFlags&ring.RFUnresolved, "a relative path is marked unresolved: %s", e)
		assert.NotZero(t, e.RFlags&ring.RFTooLong, "and says why: %s", e)
	}
	assert.GreaterOrEqual(t, te.reader.Counters().ProducerErrors, uint64(3), "each one is counted")
}
