//go:build linux

package shimtest

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/internal/ctest"
	"github.com/restrack/restrack/ring"
)

// The shim never harms its host process, whatever state the ring is in.

func TestAPendingCancelIsNotActedOnInsideAHookWhileTheRingIsFull(t *testing.T) {
	prog := ctest.Build(t, "cancel_probe", []string{"libcshim/tests/cancel_probe.c"})
	te := newTrace(t, ring.Config{DataSize: ring.MinDataSize})
	// Fill the ring, with a live consumer (te.reader) that never drains:
	// the producer then waits, the path where a libc sleep would be a
	// cancellation point.
	w, err := ring.OpenWriter(te.ring)
	require.NoError(t, err)
	defer w.Close()
	rec := &ring.Record{Type: ring.TypeEvent, Op: 1, PID: 1, Str1: []byte(strings.Repeat("x", 900))}
	for w.Append(rec) == nil {
	}
	rec.Str1 = nil // then to the last slot
	for w.Append(rec) == nil {
	}
	// A drain without release: the heartbeat is fresh (the producer
	// believes a consumer is coming), the ring stays full.
	te.reader.Drain(te.batch)
	before := te.reader.Counters()
	dir := filepath.Join(te.dir, "made")
	te.extra = []string{"RESTRACK_FULL_WAIT_US=50000"}
	res := te.run(prog, dir)
	require.NoError(t, res.err, res.stderr)
	assert.Contains(t, res.stdout, "RETURNED 0 errno=4242", "mkdir returned, errno as it left it")
	assert.Contains(t, res.stdout, "CANCELLED", "the program's own cancellation point acted")
	assert.DirExists(t, dir)
	after := te.reader.Counters()
	assert.Greater(t, after.DroppedFullRecords, before.DroppedFullRecords, "the lost record is counted")
}
