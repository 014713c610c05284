package collector

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/ring"
)

// MultiSource drains several rings through one collector: the per-uid rings
// the rendezvous hands out, which appear while the collector runs. Each
// chunk comes from one ring, and Info, Counters and Ack speak for that
// ring, so the store keeps a position and loss counters per ring (per uid)
// exactly as for a single ring; the rings take turns so that a busy uid
// cannot starve a quiet one.
//
// Rings are added from other goroutines (AddRing); everything else runs on
// the collector's goroutine, where a new ring is resumed at the position
// the store has for it before it is first drained.
type MultiSource struct {
	resume func(id uint64) (uint64, bool, error)
	logf   func(format string, args ...any)

	mu      sync.Mutex
	pending []*member
	all     []*member // every ring ever added, for RingUIDs
	wake    chan struct{}

	members []*member
	// cur is the ring of the chunk last returned, last the ring of the
	// chunk last acknowledged (the collector's baseline). Atomic: status
	// queries read them from other goroutines.
	cur, last atomic.Pointer[member]
	next      int
	idle      Chunk
}

type member struct {
	uid  uint32
	src  *RingSource
	info store.SourceInfo
	// Drop counters as last acknowledged: a change alone is worth a commit.
	ackedFull, ackedTooBig uint64
	broken                 bool
	// rested: this ring's last chunk took everything it had ready; it is
	// not drained again until every ring has had its turn (then the
	// collector waits for its interval), so a busy ring is drained in bulk
	// rather than as fast as commits go.
	rested bool
}

// NewMultiSource makes an empty multi-ring source. resume answers where the
// store's data of a ring ends (store.Store.Resume).
func NewMultiSource(resume func(id uint64) (uint64, bool, error), logf func(string, ...any)) *MultiSource {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &MultiSource{resume: resume, logf: logf, wake: make(chan struct{}, 1)}
}

// AddRing opens the ring at path, whose records are uid's, to be drained
// from the next Next on. Safe from any goroutine.
func (s *MultiSource) AddRing(uid uint32, path string) error {
	src, err := OpenRing(path, ring.Options{})
	if err != nil {
		return explainRingError(path, err)
	}
	m := &member{uid: uid, src: src, info: src.Info()}
	m.info.Kind = "ring"
	m.info.UID, m.info.UIDKnown = uid, true // the store records it per process
	s.mu.Lock()
	s.pending = append(s.pending, m)
	s.all = append(s.all, m)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// adopt resumes the rings added since the last call (collector goroutine).
func (s *MultiSource) adopt() {
	s.mu.Lock()
	add := s.pending
	s.pending = nil
	s.mu.Unlock()
	for _, m := range add {
		if s.resume != nil {
			pos, ok, err := s.resume(m.info.ID)
			if err == nil && ok {
				err = m.src.Resume(pos)
			}
			if err != nil {
				s.logf("ring of uid %d (%s): %v; draining it from its head", m.uid, m.info.Path, err)
			}
		}
		c := m.src.Counters()
		m.ackedFull, m.ackedTooBig = c.DroppedFull, c.DroppedTooBig
		s.members = append(s.members, m)
	}
}

// guard runs f on m, turning a fault on m's mapping into the removal of m:
// the ring's owner holds a writable descriptor of it and can shrink the
// file under us, which must cost that uid its trace, not the collector its
// life.
func (s *MultiSource) guard(m *member, f func()) (faulted bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			faulted = true
			m.broken = true
			s.logf("ring of uid %d (%s) faulted (%v): its file was shrunk; no longer draining it", m.uid, m.info.Path, r)
		}
	}()
	f()
	return false
}

func (s *MultiSource) dropBroken() {
	kept := s.members[:0]
	for _, m := range s.members {
		if m.broken {
			continue // its mapping is left alone: unmapping it may fault too
		}
		kept = append(kept, m)
	}
	s.members = kept
	if c := s.cur.Load(); c != nil && c.broken {
		s.cur.Store(nil)
	}
	if l := s.last.Load(); l != nil && l.broken {
		s.last.Store(nil)
	}
}

// Info implements Source: the ring of the current chunk.
func (s *MultiSource) Info() store.SourceInfo {
	if c := s.cur.Load(); c != nil {
		return c.info
	}
	return store.SourceInfo{Kind: "rings"}
}

// Resume implements Source. Each ring is resumed when it is added, at the
// store's position for it.
func (s *MultiSource) Resume(uint64) error { return nil }

// wakeCheck bounds how long the one ring's doorbell is slept on before
// Wait looks for a Wake (a collector told to stop, a ring added): with a
// 100 ms interval, sleeping it whole made every `restrack run` end up to
// 100 ms late.
const wakeCheck = 5 * time.Millisecond

// Wait implements Source: on the one ring's doorbell when there is one
// ring; else the interval. Either is cut short by Wake or a ring added.
func (s *MultiSource) Wait(interval time.Duration) {
	s.mu.Lock()
	pending := len(s.pending)
	s.mu.Unlock()
	if len(s.members) == 1 && pending == 0 {
		m := s.members[0]
		for end := time.Now().Add(interval); ; {
			step := min(time.Until(end), wakeCheck)
			if step <= 0 {
				return
			}
			t0 := time.Now()
			if s.guard(m, func() { m.src.Wait(step) }) {
				s.dropBroken()
				break
			}
			if time.Since(t0) < step/2 {
				return // the doorbell: producers crossed the high-water mark
			}
			select {
			case <-s.wake:
				return
			default:
			}
		}
	}
	// Several rings: no one doorbell to sleep on, so their fill is looked
	// at every wakeCheck. Sleeping the whole interval left a ring past its
	// high-water mark undrained for up to 100 ms: its producers waited,
	// or dropped.
	for end := time.Now().Add(interval); ; {
		for _, m := range s.members {
			var ready bool
			if !s.guard(m, func() { ready = m.src.AboveHighWater() }) && ready {
				return
			}
		}
		step := min(time.Until(end), wakeCheck)
		if step <= 0 {
			return
		}
		t := time.NewTimer(step)
		select {
		case <-s.wake:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Next implements Source: the next ring, in turn, with records ready or
// with losses not yet committed.
func (s *MultiSource) Next() (*Chunk, error) {
	s.adopt()
	var baseline *Chunk
	n := len(s.members)
	for i := 0; i < n; i++ {
		m := s.members[(s.next+i)%n]
		if m.rested && n > 1 {
			continue
		}
		var ch *Chunk
		var err error
		if s.guard(m, func() { ch, err = m.src.Next() }) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ring of uid %d: %w", m.uid, err)
		}
		var c SourceCounters
		if s.guard(m, func() { c = m.src.Counters() }) {
			continue
		}
		if ch.Progressed() || c.DroppedFull != m.ackedFull || c.DroppedTooBig != m.ackedTooBig {
			s.next = (s.next + i + 1) % n
			s.cur.Store(m)
			s.dropBroken()
			if n > 1 {
				// The collector stops at a drained chunk: with other
				// rings still to visit it must go on; this one rests.
				m.rested = ch.Drained
				ch.Drained = false
			}
			return ch, nil
		}
		if m == s.last.Load() {
			baseline = ch
		}
	}
	s.dropBroken()
	// Every ring has had its turn: the next round drains them all again.
	for _, m := range s.members {
		m.rested = false
	}
	// Nothing anywhere: an empty chunk of the ring the collector last
	// committed, whose counters it already has, so it commits nothing.
	if last := s.last.Load(); baseline != nil && last != nil {
		s.cur.Store(last)
		return baseline, nil
	}
	s.cur.Store(nil)
	s.idle = Chunk{}
	return &s.idle, nil
}

// Ack implements Source.
func (s *MultiSource) Ack(c *Chunk) {
	m := s.cur.Load()
	if m == nil {
		return
	}
	s.guard(m, func() {
		m.src.Ack(c)
		cs := m.src.Counters()
		m.ackedFull, m.ackedTooBig = cs.DroppedFull, cs.DroppedTooBig
	})
	s.last.Store(m)
	s.dropBroken()
}

// Counters implements Source: the current ring's.
func (s *MultiSource) Counters() SourceCounters {
	m := s.cur.Load()
	if m == nil {
		if m = s.last.Load(); m == nil {
			return SourceCounters{}
		}
	}
	var c SourceCounters
	s.guard(m, func() { c = m.src.Counters() })
	return c
}

// RingUIDs maps each ring's id to the uid whose records it holds.
func (s *MultiSource) RingUIDs() map[uint64]uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[uint64]uint32, len(s.all))
	for _, m := range s.all {
		out[m.info.ID] = m.uid
	}
	return out
}

// Close implements Source.
func (s *MultiSource) Close() error {
	s.mu.Lock()
	s.members = append(s.members, s.pending...)
	s.pending = nil
	s.mu.Unlock()
	var errs []error
	for _, m := range s.members {
		errs = append(errs, m.src.Close())
	}
	s.members = nil
	return errors.Join(errs...)
}

// Wake cuts a Wait short. Safe from any goroutine.
func (s *MultiSource) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
