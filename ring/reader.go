package ring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// DefaultAbandonTimeout is how long a reserved slot may stay unpublished
// before the reader presumes its producer dead and skips it. A live producer
// publishes within microseconds; only a killed or long-stopped one takes this
// long.
const DefaultAbandonTimeout = 250 * time.Millisecond

// Options tune a Reader.
type Options struct {
	AbandonTimeout time.Duration // 0 = DefaultAbandonTimeout
	// now replaces the clock in tests.
	now func() time.Time
}

// Reader is the ring's single consumer. It is not safe for concurrent use.
type Reader struct {
	m              *mapping
	cursor         uint64 // next slot to read; head ≤ cursor ≤ tail
	abandonTimeout time.Duration
	now            func() time.Time

	// A stall observation: every slot below stallTail was reserved at or
	// before stallSince. An unpublished slot below it, once the timeout has
	// passed, belongs to a dead (or long-stopped) producer.
	stallValid bool
	stallTail  uint64
	stallSince time.Time
	// lastAbandoned is one past the last slot skipped as abandoned, so that a
	// run of skipped slots counts as one abandoned record.
	lastAbandoned uint64
	pending       counts // published to the header at Release
}

// Open maps an existing ring and validates its header. The reader resumes at
// the ring's head: whatever an earlier consumer did not release is read again.
func Open(path string, opts Options) (*Reader, error) {
	m, err := mapRing(path)
	if err != nil {
		return nil, err
	}
	r := &Reader{m: m, abandonTimeout: opts.AbandonTimeout, now: opts.now, lastAbandoned: ^uint64(0)}
	if r.abandonTimeout <= 0 {
		r.abandonTimeout = DefaultAbandonTimeout
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.cursor = atomic.LoadUint64(&m.hdr.Head)
	atomic.StoreUint64(&m.hdr.ConsumerPID, uint64(os.Getpid()))
	atomic.StoreUint64(&m.hdr.HeartbeatNs, monotonicNs())
	return r, nil
}

// Close unmaps the ring and tells producers no consumer is attached, so they
// stop waiting on a full ring. Unreleased records stay for the next reader.
func (r *Reader) Close() error {
	if r.m.hdr != nil {
		atomic.StoreUint64(&r.m.hdr.ConsumerPID, 0)
	}
	return r.m.close()
}

// Path is the ring file.
func (r *Reader) Path() string { return r.m.path }

// RingID tells one creation of the ring file from another.
func (r *Reader) RingID() uint64 { return r.m.hdr.RingID }

// Cursor is the position the next Drain starts at.
func (r *Reader) Cursor() uint64 { return r.cursor }

// Counters snapshots the header counters.
func (r *Reader) Counters() Counters { return r.m.counters() }

// Seek moves the cursor forward to pos, which must lie in [cursor, tail] and
// be a record boundary the caller learnt from an earlier Batch.End (a
// collector restarting after persisting records it had not yet released).
func (r *Reader) Seek(pos uint64) error {
	tail := atomic.LoadUint64(&r.m.hdr.Tail)
	if pos < r.cursor || pos > tail {
		return fmt.Errorf("ring %s: seek to %d outside [%d, %d]", r.m.path, pos, r.cursor, tail)
	}
	r.cursor = pos
	return nil
}

// Release frees every slot before pos (a Batch.End) for producers. Call it
// once the records are safe elsewhere.
//
// The header's consumer counters (consumed, abandoned, corrupted) move here,
// not at Drain: a consumer killed between the two leaves the records to its
// successor, which must not count them a second time. They are published
// when everything drained so far is released, as a collector does after
// each commit.
func (r *Reader) Release(pos uint64) {
	if pos > r.cursor {
		pos = r.cursor
	}
	// Release order: our copies out of these slots happen before a producer
	// (which loads head with acquire) reuses them.
	if pos > atomic.LoadUint64(&r.m.hdr.Head) {
		atomic.StoreUint64(&r.m.hdr.Head, pos)
	}
	if pos == r.cursor {
		r.publishCounters()
	}
}

// Wait sleeps until the drain interval passes or a producer crosses the
// high-water mark, whichever comes first. It never spins: a spinning reader
// bounces the producers' cache lines.
func (r *Reader) Wait(interval time.Duration) {
	seen := atomic.LoadUint32(&r.m.hdr.Doorbell)
	if r.usedSlots() >= r.m.nslots*HighWaterPercent/100 {
		return
	}
	r.m.sleepOnDoorbell(seen, interval)
}

func (r *Reader) usedSlots() uint64 {
	used := atomic.LoadUint64(&r.m.hdr.Tail) - atomic.LoadUint64(&r.m.hdr.Head)
	if used > r.m.nslots {
		return r.m.nslots
	}
	return used
}

// Drain copies every published record from the cursor on into b (replacing
// its contents) until b is full or it reaches a slot not yet published, and
// advances the cursor. It never blocks and allocates nothing per record.
// Records failing validation are skipped and counted (b.Corrupted); slots
// reserved but unpublished for longer than the abandon timeout are skipped
// and counted (b.Abandoned). Slots are not freed until Release.
func (r *Reader) Drain(b *Batch) {
	b.reset(r.cursor)
	m := r.m
	tail := atomic.LoadUint64(&m.hdr.Tail)
	if tail-r.cursor > m.nslots {
		// No producer may reserve beyond head+nslots, and cursor ≥ head: a
		// tail outside that window was written by something else. Read no
		// further than a full ring.
		b.BadTail = true
		tail = r.cursor + m.nslots
		if atomic.LoadUint64(&m.hdr.Tail) < r.cursor {
			tail = r.cursor
		}
	}
	pos := r.cursor
	for pos < tail && len(b.Records) < cap(b.Records) {
		// Acquire pairs with the producer's release store of the stamp.
		if atomic.LoadUint64(m.stampAt(pos)) != stamp(pos) {
			if !r.abandonDue(pos, tail) {
				break
			}
			r.countAbandoned(b, pos)
			pos++
			continue
		}
		rh := *m.recordAt(pos) // one copy: a hostile writer cannot change it under the checks
		n, ok := r.decode(b, pos, tail, &rh)
		if n == 0 {
			break // batch full
		}
		if !ok {
			b.Corrupted++
			b.CorruptedBytes += n << SlotShift
		}
		pos += n
	}
	r.cursor = pos
	b.End = pos
	r.pending.add(b)
	atomic.StoreUint64(&r.m.hdr.HeartbeatNs, monotonicNs())
}

// decode validates the record at pos and appends it to b. It returns the
// number of slots to skip (0: b has no room) and whether the record was good.
func (r *Reader) decode(b *Batch, pos, tail uint64, rh *RecordHeader) (uint64, bool) {
	l := uint64(rh.Len)
	if l < recordHeaderSize+3 || l > MaxRecordSize {
		return 1, false
	}
	slots := (l + SlotSize - 1) >> SlotShift
	if slots > tail-pos {
		return 1, false
	}
	if !checkHeader(rh) {
		return slots, false
	}
	strBytes := l - recordHeaderSize
	if uint64(cap(b.buf)-len(b.buf)) < strBytes {
		return 0, false
	}
	start := len(b.buf)
	b.buf = b.buf[:start+int(strBytes)]
	r.copyOut(b.buf[start:], (pos<<SlotShift)+recordHeaderSize)
	b.Records = append(b.Records, Record{})
	rec := &b.Records[len(b.Records)-1]
	if !fill(rec, rh, b.buf[start:]) {
		b.Records = b.Records[:len(b.Records)-1]
		b.buf = b.buf[:start]
		return slots, false
	}
	rec.Pos = pos
	b.Bytes += l
	return slots, true
}

// checkHeader validates what every transport must agree on: lengths that
// add up within bounds, a known type and access class.
func checkHeader(rh *RecordHeader) bool {
	l := uint64(rh.Len)
	return l >= recordHeaderSize+3 && l <= MaxRecordSize &&
		recordHeaderSize+uint64(rh.Len1)+uint64(rh.Len2)+uint64(rh.Len3)+3 == l &&
		(rh.Type == TypeEvent || rh.Type == TypeProc) && rh.Access <= AccessLookup
}

// fill sets rec from a checked header and its strings s (len(s) == Len-64),
// aliasing s. It reports false when the terminators are not where the
// lengths say, or a path holds a NUL.
func fill(rec *Record, rh *RecordHeader, s []byte) bool {
	n1, n2, n3 := int(rh.Len1), int(rh.Len2), int(rh.Len3)
	if s[n1] != 0 || s[n1+1+n2] != 0 || s[n1+1+n2+1+n3] != 0 ||
		(rh.Type == TypeEvent && (bytes.IndexByte(s[:n1], 0) >= 0 || bytes.IndexByte(s[n1+1:n1+1+n2], 0) >= 0)) {
		return false
	}
	*rec = Record{
		Type:    rh.Type,
		Access:  rh.Access,
		Op:      Op(rh.Op),
		RFlags:  rh.RFlags,
		TimeNs:  rh.TimeNs,
		StartNs: rh.StartNs,
		PID:     rh.PID,
		TID:     rh.TID,
		PPID:    rh.PPID,
		Result:  rh.Result,
		Flags:   rh.Flags,
		Mode:    rh.Mode,
		Str1:    s[:n1:n1],
		Str2:    s[n1+1 : n1+1+n2 : n1+1+n2],
		Str3:    s[n1+1+n2+1 : n1+1+n2+1+n3 : n1+1+n2+1+n3],
	}
	return true
}

// ErrCorruptRecord: bytes that are not one valid record.
var ErrCorruptRecord = errors.New("corrupt record")

// DecodeRecord decodes one record laid out contiguously in b — header, then
// strings — as transports other than the ring carry it (the FIFO mode). It
// applies the ring's own validation; rec's strings alias b.
func DecodeRecord(b []byte, rec *Record) error {
	if len(b) < recordHeaderSize+3 {
		return fmt.Errorf("%w: %d bytes", ErrCorruptRecord, len(b))
	}
	le := binary.LittleEndian
	rh := RecordHeader{
		Len: le.Uint32(b[8:]), Type: b[12], Access: b[13], Op: le.Uint16(b[14:]),
		TimeNs: le.Uint64(b[16:]), StartNs: le.Uint64(b[24:]),
		PID: int32(le.Uint32(b[32:])), TID: int32(le.Uint32(b[36:])), PPID: int32(le.Uint32(b[40:])),
		Result: int32(le.Uint32(b[44:])), Flags: le.Uint32(b[48:]), Mode: le.Uint32(b[52:]),
		Len1: le.Uint16(b[56:]), Len2: le.Uint16(b[58:]), Len3: le.Uint16(b[60:]), RFlags: le.Uint16(b[62:]),
	}
	if int(rh.Len) != len(b) || !checkHeader(&rh) {
		return fmt.Errorf("%w: length %d, type %d, access %d do not describe %d bytes", ErrCorruptRecord, rh.Len, rh.Type, rh.Access, len(b))
	}
	if !fill(rec, &rh, b[recordHeaderSize:]) {
		return fmt.Errorf("%w: strings not NUL-terminated where their lengths say", ErrCorruptRecord)
	}
	return nil
}

// copyOut copies len(dst) bytes from free-running data offset off, wrapping.
func (r *Reader) copyOut(dst []byte, off uint64) {
	at := off & (r.m.dataSize - 1)
	n := copy(dst, r.m.data[at:])
	if n < len(dst) {
		copy(dst[n:], r.m.data)
	}
}

func (r *Reader) abandonDue(pos, tail uint64) bool {
	now := r.now()
	if r.stallValid && pos < r.stallTail {
		return now.Sub(r.stallSince) >= r.abandonTimeout
	}
	r.stallValid, r.stallTail, r.stallSince = true, tail, now
	return false
}

func (r *Reader) countAbandoned(b *Batch, pos uint64) {
	if pos != r.lastAbandoned {
		b.Abandoned++
	}
	b.AbandonedBytes += SlotSize
	r.lastAbandoned = pos + 1
}

// counts are consumer counters drained but not yet released.
type counts struct {
	consumed, consumedBytes   uint64
	abandoned, abandonedBytes uint64
	corrupted, corruptedBytes uint64
}

func (c *counts) add(b *Batch) {
	c.consumed += uint64(len(b.Records))
	c.consumedBytes += b.Bytes
	c.abandoned += b.Abandoned
	c.abandonedBytes += b.AbandonedBytes
	c.corrupted += b.Corrupted
	c.corruptedBytes += b.CorruptedBytes
}

func (r *Reader) publishCounters() {
	h, c := r.m.hdr, r.pending
	for _, f := range []struct {
		dst *uint64
		n   uint64
	}{
		{&h.ConsumedRecords, c.consumed}, {&h.ConsumedBytes, c.consumedBytes},
		{&h.AbandonedRecords, c.abandoned}, {&h.AbandonedBytes, c.abandonedBytes},
		{&h.CorruptedRecords, c.corrupted}, {&h.CorruptedBytes, c.corruptedBytes},
	} {
		if f.n > 0 {
			atomic.AddUint64(f.dst, f.n)
		}
	}
	r.pending = counts{}
}
