package ring

import (
	"errors"
	"sync/atomic"
	"time"
	"unsafe"
)

// ErrDropped: the record was not appended (ring full for the whole bounded
// wait, or too big); it was counted in the header.
var ErrDropped = errors.New("ring: record dropped")

// Writer is a Go producer, the twin of libcshim/ring_producer.c: same
// sub-ring choice fallback, reservation, publication and drop rules (the
// tests hold the two to the same records). Safe for concurrent use.
type Writer struct {
	m        *mapping
	fullWait time.Duration
}

// OpenWriter maps an existing ring for appending.
func OpenWriter(path string) (*Writer, error) {
	m, err := mapRing(path)
	if err != nil {
		return nil, err
	}
	wait := time.Duration(m.fullWait)
	if wait == 0 {
		wait = DefaultFullWait
	}
	atomic.AddUint64(&m.hdr.Attached, 1)
	return &Writer{m: m, fullWait: wait}, nil
}

// Close unmaps the ring.
func (w *Writer) Close() error { return w.m.close() }

// Counters snapshots the ring header's counters.
func (w *Writer) Counters() Counters { return w.m.counters() }

// consumerStale matches RT_CONSUMER_STALE_NS in ring_producer.c.
const consumerStale = 2 * time.Second

// pickSub is rt_producer_pick_sub without a CPU number: Go cannot tell
// which CPU a goroutine runs on, so the thread id hash picks.
func (w *Writer) pickSub(tid int32) uint32 {
	return (uint32(tid) * 2654435761) >> 16 & (w.m.nsub - 1)
}

// Append publishes one record (Pos and Sub are ignored; TimeNs 0 means
// now, read after the reservation as the C producer does).
func (w *Writer) Append(rec *Record) error { return w.appendFrom(w.pickSub(rec.TID), rec) }

// appendFrom appends trying sub-ring first before the others.
func (w *Writer) appendFrom(first uint32, rec *Record) error {
	m := w.m
	h := m.hdr
	l := uint64(recordHeaderSize + len(rec.Str1) + len(rec.Str2) + len(rec.Str3) + 3)
	if l > MaxRecordSize || len(rec.Str1) > 0xffff || len(rec.Str2) > 0xffff || len(rec.Str3) > 0xffff {
		atomic.AddUint64(&h.DroppedTooBigRecords, 1)
		atomic.AddUint64(&h.DroppedTooBigBytes, l)
		return ErrDropped
	}
	k := (l + SlotSize - 1) >> SlotShift
	var waitStart time.Time
	backoff := time.Microsecond
	for {
		for i := uint32(0); i < m.nsub; i++ {
			sub := (first + i) & (m.nsub - 1)
			if t, head, ok := w.reserve(sub, k); ok {
				w.commit(sub, t, head, k, l, rec)
				return nil
			}
		}
		if waitStart.IsZero() {
			atomic.AddUint64(&h.FullWaits, 1)
			waitStart = time.Now()
			beat := atomic.LoadUint64(&h.HeartbeatNs)
			if atomic.LoadUint64(&h.ConsumerPID) == 0 || monotonicNs() >= beat+uint64(consumerStale) {
				return w.dropFull(l)
			}
		} else if time.Since(waitStart) >= w.fullWait {
			return w.dropFull(l)
		}
		// Sleep, not spin: the consumer needs the CPU (see ring_producer.c).
		time.Sleep(backoff)
		if backoff < 256*time.Microsecond {
			backoff *= 2
		}
	}
}

// reserve takes k slots of sub-ring sub, retrying lost races; false when
// the sub-ring is full (or its head and tail are inconsistent).
func (w *Writer) reserve(sub uint32, k uint64) (t, head uint64, ok bool) {
	s := &w.m.subs[sub]
	for {
		t = atomic.LoadUint64(&s.Tail)
		// Acquire pairs with the consumer's release of Head.
		head = atomic.LoadUint64(&s.Head)
		if t-head > w.m.subSlots-k {
			return 0, 0, false
		}
		if atomic.CompareAndSwapUint64(&s.Tail, t, t+k) {
			return t, head, true
		}
	}
}

func (w *Writer) commit(sub uint32, t, head, k, l uint64, rec *Record) {
	m := w.m
	if testAfterReserve != nil {
		testAfterReserve(t, k)
	}
	now := rec.TimeNs
	if now == 0 {
		now = monotonicNs()
	}
	rh := m.recordAt(sub, t)
	rh.Len = uint32(l)
	rh.Type = rec.Type
	rh.Access = rec.Access
	rh.Op = uint16(rec.Op)
	rh.TimeNs = now
	rh.StartNs = rec.StartNs
	rh.PID, rh.TID, rh.PPID, rh.Result = rec.PID, rec.TID, rec.PPID, rec.Result
	rh.Flags, rh.Mode = rec.Flags, rec.Mode
	rh.Len1, rh.Len2, rh.Len3 = uint16(len(rec.Str1)), uint16(len(rec.Str2)), uint16(len(rec.Str3))
	rh.RFlags = rec.RFlags
	base := uint64(sub) * m.subSize
	mask := m.subSize - 1
	off := t<<SlotShift + recordHeaderSize
	for _, s := range [3][]byte{rec.Str1, rec.Str2, rec.Str3} {
		at := off & mask
		n := copy(m.data[base+at:base+m.subSize], s)
		copy(m.data[base:], s[n:])
		off += uint64(len(s))
		m.data[base+off&mask] = 0
		off++
	}
	// Release: the record is complete before the stamp matches.
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&rh.Stamp)), stamp(t))

	hw := m.subSlots * HighWaterPercent / 100
	if t-head < hw && t+k-head >= hw {
		m.ringDoorbell()
	}
}

func (w *Writer) dropFull(l uint64) error {
	atomic.AddUint64(&w.m.hdr.DroppedFullRecords, 1)
	atomic.AddUint64(&w.m.hdr.DroppedFullBytes, l)
	return ErrDropped
}

// testAfterReserve parks a producer between reserving and publishing (tests).
var testAfterReserve func(pos, slots uint64)
