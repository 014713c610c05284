package ring

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
	"unsafe" // also for go:linkname

	"golang.org/x/sys/unix"
)

// Config describes a ring to create.
type Config struct {
	DataSize   uint64        // bytes of slots: a power of two in [MinDataSize, MaxDataSize]; 0 = DefaultDataSize
	FullWait   time.Duration // producers' bounded wait on a full ring; 0 = DefaultFullWait
	NoDoorbell bool          // producers never call futex(2) (consumer polls only)
}

// Create makes a new ring file at path with owner-only permissions. The file
// appears fully initialised or not at all (written aside, then linked), so a
// producer never maps a half-written header. It fails if path exists.
func Create(path string, cfg Config) error {
	size := cfg.DataSize
	if size == 0 {
		size = DefaultDataSize
	}
	if size < MinDataSize || size > MaxDataSize || size&(size-1) != 0 {
		return fmt.Errorf("create ring %s: data size %d is not a power of two in [%d, %d]", path, size, MinDataSize, MaxDataSize)
	}
	wait := cfg.FullWait
	if wait == 0 {
		wait = DefaultFullWait * time.Nanosecond
	}
	if wait < 0 || wait > time.Second {
		return fmt.Errorf("create ring %s: full wait %v out of range (0, 1s]", path, wait)
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
	total := int64(HeaderSize) + int64(size)
	if err := tmp.Truncate(total); err != nil {
		return fmt.Errorf("create ring %s: size file: %w", path, err)
	}
	mem, err := unix.Mmap(int(tmp.Fd()), 0, HeaderSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("create ring %s: mmap: %w", path, err)
	}
	h := (*Header)(unsafe.Pointer(&mem[0]))
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
	if !cfg.NoDoorbell && futexSupported {
		h.Flags |= FlagFutexDoorbell
	}
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

// mapping is a ring file mapped read-write, header validated.
type mapping struct {
	path     string
	mem      []byte
	hdr      *Header
	data     []byte
	dataSize uint64
	nslots   uint64
}

func mapRing(path string) (*mapping, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open ring %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat ring %s: %w", path, err)
	}
	if st.Size() < HeaderSize+MinDataSize {
		return nil, &SizeError{Path: path, What: "file size", Got: uint64(st.Size()), Wanted: fmt.Sprintf(">= %d", HeaderSize+MinDataSize)}
	}
	if uint64(st.Size()) > HeaderSize+MaxDataSize {
		return nil, &SizeError{Path: path, What: "file size", Got: uint64(st.Size()), Wanted: fmt.Sprintf("<= %d", HeaderSize+MaxDataSize)}
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap ring %s: %w", path, err)
	}
	m := &mapping{path: path, mem: mem, hdr: (*Header)(unsafe.Pointer(&mem[0]))}
	if err := m.validate(uint64(st.Size())); err != nil {
		_ = unix.Munmap(mem)
		return nil, err
	}
	m.dataSize = m.hdr.DataSize
	m.nslots = m.dataSize >> SlotShift
	m.data = mem[HeaderSize : HeaderSize+m.dataSize]
	return m, nil
}

func (m *mapping) validate(fileSize uint64) error {
	h := m.hdr
	// Acquire pairs with Create's release store of Magic.
	if atomic.LoadUint64(&h.Magic) != Magic {
		return fmt.Errorf("ring %s: %w", m.path, ErrBadMagic)
	}
	if h.ABIMajor != ABIMajor {
		return &ABIError{Path: m.path, Major: h.ABIMajor, Minor: h.ABIMinor}
	}
	if h.HeaderSize != HeaderSize {
		return &SizeError{Path: m.path, What: "header size", Got: uint64(h.HeaderSize), Wanted: fmt.Sprint(HeaderSize)}
	}
	if h.SlotSize != SlotSize {
		return &SizeError{Path: m.path, What: "slot size", Got: uint64(h.SlotSize), Wanted: fmt.Sprint(SlotSize)}
	}
	ds := h.DataSize
	if ds < MinDataSize || ds > MaxDataSize || ds&(ds-1) != 0 {
		return &SizeError{Path: m.path, What: "data size", Got: ds, Wanted: "a power of two in [64 KiB, 4 GiB]"}
	}
	if HeaderSize+ds > fileSize {
		return &SizeError{Path: m.path, What: "data size", Got: ds, Wanted: fmt.Sprintf("<= file size %d - header", fileSize)}
	}
	return nil
}

func (m *mapping) close() error {
	if m.mem == nil {
		return nil
	}
	err := unix.Munmap(m.mem)
	m.mem, m.hdr, m.data = nil, nil, nil
	if err != nil {
		return fmt.Errorf("munmap ring %s: %w", m.path, err)
	}
	return nil
}

// stampAt points at the stamp word of slot position pos (shared memory,
// written by producers: access atomically).
func (m *mapping) stampAt(pos uint64) *uint64 {
	return (*uint64)(unsafe.Pointer(&m.data[(pos<<SlotShift)&(m.dataSize-1)]))
}

func (m *mapping) recordAt(pos uint64) *RecordHeader {
	return (*RecordHeader)(unsafe.Pointer(&m.data[(pos<<SlotShift)&(m.dataSize-1)]))
}

// Counters is a snapshot of the ring header's counters.
type Counters struct {
	RingID               uint64 `json:"ring_id"`
	DataSize             uint64 `json:"data_size"`
	Head                 uint64 `json:"head"`
	Tail                 uint64 `json:"tail"`
	UsedBytes            uint64 `json:"used_bytes"`
	DroppedFullRecords   uint64 `json:"dropped_full_records"`
	DroppedFullBytes     uint64 `json:"dropped_full_bytes"`
	DroppedTooBigRecords uint64 `json:"dropped_toobig_records"`
	DroppedTooBigBytes   uint64 `json:"dropped_toobig_bytes"`
	FullWaits            uint64 `json:"full_waits"`
	ProducerErrors       uint64 `json:"producer_errors"`
	AbandonedRecords     uint64 `json:"abandoned_records"`
	AbandonedBytes       uint64 `json:"abandoned_bytes"`
	CorruptedRecords     uint64 `json:"corrupted_records"`
	CorruptedBytes       uint64 `json:"corrupted_bytes"`
	ConsumedRecords      uint64 `json:"consumed_records"`
	ConsumedBytes        uint64 `json:"consumed_bytes"`
}

// Dropped is every record lost by producers, whatever the cause.
func (c Counters) Dropped() uint64 { return c.DroppedFullRecords + c.DroppedTooBigRecords }

func (m *mapping) counters() Counters {
	h := m.hdr
	if h == nil {
		return Counters{}
	}
	c := Counters{
		RingID:               h.RingID,
		DataSize:             m.dataSize,
		Head:                 atomic.LoadUint64(&h.Head),
		Tail:                 atomic.LoadUint64(&h.Tail),
		DroppedFullRecords:   atomic.LoadUint64(&h.DroppedFullRecords),
		DroppedFullBytes:     atomic.LoadUint64(&h.DroppedFullBytes),
		DroppedTooBigRecords: atomic.LoadUint64(&h.DroppedTooBigRecords),
		DroppedTooBigBytes:   atomic.LoadUint64(&h.DroppedTooBigBytes),
		FullWaits:            atomic.LoadUint64(&h.FullWaits),
		ProducerErrors:       atomic.LoadUint64(&h.ProducerErrors),
		AbandonedRecords:     atomic.LoadUint64(&h.AbandonedRecords),
		AbandonedBytes:       atomic.LoadUint64(&h.AbandonedBytes),
		CorruptedRecords:     atomic.LoadUint64(&h.CorruptedRecords),
		CorruptedBytes:       atomic.LoadUint64(&h.CorruptedBytes),
		ConsumedRecords:      atomic.LoadUint64(&h.ConsumedRecords),
		ConsumedBytes:        atomic.LoadUint64(&h.ConsumedBytes),
	}
	if c.Tail-c.Head <= m.nslots {
		c.UsedBytes = (c.Tail - c.Head) << SlotShift
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
