package collector

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/ring"
	"github.com/restrack/restrack/ring/fifo"
)

// FifoSource reads the paper's transport, a named pipe carrying one record
// per write (RESTRACK_MODE=fifo), into the same ingest path as the ring. A
// goroutine reads records as they come (the pipe has no batching of its
// own) into one of two buffers; Next hands the full one over and the reader
// fills the other. A pipe keeps nothing across collectors, so positions
// only count records and a new FifoSource is a new source.
type FifoSource struct {
	r    *fifo.Reader
	info store.SourceInfo
	// probe is a second descriptor on the pipe, never read: FIONREAD on it
	// tells whether records still wait in the pipe, so a final drain does
	// not stop while the reader goroutine is behind.
	probe *os.File
	got   atomic.Uint64 // records the goroutine has taken out of the pipe
	batch int           // records per chunk

	mu      sync.Mutex
	cond    *sync.Cond // signalled when fill has records or room, or on close
	fill    *fifoBuf   // the reader goroutine appends here
	out     *fifoBuf   // returned by the last Next, owned by the collector
	pos     uint64
	corrupt uint64
	err     error // why the reader stopped
	closed  bool
	done    chan struct{}
	chunk   Chunk
}

type fifoBuf struct {
	recs  []ring.Record
	arena []byte
	bytes uint64
}

// OpenFifo opens the named pipe at path (made with fifo.Create) as a source.
func OpenFifo(path string) (*FifoSource, error) {
	r, err := fifo.Open(path)
	if err != nil {
		return nil, err
	}
	probe, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		r.Close()
		return nil, err
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	s := &FifoSource{r: r, probe: probe, info: store.SourceInfo{ID: binary.LittleEndian.Uint64(id[:]) | 1, Kind: "fifo", Path: path},
		fill: &fifoBuf{}, out: &fifoBuf{}, done: make(chan struct{}), batch: DefaultBatchRecords}
	s.cond = sync.NewCond(&s.mu)
	go s.read()
	return s, nil
}

// openFifoBatch is OpenFifo with a smaller batch (tests).
func openFifoBatch(path string, batch int) (*FifoSource, error) {
	s, err := OpenFifo(path)
	if err == nil {
		s.mu.Lock()
		s.batch = batch
		s.mu.Unlock()
	}
	return s, err
}

func (s *FifoSource) read() {
	defer close(s.done)
	var rec ring.Record
	for {
		err := s.r.Next(&rec)
		if err == nil {
			s.got.Add(1)
		}
		s.mu.Lock()
		if err != nil {
			if errors.Is(err, fifo.ErrCorrupt) {
				s.corrupt++
				s.mu.Unlock()
				continue
			}
			if !s.closed && !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				s.err = err
			}
			s.closed = true
			s.cond.Broadcast()
			s.mu.Unlock()
			return
		}
		// Back-pressure: a full buffer waits for the collector, and the
		// pipe fills up behind it, as the paper's design does.
		for len(s.fill.recs) >= s.batch && !s.closed {
			s.cond.Wait()
		}
		b := s.fill
		// Copy the strings out of the reader's buffer. Growing the arena
		// leaves earlier records' slices on the old array, still valid.
		b.arena = b.arena[:len(b.arena):len(b.arena)]
		for _, p := range []*[]byte{&rec.Str1, &rec.Str2, &rec.Str3} {
			start := len(b.arena)
			b.arena = append(b.arena, *p...)
			*p = b.arena[start:len(b.arena):len(b.arena)]
		}
		rec.Pos = s.pos
		s.pos++
		b.recs = append(b.recs, rec)
		b.bytes += uint64(64 + len(rec.Str1) + len(rec.Str2) + len(rec.Str3) + 3)
		if len(b.recs) == 1 {
			s.cond.Broadcast() // Wait only cares that records arrived
		}
		s.mu.Unlock()
	}
}

// Info implements Source.
func (s *FifoSource) Info() store.SourceInfo { return s.info }

// Resume implements Source: a pipe keeps nothing to resume.
func (s *FifoSource) Resume(uint64) error { return nil }

// Wait implements Source: until a record arrives or interval passes.
func (s *FifoSource) Wait(interval time.Duration) {
	deadline := time.Now().Add(interval)
	t := time.AfterFunc(interval, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer t.Stop()
	s.mu.Lock()
	for len(s.fill.recs) == 0 && !s.closed && time.Now().Before(deadline) {
		s.cond.Wait()
	}
	closed := s.closed
	s.mu.Unlock()
	if closed {
		time.Sleep(interval) // nothing will come: do not spin
	}
}

// behind reports whether records are in the pipe or in the goroutine's
// hands but not yet in the fill buffer. Called with s.mu held.
func (s *FifoSource) behind() bool {
	if s.got.Load() > s.pos {
		return true
	}
	n, err := unix.IoctlGetInt(int(s.probe.Fd()), ioctlFIONREAD)
	return err == nil && n > 0
}

// Next implements Source. The previous chunk's buffer is reused for the
// next records: the collector has committed it by now.
func (s *FifoSource) Next() (*Chunk, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.fill.recs) == 0 && s.err != nil {
		return nil, s.err
	}
	// An empty chunk tells the collector the source is drained: make sure
	// it is (a final drain depends on it), waiting a little for the reader.
	for deadline := time.Now().Add(time.Second); len(s.fill.recs) == 0 && !s.closed && s.behind() && time.Now().Before(deadline); {
		s.mu.Unlock()
		time.Sleep(100 * time.Microsecond)
		s.mu.Lock()
	}
	s.out.recs, s.out.arena, s.out.bytes = s.out.recs[:0], s.out.arena[:0], 0
	s.fill, s.out = s.out, s.fill
	s.cond.Broadcast() // room again
	start := s.pos - uint64(len(s.out.recs))
	s.chunk = Chunk{Records: s.out.recs, Start: start, End: s.pos, Bytes: s.out.bytes, Corrupted: s.corrupt}
	s.corrupt = 0
	return &s.chunk, nil
}

// Ack implements Source: the pipe has no space to free.
func (s *FifoSource) Ack(*Chunk) {}

// Counters implements Source. Drops in FIFO mode happen in the shim and
// are not counted anywhere the collector can see (one of the reasons the
// ring replaced the pipe).
func (s *FifoSource) Counters() SourceCounters { return SourceCounters{} }

// Close implements Source.
func (s *FifoSource) Close() error {
	s.mu.Lock()
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	err := s.r.Close()
	<-s.done
	s.probe.Close()
	return err
}
