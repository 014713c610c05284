package ring

//go:generate go run ./internal/opsgen -header ../libcshim/ring_abi.h -out ops_gen.go

// Constants mirrored from libcshim/ring_abi.h; abi_test.go proves they agree.
const (
	Magic            uint64 = 0x0100474e49525452 // "RTRING\0\1" little-endian
	ABIMajor                = 2
	ABIMinor                = 0
	PageSize                = 4096
	HeaderSize              = 4096
	CacheLine               = 64
	SlotSize                = 64
	SlotShift               = 6
	SubCtlSize              = 128
	MaxSub                  = 64
	MinSubSize              = 64 * 1024
	MinDataSize             = MinSubSize
	MaxDataSize      uint64 = 1 << 32
	DefaultDataSize         = 16 * 1024 * 1024
	NCuts                   = 64
	MaxRecordSize           = 32 * 1024
	PathMax                 = 4096
	DefaultFullWait         = 100000 // ns
	HighWaterPercent        = 50
	StampXor         uint64 = 0xa55a3cc3e11e0000

	FlagFutexDoorbell = 1 // Header.Flags: the consumer sleeps on Doorbell with futex(2)
)

// Record types.
const (
	TypeEvent = 1 // a file operation: Str1 = path, Str2 = second path
	TypeProc  = 2 // process identity: Str1 = exe, Str2 = cwd, Str3 = argv (NUL-separated)
)

// Access classes.
const (
	AccessNone  = 0
	AccessRead  = 1
	AccessWrite = 2
	// AccessLookup: a stat-family call read the path's existence or
	// metadata; the planner treats it as a read unless told to ignore it.
	AccessLookup = 3
)

// Record flags.
const (
	RFArgvTruncated   = 0x1
	RFUnresolved      = 0x2
	RFPreInit         = 0x4
	RFPath2Unresolved = 0x8
	RFTooLong         = 0x10 // unresolved: base + path is longer than the kernel can name
	RFSandboxed       = 0x20 // unresolved: a seccomp filter may refuse the syscall resolving it
	RFInProgress      = 0x40 // a connect that returned EINPROGRESS/EINTR: started, it completes later
)

// stamp is the publish word of slot position pos.
func stamp(pos uint64) uint64 { return pos ^ StampXor }

// Header mirrors struct rt_ring_header. The abi tag names the C field.
// Fields written concurrently are accessed only through sync/atomic.
type Header struct {
	Magic      uint64 `abi:"magic"`
	ABIMajor   uint16 `abi:"abi_major"`
	ABIMinor   uint16 `abi:"abi_minor"`
	HeaderSize uint32 `abi:"header_size"`
	DataSize   uint64 `abi:"data_size"`
	SlotSize   uint32 `abi:"slot_size"`
	MaxRecord  uint32 `abi:"max_record"`
	RingID     uint64 `abi:"ring_id"`
	CreatedNs  uint64 `abi:"created_ns"`
	Flags      uint32 `abi:"flags"`
	FullWaitNs uint32 `abi:"full_wait_ns"`
	NSub       uint32 `abi:"nsub"`
	OwnerUID   uint32 `abi:"owner_uid"`

	SubSize    uint64    `abi:"sub_size"` // geometry, read-only
	CtlOffset  uint64    `abi:"ctl_offset"`
	CutOffset  uint64    `abi:"cut_offset"`
	DataOffset uint64    `abi:"data_offset"`
	FileSize   uint64    `abi:"file_size"`
	NCuts      uint32    `abi:"ncuts"`
	CutSize    uint32    `abi:"cut_size"`
	Reserved1  [2]uint64 `abi:"reserved1"`

	ConsumerPID uint64    `abi:"consumer_pid"` // consumer
	HeartbeatNs uint64    `abi:"heartbeat_ns"`
	ReleasedCut uint64    `abi:"released_cut"`
	LastCut     uint64    `abi:"last_cut"`
	Reserved2   [4]uint64 `abi:"reserved2"`

	DroppedFullRecords   uint64 `abi:"dropped_full_records"` // producers, slow path
	DroppedFullBytes     uint64 `abi:"dropped_full_bytes"`
	DroppedTooBigRecords uint64 `abi:"dropped_toobig_records"`
	DroppedTooBigBytes   uint64 `abi:"dropped_toobig_bytes"`
	FullWaits            uint64 `abi:"full_waits"`
	ProducerErrors       uint64 `abi:"producer_errors"`
	Attached             uint64 `abi:"attached"`
	AttachFailed         uint64 `abi:"attach_failed"`

	AbandonedRecords uint64 `abi:"abandoned_records"` // consumer
	AbandonedBytes   uint64 `abi:"abandoned_bytes"`
	CorruptedRecords uint64 `abi:"corrupted_records"`
	CorruptedBytes   uint64 `abi:"corrupted_bytes"`
	ConsumedRecords  uint64 `abi:"consumed_records"`
	ConsumedBytes    uint64 `abi:"consumed_bytes"`
	RepairedTails    uint64 `abi:"repaired_tails"`
	RepairedHeads    uint64 `abi:"repaired_heads"`

	Doorbell   uint32    `abi:"doorbell"` // producers ring, consumer sleeps on it
	Reserved5a uint32    `abi:"reserved5a"`
	Reserved5  [7]uint64 `abi:"reserved5"`

	ReservedTail [HeaderSize - 6*CacheLine]byte `abi:"reserved_tail"`
}

// Sub mirrors struct rt_sub: one sub-ring's tail (producers) and head
// (consumer), each on its own cache line.
type Sub struct {
	Tail      uint64    `abi:"tail"`
	ReservedT [7]uint64 `abi:"reserved_t"`
	Head      uint64    `abi:"head"`
	ReservedH [7]uint64 `abi:"reserved_h"`
}

// Cut mirrors struct rt_cut without its trailing positions (NSub uint64s
// that follow it in the cut table).
type Cut struct {
	ID               uint64 `abi:"id"`
	ConsumedRecords  uint64 `abi:"consumed_records"`
	ConsumedBytes    uint64 `abi:"consumed_bytes"`
	AbandonedRecords uint64 `abi:"abandoned_records"`
	AbandonedBytes   uint64 `abi:"abandoned_bytes"`
	CorruptedRecords uint64 `abi:"corrupted_records"`
	CorruptedBytes   uint64 `abi:"corrupted_bytes"`
	Reserved         uint64 `abi:"reserved"`
}

const cutHeaderSize = 64

func alignUp(n, a uint64) uint64 { return (n + a - 1) &^ (a - 1) }

// cutSize is rt_cut_size: bytes of one cut-table entry for nsub sub-rings.
func cutSize(nsub uint32) uint32 {
	return uint32(alignUp(cutHeaderSize+8*uint64(nsub), CacheLine))
}

// layout is rt_layout: the file offsets of a ring of nsub sub-rings.
func layout(nsub uint32) (ctl, cut, data uint64) {
	ctl = HeaderSize
	cut = ctl + alignUp(uint64(nsub)*SubCtlSize, PageSize)
	data = cut + alignUp(NCuts*uint64(cutSize(nsub)), PageSize)
	return ctl, cut, data
}

// RecordHeader mirrors struct rt_record: the first slot of every record.
type RecordHeader struct {
	Stamp   uint64 `abi:"stamp"`
	Len     uint32 `abi:"len"`
	Type    uint8  `abi:"type"`
	Access  uint8  `abi:"access"`
	Op      uint16 `abi:"op"`
	TimeNs  uint64 `abi:"time_ns"`
	StartNs uint64 `abi:"start_ns"`
	PID     int32  `abi:"pid"`
	TID     int32  `abi:"tid"`
	PPID    int32  `abi:"ppid"`
	Result  int32  `abi:"result"`
	Flags   uint32 `abi:"flags"`
	Mode    uint32 `abi:"mode"`
	Len1    uint16 `abi:"len1"`
	Len2    uint16 `abi:"len2"`
	Len3    uint16 `abi:"len3"`
	RFlags  uint16 `abi:"rflags"`
}

const recordHeaderSize = 64
