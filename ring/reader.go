package ring

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DefaultAbandonTimeout is how long a reserved slot may stay unpublished
// before the reader presumes its producer dead and skips it. A live producer
// publishes within microseconds; only a killed or long-stopped one takes this
// long.
const DefaultAbandonTimeout = 250 * time.Millisecond

// orderSlackNs is taken off the drain's start time before it bounds what is
// still unread: the clock and the tail loads are not ordered to the
// nanosecond on every CPU.
const orderSlackNs = 200

// Options tune a Reader.
type Options struct {
	AbandonTimeout time.Duration // 0 = DefaultAbandonTimeout
	// now replaces the clock of the abandon timeout in tests.
	now func() time.Time
}

// Reader is the ring's single consumer: it holds an exclusive flock on the
// ring file for its life. It is not safe for concurrent use.
//
// Positions it hands out (Batch.Start/End, Cursor, Seek, Release) are cut
// ids: one cut names where the reader stood in every sub-ring after a
// drain. They increase by one per drain that moved, and the cut table in
// the ring file keeps the newest NCuts of them, so that a successor can
// seek to the cut its predecessor committed but did not release.
type Reader struct {
	f              *os.File // holds the flock
	m              *mapping
	abandonTimeout time.Duration
	now            func() time.Time

	subs     []subState
	cut      uint64 // the cut the next Drain starts at
	released uint64 // the cut every sub-ring's head stands at
	own      [NCuts]ownCut
	pending  counts // published to the header at Release

	picks  []pick // scratch: the records a drain delivers, by sub-ring
	runs   []int  // scratch: where each sub-ring's picks start
	heads  []int  // scratch: merge positions in those runs
	merged []pick // scratch: the picks in time order
	gen    uint32 // drains so far: tells an item's string copy of this batch from a stale one
	// copyBudget is how many more records this drain's scan copies the
	// strings of.
	copyBudget int
	// scanned counts record headers copied out of the ring: each record's
	// once, however many drains it waits for (a test holds it to that).
	scanned uint64
}

// tailHistory is how many recent tail reads a sub-ring remembers: a
// producer preempted between reserving and publishing for longer than that
// many drains holds back more than it must (never less).
const tailHistory = 64

type tailRead struct{ tail, t0 uint64 }

// subState is the reader's private view of one sub-ring.
type subState struct {
	cursor uint64 // next slot to read; head <= cursor <= tail
	head   uint64 // what this reader last released (the sub-ring's head)
	// frontier bounds what is unread: every record of this sub-ring the
	// reader has not delivered carries a time_ns >= frontier.
	frontier uint64
	// Recent drains' tail reads: a record at or beyond seen[k].tail was
	// reserved, then stamped, after seen[k].t0. A scan stopped at an
	// unpublished slot knows its records are at least as late as the latest
	// read of a tail at or below that slot.
	seen  [tailHistory]tailRead
	nseen uint64

	// A stall observation: every slot below stallTail was reserved at or
	// before stallSince. An unpublished slot below it, once the timeout has
	// passed, belongs to a dead (or long-stopped) producer.
	stallValid bool
	stallTail  uint64
	stallSince time.Time
	// lastAbandoned is one past the last slot skipped as abandoned, so that a
	// run of skipped slots counts as one abandoned record.
	lastAbandoned uint64

	// What lies scanned from cursor on, and how much of it a drain
	// delivers. Items a drain holds back (behind its cutoff, or beyond what
	// the batch holds) are kept for the next drain, which scans on from
	// scanEnd: behind a full ring, rescanning them every drain made the
	// drain's cost grow with the backlog, not with what it delivers.
	items     []item
	itemBuf   []item // the array items starts in once it is empty again
	scanEnd   uint64
	maxTime   uint64 // of the scanned records (an upper bound once some are delivered)
	nrec      uint64 // scanned records not yet delivered, and their string bytes
	nbytes    uint64
	candidate uint64 // frontier if everything scanned is delivered
	take      int
	// sorted: the scanned records' times never decrease in ring order (the
	// rule; a producer preempted between reserving and reading the clock
	// breaks it). Then a cutoff splits the sub-ring at its first record at
	// or above it, and nothing behind that needs looking at.
	sorted   bool
	lastTime uint64
}

// resetScan forgets what was scanned: the next scan starts at the cursor.
func (s *subState) resetScan() {
	if cap(s.items) > cap(s.itemBuf) {
		s.itemBuf = s.items[:0:cap(s.items)] // a larger array the scan grew: keep it
	}
	s.items, s.scanEnd = s.itemBuf[:0], s.cursor
	s.maxTime, s.nrec, s.nbytes = 0, 0, 0
	s.sorted, s.lastTime = true, 0
}

type itemKind uint8

const (
	itemRecord itemKind = iota
	itemCorrupt
	itemAbandoned
)

// item is one scanned record (its header copied once out of shared
// memory), or a run of slots to skip.
type item struct {
	rh    RecordHeader
	pos   uint64
	slots uint64
	str   int // offset of its strings in the batch's buffer; valid only when gen is the reader's
	kind  itemKind
	gen   uint32 // the drain that copied the strings (a held item's copy dies with its batch)
}

// ownCut is a cut this reader made or sought: its positions, kept
// privately so that releasing never trusts the shared cut table.
type ownCut struct {
	id  uint64
	pos []uint64
}

// BusyError: another consumer holds the ring.
type BusyError struct {
	Path string
	PID  uint64 // as the holder wrote it in the header; 0 if unknown
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("ring %s is already drained by collector pid %d: only one collector may drain a ring; stop that one or give this one another ring", e.Path, e.PID)
}

// Open maps an existing ring, validates its header and becomes its only
// consumer (flock; a second Open fails with *BusyError naming the holder).
// The reader resumes at the released cut: whatever an earlier consumer did
// not release is read again (Seek skips what a store already has).
func Open(path string, opts Options) (*Reader, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open ring %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &BusyError{Path: path, PID: holderPID(f)}
		}
		return nil, fmt.Errorf("lock ring %s: %w", path, err)
	}
	m, err := mapFile(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return newReader(f, m, opts), nil
}

// newReader is the consumer of the validated mapping m; f (nil in tests)
// holds its lock.
func newReader(f *os.File, m *mapping, opts Options) *Reader {
	r := &Reader{f: f, m: m, abandonTimeout: opts.AbandonTimeout, now: opts.now}
	if r.abandonTimeout <= 0 {
		r.abandonTimeout = DefaultAbandonTimeout
	}
	if r.now == nil {
		r.now = time.Now
	}
	h := m.hdr
	r.released = atomic.LoadUint64(&h.ReleasedCut)
	if last := atomic.LoadUint64(&h.LastCut); last < r.released || last-r.released >= NCuts {
		// Not a table any consumer wrote: nothing in it can be sought.
		atomic.StoreUint64(&h.LastCut, r.released)
	}
	r.cut = r.released
	r.subs = make([]subState, m.nsub)
	heads := make([]uint64, m.nsub)
	t0 := monotonicNs() - orderSlackNs
	for i := range r.subs {
		heads[i] = atomic.LoadUint64(&m.subs[i].Head)
		r.subs[i] = subState{cursor: heads[i], head: heads[i], lastAbandoned: ^uint64(0), nseen: 1}
		r.subs[i].resetScan()
		r.subs[i].seen[0] = tailRead{atomic.LoadUint64(&m.subs[i].Tail), t0}
	}
	r.own[r.cut%NCuts] = ownCut{id: r.cut, pos: heads}
	atomic.StoreUint64(&h.ConsumerPID, uint64(os.Getpid()))
	atomic.StoreUint64(&h.HeartbeatNs, monotonicNs())
	return r
}

// holderPID reads the consumer pid the lock holder stored in the header.
func holderPID(f *os.File) uint64 {
	var b [8]byte
	if _, err := f.ReadAt(b[:], int64(unsafe.Offsetof(Header{}.ConsumerPID))); err != nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b[:])
}

// Close unmaps the ring, tells producers no consumer is attached (so they
// stop waiting on a full ring) and gives up the consumer's lock.
// Unreleased records stay for the next reader.
func (r *Reader) Close() error {
	if r.m.hdr != nil {
		atomic.CompareAndSwapUint64(&r.m.hdr.ConsumerPID, uint64(os.Getpid()), 0)
	}
	err := r.m.close()
	if r.f != nil {
		if cerr := r.f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		r.f = nil
	}
	return err
}

// Path is the ring file.
func (r *Reader) Path() string { return r.m.path }

// RingID tells one creation of the ring file from another.
func (r *Reader) RingID() uint64 { return r.m.ringID }

// OwnerUID is the uid the collector created the ring for: records read from
// it are that uid's, whatever they claim.
func (r *Reader) OwnerUID() uint32 { return r.m.ownerUID }

// SubRings is the ring's number of sub-rings.
func (r *Reader) SubRings() int { return int(r.m.nsub) }

// Cursor is the cut the next Drain starts at.
func (r *Reader) Cursor() uint64 { return r.cut }

// Counters snapshots the header counters.
func (r *Reader) Counters() Counters { return r.m.counters() }

// Unread is the slots between the reader's cursors and the tails: records
// published or reserved that no Drain has delivered yet.
func (r *Reader) Unread() uint64 {
	var n uint64
	for i := range r.subs {
		tail := atomic.LoadUint64(&r.m.subs[i].Tail)
		if d := tail - r.subs[i].cursor; d <= r.m.subSlots {
			n += d
		}
	}
	return n
}

// Seek moves the cursor forward to cut pos, which must lie between the
// cursor and the newest cut in the ring's cut table: a collector restarting
// after committing records its predecessor had not yet released. The
// records between are skipped, and the consumer counters they carried (in
// the cut table) are kept, to be published at the next Release.
func (r *Reader) Seek(pos uint64) error {
	if pos == r.cut {
		return nil
	}
	last := atomic.LoadUint64(&r.m.hdr.LastCut)
	if pos < r.cut || pos > last || pos-r.released >= NCuts {
		return fmt.Errorf("ring %s: seek to %d outside [%d, %d]", r.m.path, pos, r.cut, last)
	}
	var sum counts
	final := make([]uint64, r.m.nsub)
	for id := r.cut + 1; id <= pos; id++ {
		e, ps := r.m.cutAt(id)
		if atomic.LoadUint64(&e.ID) != id {
			return fmt.Errorf("ring %s: cut %d is not in the cut table (overwritten or never completed)", r.m.path, id)
		}
		c := counts{
			consumed: atomic.LoadUint64(&e.ConsumedRecords), consumedBytes: atomic.LoadUint64(&e.ConsumedBytes),
			abandoned: atomic.LoadUint64(&e.AbandonedRecords), abandonedBytes: atomic.LoadUint64(&e.AbandonedBytes),
			corrupted: atomic.LoadUint64(&e.CorruptedRecords), corruptedBytes: atomic.LoadUint64(&e.CorruptedBytes),
		}
		// No drain consumes more than a ring's worth: larger counts are
		// not a consumer's.
		slots := r.m.dataSize >> SlotShift
		if c.consumed > slots || c.abandoned > slots || c.corrupted > slots ||
			c.consumedBytes > r.m.dataSize || c.abandonedBytes > r.m.dataSize || c.corruptedBytes > r.m.dataSize {
			return fmt.Errorf("ring %s: cut %d holds impossible counts", r.m.path, id)
		}
		sum.addCounts(c)
		for i := range final {
			final[i] = atomic.LoadUint64(&ps[i])
		}
	}
	for i, p := range final {
		s := &r.subs[i]
		if p < s.cursor || p-s.head > r.m.subSlots {
			return fmt.Errorf("ring %s: cut %d puts sub-ring %d at %d, outside [%d, %d]", r.m.path, pos, i, p, s.cursor, s.head+r.m.subSlots)
		}
	}
	for i, p := range final {
		r.subs[i].cursor = p
		r.subs[i].stallValid = false
		r.subs[i].resetScan()
	}
	r.cut = pos
	r.own[pos%NCuts] = ownCut{id: pos, pos: final}
	r.pending.addCounts(sum)
	return nil
}

// Release frees every slot before cut pos (a Batch.End) for producers. Call
// it once the records are safe elsewhere.
//
// The header's consumer counters (consumed, abandoned, corrupted) move here,
// not at Drain: a consumer killed between the two leaves the records to its
// successor, which must not count them a second time. They are published
// when everything drained so far is released, as a collector does after
// each commit.
func (r *Reader) Release(pos uint64) {
	if pos > r.cut {
		pos = r.cut
	}
	if pos > r.released {
		own := &r.own[pos%NCuts]
		if own.id != pos {
			return // not a cut this reader handed out
		}
		for i := range r.subs {
			s, p := &r.subs[i], own.pos[i]
			if p <= s.head {
				continue
			}
			// Release order: our copies out of these slots happen before a
			// producer (which loads head with acquire) reuses them. Only this
			// reader writes heads (it holds the lock): a failed CAS means a
			// stray write, which is overwritten and counted.
			if !atomic.CompareAndSwapUint64(&r.m.subs[i].Head, s.head, p) {
				atomic.StoreUint64(&r.m.subs[i].Head, p)
				atomic.AddUint64(&r.m.hdr.RepairedHeads, 1)
			}
			s.head = p
		}
		atomic.StoreUint64(&r.m.hdr.ReleasedCut, pos)
		r.released = pos
	}
	if pos == r.cut {
		r.publishCounters()
	}
}

// Wait sleeps until the drain interval passes or a producer crosses a
// sub-ring's high-water mark, whichever comes first. It never spins: a
// spinning reader bounces the producers' cache lines.
// AboveHighWater reports whether some sub-ring is past the high-water mark
// (what makes Wait return at once): a consumer that cannot sleep on this
// ring's doorbell polls it instead.
func (r *Reader) AboveHighWater() bool {
	hw := r.m.subSlots * HighWaterPercent / 100
	for i := range r.subs {
		if n, ok := r.m.used(i); ok && n >= hw {
			return true
		}
	}
	return false
}

// Wake ends a Wait early, as a producer crossing the high-water mark does.
// Safe from any goroutine until Close.
func (r *Reader) Wake() { r.m.ringDoorbell() }

func (r *Reader) Wait(interval time.Duration) {
	seen := atomic.LoadUint32(&r.m.hdr.Doorbell)
	if r.AboveHighWater() {
		return
	}
	r.m.sleepOnDoorbell(seen, interval)
}

// Drain copies published records of every sub-ring into b (replacing its
// contents) and advances the cursor to a new cut. It never blocks and
// allocates nothing per record once its scratch has grown.
//
// Order: records of one thread come out in the order that thread appended
// them, within a batch and across batches, even when the thread moved
// between sub-rings (CPUs). A drain delivers exactly the records stamped
// before a cutoff time C and holds the rest back: C is chosen so that no
// record still unread in any sub-ring can be older (each sub-ring's
// frontier, below), and a batch is sorted by time. A thread's records have
// increasing times, so an earlier one is never behind a later one.
//
// Records failing validation are skipped and counted (b.Corrupted); slots
// reserved but unpublished for longer than the abandon timeout are skipped
// and counted (b.Abandoned). Slots are not freed until Release.
func (r *Reader) Drain(b *Batch) {
	b.reset(r.cut)
	r.gen++
	m := r.m
	atomic.StoreUint64(&m.hdr.HeartbeatNs, monotonicNs())
	if r.cut+1-r.released >= NCuts {
		return // every cut-table entry holds an unreleased cut: Release first
	}
	t0 := monotonicNs() - orderSlackNs
	// Strings are copied during the scan only for as many records as the
	// batch can deliver: a record held back would have its copy thrown
	// away with the batch and copied again when delivered.
	r.copyBudget = cap(b.Records)
	for i := range r.subs {
		r.copyBudget -= int(r.subs[i].nrec)
	}
	for i := range r.subs {
		r.scan(b, uint32(i), t0)
	}
	r.cutoff(b)
	r.deliver(b)
	moved := false
	for i := range r.subs {
		s := &r.subs[i]
		if s.take > 0 {
			moved = true
		}
	}
	if moved {
		r.newCut(b)
	}
	b.End = r.cut
	r.pending.add(b)
}

// scan reads sub-ring i from its cursor to its tail: each published
// record's header copied once and checked, abandoned runs found. A tail no
// producer could have written (behind the cursor, or more than a ring ahead
// of the head) is set back to the end of what is published, and counted.
func (r *Reader) scan(b *Batch, i uint32, t0 uint64) {
	m, s := r.m, &r.subs[i]
	s.take = 0
	if h := atomic.LoadUint64(&m.subs[i].Head); h != s.head {
		// Only this reader writes heads: set a stray write back.
		if atomic.CompareAndSwapUint64(&m.subs[i].Head, h, s.head) {
			atomic.AddUint64(&m.hdr.RepairedHeads, 1)
		}
	}
	tail := atomic.LoadUint64(&m.subs[i].Tail)
	bad := tail < s.scanEnd || tail-s.head > m.subSlots
	end := tail
	if bad {
		end = s.head + m.subSlots // only what is published: no abandonment
		s.resetScan()
	}
	pos, waited := s.scanEnd, bad
	for pos < end {
		// Acquire pairs with the producer's release store of the stamp.
		if atomic.LoadUint64(m.stampAt(i, pos)) != stamp(pos) && (waited || !publishedSoon(m.stampAt(i, pos), pos)) {
			waited = true
			if bad || !r.abandonDue(s, pos, tail) {
				break
			}
			s.items = append(s.items, item{pos: pos, slots: 1, kind: itemAbandoned})
			pos++
			continue
		}
		s.items = append(s.items, item{pos: pos, rh: *m.recordAt(i, pos)}) // one copy: a hostile writer cannot change it under the checks
		r.scanned++
		it := &s.items[len(s.items)-1]
		l := uint64(it.rh.Len)
		it.slots = (l + SlotSize - 1) >> SlotShift
		switch {
		case l < recordHeaderSize+3 || l > MaxRecordSize || it.slots > end-pos:
			it.kind, it.slots = itemCorrupt, 1
		case !checkHeader(&it.rh):
			it.kind = itemCorrupt
		default:
			it.kind = itemRecord
			if it.rh.TimeNs < s.lastTime {
				s.sorted = false
			}
			s.lastTime = max(s.lastTime, it.rh.TimeNs)
			s.maxTime = max(s.maxTime, it.rh.TimeNs)
			s.nrec++
			s.nbytes += l - recordHeaderSize
			// The strings are copied now, right behind the header just
			// read: one pass over the ring's memory, not two.
			it.str = -1
			r.copyBudget--
			if n := int(l - recordHeaderSize); r.copyBudget >= 0 && cap(b.buf)-len(b.buf) >= n {
				it.str, it.gen = len(b.buf), r.gen
				b.buf = b.buf[:it.str+n]
				r.copyOut(b.buf[it.str:], i, (pos<<SlotShift)+recordHeaderSize)
			}
		}
		pos += it.slots
	}
	s.scanEnd = pos
	s.candidate = s.frontier
	switch {
	case bad:
		if atomic.CompareAndSwapUint64(&m.subs[i].Tail, tail, pos) {
			atomic.AddUint64(&m.hdr.RepairedTails, 1)
			b.BadTail = true
		}
		return
	case pos == tail:
		// Everything reserved before the tail was read is read: what comes
		// later is reserved after t0, and stamped after its reservation.
		s.candidate = max(s.frontier, t0)
	default:
		// Stopped at a slot reserved after some recent drain's tail read.
		for k := uint64(0); k < min(s.nseen, tailHistory); k++ {
			if e := s.seen[(s.nseen-1-k)%tailHistory]; e.tail <= pos {
				s.candidate = max(s.frontier, e.t0)
				break
			}
		}
	}
	s.seen[s.nseen%tailHistory] = tailRead{tail, t0}
	s.nseen++
}

// publishedSoon waits a moment for a live producer to publish slot pos: it
// stores the stamp within a few hundred nanoseconds of reserving, and a
// drain that gave up at once would, under load, nearly always stop at the
// tail and hold back everything stamped later.
func publishedSoon(p *uint64, pos uint64) bool {
	deadline := monotonicNs() + 2000
	for monotonicNs() < deadline {
		if atomic.LoadUint64(p) == stamp(pos) {
			return true
		}
	}
	return false
}

// key orders records for the cutoff: by time, ties broken by place.
type key struct {
	t   uint64
	sub uint32
	pos uint64
}

func (a key) less(b key) bool {
	if a.t != b.t {
		return a.t < b.t
	}
	if a.sub != b.sub {
		return a.sub < b.sub
	}
	return a.pos < b.pos
}

// cutoff chooses the drain's cutoff: below every sub-ring's frontier, below
// every record that must be held back behind a later-stamped one of its
// sub-ring, and, when that is more than b holds, lower still. It leaves each
// sub-ring's take (the prefix of its items to deliver) set, and b large
// enough for it.
func (r *Reader) cutoff(b *Batch) {
	if len(r.subs) == 1 {
		// One sub-ring is one FIFO: every thread's records are in order
		// in it already. Deliver what fits.
		s := &r.subs[0]
		var n, bytes uint64
		s.take = len(s.items)
		for j := range s.items {
			if it := &s.items[j]; it.kind == itemRecord {
				n++
				bytes += uint64(it.rh.Len) - recordHeaderSize
				if n > uint64(cap(b.Records)) || bytes > uint64(cap(b.buf)) {
					s.take, b.Full = j, true
					return
				}
			}
		}
		return
	}
	c := key{t: ^uint64(0)}
	for i := range r.subs {
		if f := (key{t: r.subs[i].candidate}); f.less(c) {
			c = f
		}
	}
	// The common case: everything scanned is older than the cutoff and
	// fits. Then every sub-ring's whole scan is delivered.
	var n, bytes uint64
	all := true
	for i := range r.subs {
		s := &r.subs[i]
		n, bytes = n+s.nrec, bytes+s.nbytes
		all = all && (s.nrec == 0 || s.maxTime < c.t)
	}
	if all && n <= uint64(cap(b.Records)) && bytes <= uint64(cap(b.buf)) {
		for i := range r.subs {
			r.subs[i].take = len(r.subs[i].items)
		}
		return
	}
	if n <= uint64(cap(b.Records)) && bytes <= uint64(cap(b.buf)) {
		r.settle(c)
		return
	}
	// Too much for b: walk the records in time order (a merge of the
	// sub-rings, each nearly sorted already) and stop at the first at or
	// above c or that does not fit; its key is the cutoff. One pass over
	// what is delivered, where sorting every key and searching for the
	// cutoff cost a settle per probe: that made a drain behind a full ring
	// cost microseconds per record, just when the collector must catch up.
	if r.fitCutoff(b, c) {
		b.Full = true
		return
	}
	// A record stamped late sits before earlier-stamped ones in its
	// sub-ring, and the cutoff that fits delivers nothing: deliver what the
	// unbounded cutoff settled on, and let b grow to hold it (at most what
	// the sub-rings hold).
	r.settle(c)
	if n, _ := r.taken(); n > uint64(cap(b.Records)) {
		b.Records = make([]Record, 0, n)
	}
	// (Strings the scan could not copy are copied, into a larger buffer,
	// when delivered.)
}

// fitCutoff sets the sub-rings' takes to the largest time-ordered delivery
// below c that fits b, and reports whether it delivers anything.
func (r *Reader) fitCutoff(b *Batch, c key) bool {
	next := r.heads[:0]
	for range r.subs {
		next = append(next, 0)
	}
	r.heads = next
	var n, bytes uint64
	stop := c
	for {
		best, bestKey := -1, key{}
		for i := range r.subs {
			s := &r.subs[i]
			for next[i] < len(s.items) && s.items[next[i]].kind != itemRecord {
				next[i]++
			}
			if next[i] == len(s.items) {
				continue
			}
			it := &s.items[next[i]]
			if k := (key{it.rh.TimeNs, uint32(i), it.pos}); best < 0 || k.less(bestKey) {
				best, bestKey = i, k
			}
		}
		if best < 0 || !bestKey.less(c) {
			break
		}
		it := &r.subs[best].items[next[best]]
		if n+1 > uint64(cap(b.Records)) || bytes+uint64(it.rh.Len)-recordHeaderSize > uint64(cap(b.buf)) {
			stop = bestKey
			break
		}
		n, bytes = n+1, bytes+uint64(it.rh.Len)-recordHeaderSize
		next[best]++
	}
	r.settle(stop)
	got, _ := r.taken()
	return got > 0
}

// taken counts the records, and their string bytes, that the sub-rings'
// takes deliver.
func (r *Reader) taken() (n, bytes uint64) {
	for i := range r.subs {
		s := &r.subs[i]
		for j := range s.items[:s.take] {
			if it := &s.items[j]; it.kind == itemRecord {
				n++
				bytes += uint64(it.rh.Len) - recordHeaderSize
			}
		}
	}
	return n, bytes
}

// settle lowers c until every sub-ring splits into a delivered prefix of
// records below c and a held suffix at or above it.
func (r *Reader) settle(c key) key {
	for changed := true; changed; {
		changed = false
		for i := range r.subs {
			s := &r.subs[i]
			s.take = len(s.items)
			for j := range s.items {
				it := &s.items[j]
				if it.kind != itemRecord {
					continue
				}
				k := key{it.rh.TimeNs, uint32(i), it.pos}
				if s.take == len(s.items) {
					if !k.less(c) {
						s.take = j
						if s.sorted {
							break // every later record is later still
						}
					}
				} else if k.less(c) {
					c, changed = k, true
				}
			}
		}
	}
	return c
}

// deliver decodes each sub-ring's prefix into b, in time order, and moves
// the cursors and frontiers past it. Items are visited as few times as
// possible: behind a full ring they no longer fit in the cache, and every
// pass over them costs a miss per record.
func (r *Reader) deliver(b *Batch) {
	picks := r.picks[:0]
	runs := r.runs[:0]
	withRecords, late := 0, 0
	for i := range r.subs {
		s := &r.subs[i]
		runs = append(runs, len(picks))
		for j := range s.items[:s.take] {
			it := &s.items[j]
			switch it.kind {
			case itemAbandoned:
				r.countAbandoned(s, b, it.pos)
			case itemCorrupt:
				b.Corrupted++
				b.CorruptedBytes += it.slots << SlotShift
			case itemRecord:
				picks = append(picks, pick{it: it, sub: uint32(i)})
				n := uint64(it.rh.Len) - recordHeaderSize
				s.nrec--
				s.nbytes -= n
				if it.str < 0 || it.gen != r.gen {
					late += int(n)
				}
			}
		}
		if len(picks) > runs[len(runs)-1] {
			withRecords++
		}
		if s.take == len(s.items) {
			s.cursor = s.scanEnd
			s.frontier = s.candidate
		} else {
			s.cursor = s.items[s.take].pos
			// What stays unread: the held records, and beyond them what
			// the candidate bounds.
			s.frontier = s.candidate
			for j := range s.items[s.take:] {
				if it := &s.items[s.take+j]; it.kind == itemRecord {
					s.frontier = min(s.frontier, it.rh.TimeNs)
					if s.sorted {
						break // the first held record is the earliest
					}
				}
			}
		}
		if s.take > 0 {
			s.stallValid = false
		}
	}
	runs = append(runs, len(picks))
	r.picks, r.runs = picks, runs
	// Strings the scan had no room for (the batch was full of records the
	// cutoff then held back, or they were scanned by an earlier drain) are
	// copied now, into a larger buffer if need be.
	if late > 0 {
		if late > cap(b.buf)-len(b.buf) {
			b.buf = append(make([]byte, 0, len(b.buf)+late), b.buf...)
		}
		for _, p := range picks {
			if p.it.str < 0 || p.it.gen != r.gen {
				n := int(p.it.rh.Len) - recordHeaderSize
				p.it.str, p.it.gen = len(b.buf), r.gen
				b.buf = b.buf[:p.it.str+n]
				r.copyOut(b.buf[p.it.str:], p.sub, (p.it.pos<<SlotShift)+recordHeaderSize)
			}
		}
	}
	if withRecords > 1 {
		picks = r.byTime(picks, runs)
	}
	for _, p := range picks {
		if !r.decode(b, p.sub, p.it) {
			b.Corrupted++
			b.CorruptedBytes += p.it.slots << SlotShift
		}
	}
	// What was held back stays scanned for the next drain.
	for i := range r.subs {
		if s := &r.subs[i]; s.take == len(s.items) {
			s.resetScan()
		} else {
			s.items = s.items[s.take:]
		}
	}
}

// pick is a scanned record chosen for delivery.
type pick struct {
	it  *item
	sub uint32
}

// byTime orders picks by time (stable: a sub-ring's records keep their
// order among equal times). runs are the per-sub-ring runs of picks (start
// offsets, then the end): each is nearly always sorted already, and then
// merging them costs one pass.
func (r *Reader) byTime(picks []pick, runs []int) []pick {
	sorted := true
	for k := 0; k+1 < len(runs) && sorted; k++ {
		for i := runs[k] + 1; i < runs[k+1]; i++ {
			if picks[i].it.rh.TimeNs < picks[i-1].it.rh.TimeNs {
				sorted = false
				break
			}
		}
	}
	if !sorted {
		slices.SortStableFunc(picks, func(x, y pick) int { return cmp.Compare(x.it.rh.TimeNs, y.it.rh.TimeNs) })
		return picks
	}
	out := r.merged[:0]
	next := append(r.heads[:0], runs[:len(runs)-1]...)
	r.heads = next
	for {
		best := -1
		for k, i := range next {
			if i < runs[k+1] && (best < 0 || picks[i].it.rh.TimeNs < picks[next[best]].it.rh.TimeNs) {
				best = k
			}
		}
		if best < 0 {
			break
		}
		out = append(out, picks[next[best]])
		next[best]++
	}
	r.merged = out
	return out
}

// newCut records where every cursor stands as the next cut: in the ring's
// cut table (id zeroed first, stored last) and privately.
func (r *Reader) newCut(b *Batch) {
	id := r.cut + 1
	e, ps := r.m.cutAt(id)
	atomic.StoreUint64(&e.ID, 0)
	own := &r.own[id%NCuts]
	if cap(own.pos) < len(r.subs) {
		own.pos = make([]uint64, len(r.subs))
	}
	own.id, own.pos = id, own.pos[:len(r.subs)]
	for i := range r.subs {
		own.pos[i] = r.subs[i].cursor
		atomic.StoreUint64(&ps[i], r.subs[i].cursor)
	}
	atomic.StoreUint64(&e.ConsumedRecords, uint64(len(b.Records)))
	atomic.StoreUint64(&e.ConsumedBytes, b.Bytes)
	atomic.StoreUint64(&e.AbandonedRecords, b.Abandoned)
	atomic.StoreUint64(&e.AbandonedBytes, b.AbandonedBytes)
	atomic.StoreUint64(&e.CorruptedRecords, b.Corrupted)
	atomic.StoreUint64(&e.CorruptedBytes, b.CorruptedBytes)
	atomic.StoreUint64(&e.ID, id)
	r.cut = id
	atomic.StoreUint64(&r.m.hdr.LastCut, id)
}

// decode validates the strings of the scanned record it (sub-ring sub),
// already in b's buffer, and appends the record to b. It reports whether
// the record was good.
func (r *Reader) decode(b *Batch, sub uint32, it *item) bool {
	l := uint64(it.rh.Len)
	n := len(b.Records)
	if n < cap(b.Records) {
		b.Records = b.Records[:n+1] // fill writes every field: no zeroing first
	} else {
		b.Records = append(b.Records, Record{})
	}
	rec := &b.Records[n]
	if !fill(rec, &it.rh, b.buf[it.str:it.str+int(l-recordHeaderSize)]) {
		b.Records = b.Records[:len(b.Records)-1]
		return false
	}
	rec.Pos = it.pos
	rec.Sub = uint16(sub)
	b.Bytes += l
	return true
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

// copyOut copies len(dst) bytes of sub-ring sub from free-running byte
// offset off, wrapping around the sub-ring's end.
func (r *Reader) copyOut(dst []byte, sub uint32, off uint64) {
	m := r.m
	base := uint64(sub) * m.subSize
	at := off & (m.subSize - 1)
	n := copy(dst, m.data[base+at:base+m.subSize])
	if n < len(dst) {
		copy(dst[n:], m.data[base:base+m.subSize])
	}
}

func (r *Reader) abandonDue(s *subState, pos, tail uint64) bool {
	now := r.now()
	if s.stallValid && pos < s.stallTail {
		return now.Sub(s.stallSince) >= r.abandonTimeout
	}
	s.stallValid, s.stallTail, s.stallSince = true, tail, now
	return false
}

func (r *Reader) countAbandoned(s *subState, b *Batch, pos uint64) {
	if pos != s.lastAbandoned {
		b.Abandoned++
	}
	b.AbandonedBytes += SlotSize
	s.lastAbandoned = pos + 1
}

// counts are consumer counters drained but not yet released.
type counts struct {
	consumed, consumedBytes   uint64
	abandoned, abandonedBytes uint64
	corrupted, corruptedBytes uint64
}

func (c *counts) add(b *Batch) {
	c.addCounts(counts{uint64(len(b.Records)), b.Bytes, b.Abandoned, b.AbandonedBytes, b.Corrupted, b.CorruptedBytes})
}

func (c *counts) addCounts(d counts) {
	c.consumed += d.consumed
	c.consumedBytes += d.consumedBytes
	c.abandoned += d.abandoned
	c.abandonedBytes += d.abandonedBytes
	c.corrupted += d.corrupted
	c.corruptedBytes += d.corruptedBytes
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
