package store

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/ring"
)

// The store's own encodings (event chunks, aggregate deltas) come back from
// disk, where a bad sector or a hand edit can change them: decoding any
// bytes must fail cleanly, never panic or loop.
func FuzzDecodeChunk(f *testing.F) {
	rows := []eventRow{
		{time: 100, proc: 1, ppid: 1, tid: 7, op: ring.OpOpenat, access: ring.AccessWrite, flags: 0o1101, mode: 0o644, result: 3, path: 5},
		{time: 90, proc: 2, ppid: -1, tid: 8, op: ring.OpRename, access: ring.AccessWrite, result: -2, rflags: 8, path: 5, path2: 6},
	}
	f.Add(encodeChunk(nil, rows), int64(2))
	f.Add([]byte{}, int64(0))
	f.Fuzz(func(t *testing.T, b []byte, n int64) {
		if n < 0 || n > 1<<16 {
			return
		}
		var got []eventRow
		err := decodeChunk(b, n, func(e *eventRow) error { got = append(got, *e); return nil })
		if err == nil {
			require.Len(t, got, int(n), "a chunk that decodes holds exactly n events")
		}
	})
}

func FuzzDecodeDelta(f *testing.F) {
	f.Add(appendDeltaBytes(nil, aggKey{proc: 1, file: 2, op: ring.OpOpen, write: true}, aggVal{count: 3, failures: 1, first: 5, last: 9}))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = decodeDelta(b, func(aggKey, aggVal) {})
	})
}

func TestChunkRoundTrip(t *testing.T) {
	rows := []eventRow{
		{time: 1 << 62, proc: 1 << 40, ppid: -5, tid: 1<<31 - 1, op: ring.OpProcExit, access: 2, flags: 1<<32 - 1, mode: 7, result: -1 << 31, rflags: 0xffff, path: 9, path2: 0},
		{time: 3, proc: 1, op: ring.OpOpen},
	}
	var got []eventRow
	require.NoError(t, decodeChunk(encodeChunk(nil, rows), 2, func(e *eventRow) error { got = append(got, *e); return nil }))
	require.Equal(t, rows, got)
	require.Error(t, decodeChunk(encodeChunk(nil, rows), 3, func(*eventRow) error { return nil }), "too few events")
	require.Error(t, decodeChunk(encodeChunk(nil, rows), 1, func(*eventRow) error { return nil }), "bytes left over")
}
