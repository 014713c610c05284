package ring

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe" // also for go:linkname

	"golang.org/x/sys/unix"
)

// CreateFullWait is how long producers of a ring this package creates wait
// on a full ring for the consumer before they drop a record (the header's
// full_wait_ns). The ABI's default for a header that says 0 is 100 us
// (DefaultFullWait): long enough for a consumer that is draining, too
// short for one that lost its CPU for a moment — under load, `restrack run`
// of an open loop dropped hundreds of records at defaults. A producer only
// waits while the consumer's heartbeat is under 2 s old, so a collector
// that died or hangs costs a program at most that, then nothing; one that
// is merely late slows the producers to its pace, as LTTng's blocking
// channels do, instead of losing what they record.
const CreateFullWait = 100 * time.Millisecond

// Config describes a ring to create.
type Config struct {
	DataSize   uint64        // bytes of slots of all sub-rings: a power of two in [MinDataSize, MaxDataSize]; 0 = DefaultDataSize
	SubRings   int           // sub-rings: a power of two <= MaxSub; 0 = one per CPU (rounded up), as many as DataSize allows
	FullWait   time.Duration // producers' bounded wait on a full ring; 0 = CreateFullWait
	NoDoorbell bool          // producers never call futex(2) (consumer polls only)
	// OwnerUID is the uid the ring is created for: the collector attributes
	// every record in it to this uid, never to what a record claims. nil =
	// the creating process's uid.
	OwnerUID *uint32
}

// subRings is how many sub-rings a ring of cfg gets.
func (cfg Config) subRings(size uint64) (uint32, error) {
	n := uint64(cfg.SubRings)
	if n == 0 {
		for n = 1; n < uint64(runtime.NumCPU()) && n < MaxSub; n *= 2 {
		}
		for n > 1 && size/n < MinSubSize {
			n /= 2
		}
	}
	if n > MaxSub || n&(n-1) != 0 || size/n < MinSubSize {
		return 0, fmt.Errorf("%d sub-rings: want a power of two <= %d with at least %d bytes each (data size %d)", n, MaxSub, MinSubSize, size)
	}
	return uint32(n), nil
}

// Create makes a new ring file at path with owner-only permissions. The file
// appears fully initialised or not at all (written aside, then linked), so a
// producer never maps a half-written header. Every page is reserved before
// the ring appears: a producer writing into a ring on a full tmpfs would
// otherwise die of SIGBUS, so a ring that cannot be reserved is an error
// here instead. It fails if path exists.
func Create(path string, cfg Config) error {
	size := cfg.DataSize
	if size == 0 {
		size = DefaultDataSize
	}
	if size < MinDataSize || size > MaxDataSize || size&(size-1) != 0 {
		return fmt.Errorf("create ring %s: data size %d is not a power of two in [%d, %d]", path, size, MinDataSize, MaxDataSize)
	}
	nsub, err := cfg.subRings(size)
	if err != nil {
		return fmt.Errorf("create ring %s: %w", path, err)
	}
	wait := cfg.FullWait
	if wait == 0 {
		wait = CreateFullWait
	}
	if wait < 0 || wait > time.Second {
		return fmt.Errorf("create ring %s: full wait %v out of range (0, 1s]", path, wait)
	}
	owner := uint32(os.Getuid())
	if cfg.OwnerUID != nil {
		owner = *cfg.OwnerUID
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ring-*")
	if err != nil {
		return fmt.Errorf("create ring %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	defer tmp.Close()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("create ring %s: %w", path, err)
	}
	_, _, data := layout(nsub)
	total := data + size
	if err := reserve(tmp, int64(total)); err != nil {
		return fmt.Errorf("create ring %s: cannot reserve its %d bytes in %s: %w "+
			"(free space there, or create a smaller ring)", path, total, filepath.Dir(path), err)
	}
	mem, err := unix.Mmap(int(tmp.Fd()), 0, int(data), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("create ring %s: mmap: %w", path, err)
	}
	h := (*Header)(unsafe.Pointer(&mem[0]))
	initHeader(h, size, nsub, owner, wait, !cfg.NoDoorbell && futexSupported)
	// Release: producers load magic with acquire before reading the rest.
	atomic.StoreUint64(&h.Magic, Magic)
	if err := unix.Munmap(mem); err != nil {
		return fmt.Errorf("create ring %s: munmap: %w", path, err)
	}
	if err := os.Link(tmpName, path); err != nil {
		return fmt.Errorf("create ring %s: %w", path, err)
	}
	return nil
}

// initHeader fills a new ring's header, all but magic.
func initHeader(h *Header, size uint64, nsub, owner uint32, wait time.Duration, doorbell bool) {
	ctl, cut, data := layout(nsub)
	h.ABIMajor = ABIMajor
	h.ABIMinor = ABIMinor
	h.HeaderSize = HeaderSize
	h.DataSize = size
	h.SlotSize = SlotSize
	h.MaxRecord = MaxRecordSize
	var id [8]byte
	_, _ = rand.Read(id[:])
	h.RingID = binary.LittleEndian.Uint64(id[:]) | 1
	h.CreatedNs = uint64(time.Now().UnixNano())
	h.FullWaitNs = uint32(wait.Nanoseconds())
	h.NSub = nsub
	h.OwnerUID = owner
	h.SubSize = size / uint64(nsub)
	h.CtlOffset, h.CutOffset, h.DataOffset = ctl, cut, data
	h.FileSize = data + size
	h.NCuts = NCuts
	h.CutSize = cutSize(nsub)
	if doorbell {
		h.Flags |= FlagFutexDoorbell
	}
}

// reserve allocates every byte of f up to size. fallocate(2) where the
// file system has it; elsewhere zeros are written, which reserves tmpfs
// pages just as well.
func reserve(f *os.File, size int64) error {
	err := fallocate(f, size)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return err
	}
	zero := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(zero)) {
		n := min(int64(len(zero)), size-off)
		if _, err := f.WriteAt(zero[:n], off); err != nil {
			return err
		}
	}
	return nil
}

// mapping is a ring file mapped read-write. Its geometry was read from the
// header once, validated, and copied here: nothing the header says later
// about sizes or offsets is ever used.
type mapping struct {
	path     string
	mem      []byte
	hdr      *Header
	subs     []Sub  // nsub control blocks (shared: atomic access)
	cuts     []byte // the cut table
	data     []byte // every sub-ring's slots
	nsub     uint32
	subSize  uint64 // bytes of one sub-ring
	subSlots uint64
	dataSize uint64
	cutSize  uint64
	ringID   uint64
	flags    uint32
	fullWait uint32
	ownerUID uint32
}

// mapFile maps the ring open in f and validates its header.
func mapFile(f *os.File, path string) (*mapping, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat ring %s: %w", path, err)
	}
	if st.Size() < HeaderSize+MinDataSize {
		return nil, &SizeError{Path: path, What: "file size", Got: uint64(st.Size()), Wanted: fmt.Sprintf(">= %d", HeaderSize+MinDataSize)}
	}
	if uint64(st.Size()) > MaxDataSize+1<<24 {
		return nil, &SizeError{Path: path, What: "file size", Got: uint64(st.Size()), Wanted: fmt.Sprintf("<= %d", MaxDataSize+1<<24)}
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap ring %s: %w", path, err)
	}
	m := &mapping{path: path, mem: mem, hdr: (*Header)(unsafe.Pointer(&mem[0]))}
	if err := m.takeGeometry(uint64(st.Size())); err != nil {
		_ = unix.Munmap(mem)
		return nil, err
	}
	return m, nil
}

func mapRing(path string) (*mapping, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open ring %s: %w", path, err)
	}
	defer f.Close()
	return mapFile(f, path)
}

// takeGeometry reads every header field it needs exactly once, validates
// them against each other, the ABI and the file, and keeps the copies.
func (m *mapping) takeGeometry(fileSize uint64) error {
	h := m.hdr
	// Acquire pairs with Create's release store of Magic.
	if atomic.LoadUint64(&h.Magic) != Magic {
		return fmt.Errorf("ring %s: %w", m.path, ErrBadMagic)
	}
	// abi_major and abi_minor share one little-endian 32-bit word.
	version := atomic.LoadUint32((*uint32)(unsafe.Pointer(&h.ABIMajor)))
	if major := uint16(version); major != ABIMajor {
		return &ABIError{Path: m.path, Major: major, Minor: uint16(version >> 16)}
	}
	headerSize, slotSize, maxRecord := atomic.LoadUint32(&h.HeaderSize), atomic.LoadUint32(&h.SlotSize), atomic.LoadUint32(&h.MaxRecord)
	nsub, subSize, dataSize := atomic.LoadUint32(&h.NSub), atomic.LoadUint64(&h.SubSize), atomic.LoadUint64(&h.DataSize)
	ctl, cut, data, size := atomic.LoadUint64(&h.CtlOffset), atomic.LoadUint64(&h.CutOffset), atomic.LoadUint64(&h.DataOffset), atomic.LoadUint64(&h.FileSize)
	ncuts, cutSz := atomic.LoadUint32(&h.NCuts), atomic.LoadUint32(&h.CutSize)
	bad := func(what string, got uint64, want string) error {
		return &SizeError{Path: m.path, What: what, Got: got, Wanted: want}
	}
	switch {
	case headerSize != HeaderSize:
		return bad("header size", uint64(headerSize), fmt.Sprint(HeaderSize))
	case slotSize != SlotSize:
		return bad("slot size", uint64(slotSize), fmt.Sprint(SlotSize))
	case maxRecord != MaxRecordSize:
		return bad("max record", uint64(maxRecord), fmt.Sprint(MaxRecordSize))
	case nsub == 0 || nsub > MaxSub || nsub&(nsub-1) != 0:
		return bad("sub-ring count", uint64(nsub), fmt.Sprintf("a power of two in [1, %d]", MaxSub))
	case subSize < MinSubSize || subSize > MaxDataSize || subSize&(subSize-1) != 0:
		return bad("sub-ring size", subSize, "a power of two in [64 KiB, 4 GiB]")
	case dataSize != uint64(nsub)*subSize || dataSize > MaxDataSize:
		return bad("data size", dataSize, fmt.Sprintf("%d sub-rings × %d bytes, at most 4 GiB", nsub, subSize))
	case ncuts != NCuts:
		return bad("cut count", uint64(ncuts), fmt.Sprint(NCuts))
	case cutSz != cutSize(nsub):
		return bad("cut size", uint64(cutSz), fmt.Sprint(cutSize(nsub)))
	}
	wantCtl, wantCut, wantData := layout(nsub)
	switch {
	case ctl != wantCtl || cut != wantCut || data != wantData:
		return bad("layout offsets", data, fmt.Sprintf("control %d, cuts %d, data %d for %d sub-rings", wantCtl, wantCut, wantData, nsub))
	case size != data+dataSize:
		return bad("file size field", size, fmt.Sprint(data+dataSize))
	case size > fileSize:
		return bad("data size", dataSize, fmt.Sprintf("<= file size %d - %d bytes of header", fileSize, data))
	}
	m.nsub, m.subSize, m.subSlots, m.dataSize = nsub, subSize, subSize>>SlotShift, dataSize
	m.cutSize = uint64(cutSz)
	m.subs = unsafe.Slice((*Sub)(unsafe.Pointer(&m.mem[ctl])), nsub)
	m.cuts = m.mem[cut:data:data]
	m.data = m.mem[data : data+dataSize : data+dataSize]
	m.ringID = atomic.LoadUint64(&h.RingID)
	m.flags = atomic.LoadUint32(&h.Flags)
	m.fullWait = atomic.LoadUint32(&h.FullWaitNs)
	m.ownerUID = atomic.LoadUint32(&h.OwnerUID)
	return nil
}

func (m *mapping) close() error {
	if m.mem == nil {
		return nil
	}
	err := unix.Munmap(m.mem)
	m.mem, m.hdr, m.data, m.subs, m.cuts = nil, nil, nil, nil, nil
	if err != nil {
		return fmt.Errorf("munmap ring %s: %w", m.path, err)
	}
	return nil
}

// slotOffset is the data-area byte offset of slot pos of sub-ring sub.
func (m *mapping) slotOffset(sub uint32, pos uint64) uint64 {
	return uint64(sub)*m.subSize + (pos<<SlotShift)&(m.subSize-1)
}

// stampAt points at the stamp word of slot pos of sub-ring sub (shared
// memory, written by producers: access atomically).
func (m *mapping) stampAt(sub uint32, pos uint64) *uint64 {
	return (*uint64)(unsafe.Pointer(&m.data[m.slotOffset(sub, pos)]))
}

func (m *mapping) recordAt(sub uint32, pos uint64) *RecordHeader {
	return (*RecordHeader)(unsafe.Pointer(&m.data[m.slotOffset(sub, pos)]))
}

// cutAt is entry id % NCuts of the cut table, and its positions.
func (m *mapping) cutAt(id uint64) (*Cut, []uint64) {
	off := (id % NCuts) * m.cutSize
	return (*Cut)(unsafe.Pointer(&m.cuts[off])), unsafe.Slice((*uint64)(unsafe.Pointer(&m.cuts[off+cutHeaderSize])), m.nsub)
}

// used is the slots of sub-ring i holding unreleased records, or false when
// its tail is one no producer could have written.
func (m *mapping) used(i int) (uint64, bool) {
	head := atomic.LoadUint64(&m.subs[i].Head)
	tail := atomic.LoadUint64(&m.subs[i].Tail)
	if tail-head > m.subSlots {
		return 0, false
	}
	return tail - head, true
}

// Counters is a snapshot of the ring header's counters. Positions (Head,
// Tail) are the consumer's cut ids, the positions the collector stores.
type Counters struct {
	RingID               uint64 `json:"ring_id"`
	DataSize             uint64 `json:"data_size"`
	SubRings             uint32 `json:"sub_rings"`
	OwnerUID             uint32 `json:"owner_uid"`
	ConsumerPID          uint64 `json:"consumer_pid"`
	Head                 uint64 `json:"head"` // the released cut
	Tail                 uint64 `json:"tail"` // the newest cut
	UsedBytes            uint64 `json:"used_bytes"`
	DroppedFullRecords   uint64 `json:"dropped_full_records"`
	DroppedFullBytes     uint64 `json:"dropped_full_bytes"`
	DroppedTooBigRecords uint64 `json:"dropped_toobig_records"`
	DroppedTooBigBytes   uint64 `json:"dropped_toobig_bytes"`
	FullWaits            uint64 `json:"full_waits"`
	ProducerErrors       uint64 `json:"producer_errors"`
	Attached             uint64 `json:"attached"`
	AttachFailed         uint64 `json:"attach_failed"`
	AbandonedRecords     uint64 `json:"abandoned_records"`
	AbandonedBytes       uint64 `json:"abandoned_bytes"`
	CorruptedRecords     uint64 `json:"corrupted_records"`
	CorruptedBytes       uint64 `json:"corrupted_bytes"`
	ConsumedRecords      uint64 `json:"consumed_records"`
	ConsumedBytes        uint64 `json:"consumed_bytes"`
	RepairedTails        uint64 `json:"repaired_tails"`
	RepairedHeads        uint64 `json:"repaired_heads"`
}

// Dropped is every record lost by producers, whatever the cause.
func (c Counters) Dropped() uint64 { return c.DroppedFullRecords + c.DroppedTooBigRecords }

func (m *mapping) counters() Counters {
	h := m.hdr
	if h == nil {
		return Counters{}
	}
	c := Counters{
		RingID:               m.ringID,
		DataSize:             m.dataSize,
		SubRings:             m.nsub,
		OwnerUID:             m.ownerUID,
		ConsumerPID:          atomic.LoadUint64(&h.ConsumerPID),
		Head:                 atomic.LoadUint64(&h.ReleasedCut),
		Tail:                 atomic.LoadUint64(&h.LastCut),
		DroppedFullRecords:   atomic.LoadUint64(&h.DroppedFullRecords),
		DroppedFullBytes:     atomic.LoadUint64(&h.DroppedFullBytes),
		DroppedTooBigRecords: atomic.LoadUint64(&h.DroppedTooBigRecords),
		DroppedTooBigBytes:   atomic.LoadUint64(&h.DroppedTooBigBytes),
		FullWaits:            atomic.LoadUint64(&h.FullWaits),
		ProducerErrors:       atomic.LoadUint64(&h.ProducerErrors),
		Attached:             atomic.LoadUint64(&h.Attached),
		AttachFailed:         atomic.LoadUint64(&h.AttachFailed),
		AbandonedRecords:     atomic.LoadUint64(&h.AbandonedRecords),
		AbandonedBytes:       atomic.LoadUint64(&h.AbandonedBytes),
		CorruptedRecords:     atomic.LoadUint64(&h.CorruptedRecords),
		CorruptedBytes:       atomic.LoadUint64(&h.CorruptedBytes),
		ConsumedRecords:      atomic.LoadUint64(&h.ConsumedRecords),
		ConsumedBytes:        atomic.LoadUint64(&h.ConsumedBytes),
		RepairedTails:        atomic.LoadUint64(&h.RepairedTails),
		RepairedHeads:        atomic.LoadUint64(&h.RepairedHeads),
	}
	for i := range m.subs {
		if n, ok := m.used(i); ok {
			c.UsedBytes += n << SlotShift
		}
	}
	return c
}

// nanotime is the runtime's CLOCK_MONOTONIC reading through the vDSO: the
// clock the C producer stamps records with, at a fraction of the cost of
// the clock_gettime system call x/sys/unix makes.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

func monotonicNs() uint64 { return uint64(nanotime()) }
