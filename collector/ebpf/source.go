package ebpf

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/restrack/restrack/collector"
	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/ring"
)

// SourceKind is the store's name for records of the eBPF mode.
const SourceKind = "ebpf"

// sourceBatch bounds one chunk: a drain interval's worth of events at
// full speed, so one commit stays short.
const sourceBatch = 16 * 1024

// Source feeds a Tracer's records to a collector, like the ring's source,
// so they land in the same store with source kind "ebpf".
type Source struct {
	t     *Tracer
	info  store.SourceInfo
	buf   []ring.Record
	chunk collector.Chunk
	pos   uint64 // records read so far: the chunk positions
}

var _ collector.Source = (*Source)(nil)

// NewSource starts a tracer with opts and wraps it as a collector source.
func NewSource(opts Options) (*Source, error) {
	t, err := Start(opts)
	if err != nil {
		return nil, err
	}
	// A BPF ring buffer has no identity that outlives the tracer: every
	// tracer is a new source, never resumed.
	var id [8]byte
	_, _ = rand.Read(id[:])
	return &Source{
		t: t,
		info: store.SourceInfo{
			ID:   binary.LittleEndian.Uint64(id[:]),
			Kind: SourceKind,
			Path: fmt.Sprintf("bpf:process tree of %d", opts.PID),
		},
		buf: make([]ring.Record, sourceBatch),
	}, nil
}

// Tracer is the source's tracer (stop it, read its counters).
func (s *Source) Tracer() *Tracer { return s.t }

// Info implements collector.Source.
func (s *Source) Info() store.SourceInfo { return s.info }

// Resume implements collector.Source. A tracer's records are never in a
// store before it starts, so only position 0 makes sense.
func (s *Source) Resume(pos uint64) error {
	if pos != s.pos {
		return fmt.Errorf("resume eBPF source at %d: a new tracer starts at %d", pos, s.pos)
	}
	return nil
}

// Wait implements collector.Source.
func (s *Source) Wait(interval time.Duration) { s.t.Wait(interval) }

// Next implements collector.Source.
func (s *Source) Next() (*collector.Chunk, error) {
	n, err := s.t.Read(s.buf)
	if err != nil && !errors.Is(err, ErrStopped) {
		return nil, err
	}
	s.chunk = collector.Chunk{Records: s.buf[:n], Start: s.pos, End: s.pos + uint64(n)}
	s.pos += uint64(n)
	return &s.chunk, nil
}

// Ack implements collector.Source: the records left the BPF ring when they
// were read, so there is nothing to release.
func (s *Source) Ack(*collector.Chunk) {}

// Counters implements collector.Source. Kernel-side losses count as
// DroppedFull: the record existed and found no room.
func (s *Source) Counters() collector.SourceCounters {
	c, _ := s.t.Counters()
	return collector.SourceCounters{
		DroppedFull: c.Lost(),
		UsedBytes:   uint64(s.t.Pending()),
		SizeBytes:   uint64(s.t.RingSize()),
	}
}

// Close implements collector.Source.
func (s *Source) Close() error { return s.t.Close() }
