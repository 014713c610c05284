package collector

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/ring"
	"github.com/restrack/restrack/ring/fifo"
)

// fifoRecord encodes an event as the shim writes it in FIFO mode: the
// ring's record layout with a zero stamp, in one write.
func fifoRecord(pid int32, path string) []byte {
	n := 64 + len(path) + 3
	b := make([]byte, n)
	le := binary.LittleEndian
	le.PutUint32(b[8:], uint32(n))
	b[12], b[13] = ring.TypeEvent, ring.AccessRead
	le.PutUint16(b[14:], uint16(ring.OpOpenat))
	le.PutUint64(b[16:], 7)
	le.PutUint64(b[24:], 1)
	le.PutUint32(b[32:], uint32(pid))
	le.PutUint32(b[36:], uint32(pid))
	le.PutUint32(b[44:], 3)
	le.PutUint16(b[56:], uint16(len(path)))
	copy(b[64:], path)
	return b
}

func TestFifoSourceStoresEveryRecordWrittenBeforeTheStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	require.NoError(t, fifo.Create(path))
	src, err := openFifoBatch(path, 1000)
	require.NoError(t, err)
	defer src.Close()
	st := mustStore(t, t.TempDir(), store.Options{})
	c := New(src, st, Config{DrainInterval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	const n = 5000 // five batches: the reader waits for the collector
	for i := range n {
		_, err := w.Write(fifoRecord(42, fmt.Sprintf("/f/%d", i)))
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	cancel() // at once: the records may all still be in the pipe
	require.NoError(t, <-done)

	seen := map[string]bool{}
	require.NoError(t, st.Events(context.Background(), store.EventFilter{}, func(e *store.Event) error {
		assert.False(t, seen[e.Path], "%s stored twice", e.Path)
		seen[e.Path] = true
		return nil
	}))
	assert.Len(t, seen, n, "the final drain empties the pipe")
	assert.Equal(t, "fifo", src.Info().Kind)
}
