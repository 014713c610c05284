package collector

import (
	"fmt"
	"time"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/ring"
)

// Source is where records come from. The collector calls it from one
// goroutine.
type Source interface {
	// Info names the source; its ID keys the resume position in the store.
	Info() store.SourceInfo
	// Resume continues after pos, the end of the last committed chunk.
	Resume(pos uint64) error
	// Wait blocks until records are likely ready or interval passes.
	Wait(interval time.Duration)
	// Next returns what is ready without blocking. The chunk is valid until
	// the next call; an empty chunk (End == Start) means nothing was ready.
	Next() (*Chunk, error)
	// Ack says the chunk is durable: its space may be reused.
	Ack(c *Chunk)
	// Counters reports the producer-side losses (cumulative) and the fill.
	Counters() SourceCounters
	Close() error
}

// Chunk is one drained batch.
type Chunk struct {
	Records    []ring.Record
	Start, End uint64 // source positions; End is where the next chunk starts
	Bytes      uint64
	Abandoned  uint64
	Corrupted  uint64
	// Drained: the chunk took everything the source had ready; the
	// collector waits for its interval (or the doorbell) before it drains
	// again. A source that cannot tell leaves it false and is drained
	// again at once while it progresses.
	Drained bool
}

// Progressed reports whether the chunk moved the source position.
func (c *Chunk) Progressed() bool { return c.End != c.Start || len(c.Records) > 0 }

// SourceCounters are the source's own counters.
type SourceCounters struct {
	DroppedFull, DroppedTooBig uint64 // cumulative, counted by producers
	UsedBytes, SizeBytes       uint64 // fill, when the source has one
	FullWaits                  uint64
	ProducerErrors             uint64 // the shim's own failures (ring header), when the source has them
}

// Default batch limits: large enough that one drain empties a default ring
// (16 MiB of 64-byte slots is 256 Ki slots), small enough that a commit
// stays well under the drain interval's order of magnitude.
const (
	DefaultBatchRecords = 32 * 1024
	DefaultBatchBytes   = 8 << 20
)

// RingSource drains a shared-memory ring.
type RingSource struct {
	r     *ring.Reader
	info  store.SourceInfo
	b     *ring.Batch
	chunk Chunk
}

// OpenRing opens the ring at path as a source. The ring must exist.
func OpenRing(path string, opts ring.Options) (*RingSource, error) {
	r, err := ring.Open(path, opts)
	if err != nil {
		return nil, err
	}
	return &RingSource{r: r, b: ring.NewBatch(DefaultBatchRecords, DefaultBatchBytes),
		info: store.SourceInfo{ID: r.RingID(), Kind: "ring", Path: r.Path()}}, nil
}

// Reader exposes the underlying ring reader (tests, metrics).
func (s *RingSource) Reader() *ring.Reader { return s.r }

// Info implements Source.
func (s *RingSource) Info() store.SourceInfo { return s.info }

// Resume implements Source: records before pos are already in the store,
// so they are skipped and their slots freed.
func (s *RingSource) Resume(pos uint64) error {
	c := s.r.Counters()
	switch {
	case pos <= s.r.Cursor():
		// Records up to the ring's head were released by a collector
		// writing another store: they are not ours to read again.
		return nil
	case pos > c.Tail:
		return fmt.Errorf("resume ring %s: the store has committed up to position %d but the ring ends at %d: "+
			"this store's history is not this ring's; use another -store or a new -ring", s.info.Path, pos, c.Tail)
	}
	if err := s.r.Seek(pos); err != nil {
		return fmt.Errorf("resume ring at the store's position: %w", err)
	}
	s.r.Release(pos)
	return nil
}

// Wait implements Source.
func (s *RingSource) Wait(interval time.Duration) { s.r.Wait(interval) }

// Wake cuts a Wait short (it rings the ring's doorbell). Safe from any
// goroutine while the source is open.
func (s *RingSource) Wake() { s.r.Wake() }

// AboveHighWater reports whether the ring is past its high-water mark.
func (s *RingSource) AboveHighWater() bool { return s.r.AboveHighWater() }

// Next implements Source.
func (s *RingSource) Next() (*Chunk, error) {
	s.r.Drain(s.b)
	s.chunk = Chunk{
		Records: s.b.Records, Start: s.b.Start, End: s.b.End, Bytes: s.b.Bytes,
		Abandoned: s.b.Abandoned, Corrupted: s.b.Corrupted, Drained: !s.b.Full,
	}
	return &s.chunk, nil
}

// Ack implements Source.
func (s *RingSource) Ack(c *Chunk) { s.r.Release(c.End) }

// Counters implements Source.
func (s *RingSource) Counters() SourceCounters {
	c := s.r.Counters()
	return SourceCounters{
		DroppedFull: c.DroppedFullRecords, DroppedTooBig: c.DroppedTooBigRecords,
		UsedBytes: c.UsedBytes, SizeBytes: c.DataSize, FullWaits: c.FullWaits,
		ProducerErrors: c.ProducerErrors,
	}
}

// Close implements Source.
func (s *RingSource) Close() error { return s.r.Close() }
