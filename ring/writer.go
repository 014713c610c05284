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
// reservation, publication and drop rules. Safe for concurrent use.
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
	wait := time.Duration(m.hdr.FullWaitNs)
	if wait == 0 {
		wait = DefaultFullWait
	}
	return &Writer{m: m, fullWait: wait}, nil
}

// Close unmaps the ring.
func (w *Writer) Close() error { return w.m.close() }

// consumerStale matches RT_CONSUMER_STALE_NS in ring_producer.c.
const consumerStale = 2 * time.Second

// Append publishes one record (Pos is ignored; TimeNs 0 means now).
func (w *Writer) Append(rec *Record) error {
	m := w.m
	h := m.hdr
	l := uint64(recordHeaderSize + len(rec.Str1) + len(rec.Str2) + len(rec.Str3) + 3)
	if l > MaxRecordSize || len(rec.Str1) > 0xffff || len(rec.Str2) > 0xffff || len(rec.Str3) > 0xffff {
		atomic.AddUint64(&h.DroppedTooBigRecords, 1)
		atomic.AddUint64(&h.DroppedTooBigBytes, l)
		return ErrDropped
	}
	now := rec.TimeNs
	if now == 0 {
		now = monotonicNs()
	}
	k := (l + SlotSize - 1) >> SlotShift
	var waitStart time.Time
	backoff := time.Microsecond
	var t, head uint64
	for {
		t = atomic.LoadUint64(&h.Tail)
		// Acquire pairs with the consumer's release of Head.
		head = atomic.LoadUint64(&h.Head)
		if t-head <= m.nslots && t+k-head <= m.nslots {
			if atomic.CompareAndSwapUint64(&h.Tail, t, t+k) {
				break
			}
			continue
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
	if testAfterReserve != nil {
		testAfterReserve(t, k)
	}
	rh := m.recordAt(t)
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
	off := t<<SlotShift + recordHeaderSize
	for _, s := range [3][]byte{rec.Str1, rec.Str2, rec.Str3} {
		w.copyIn(off, s)
		off += uint64(len(s))
		m.data[off&(m.dataSize-1)] = 0
		off++
	}
	// Release: the record is complete before the stamp matches.
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&rh.Stamp)), stamp(t))

	hw := m.nslots * HighWaterPercent / 100
	if t-head < hw && t+k-head >= hw {
		w.m.ringDoorbell()
	}
	return nil
}

func (w *Writer) dropFull(l uint64) error {
	atomic.AddUint64(&w.m.hdr.DroppedFullRecords, 1)
	atomic.AddUint64(&w.m.hdr.DroppedFullBytes, l)
	return ErrDropped
}

func (w *Writer) copyIn(off uint64, s []byte) {
	at := off & (w.m.dataSize - 1)
	n := copy(w.m.data[at:], s)
	if n < len(s) {
		copy(w.m.data, s[n:])
	}
}

// testAfterReserve parks a producer between reserving and publishing (tests).
var testAfterReserve func(pos, slots uint64)
