package ring

import "bytes"

// Record is one decoded record. Its byte slices alias the Batch's memory and
// stay valid until the batch is drained into again.
type Record struct {
	Pos     uint64 // slot position in its sub-ring: with Sub, unique per ring creation
	Sub     uint16 // the sub-ring it was read from
	Type    uint8
	Access  uint8
	Op      Op
	RFlags  uint16
	TimeNs  uint64
	StartNs uint64
	PID     int32
	TID     int32
	PPID    int32
	Result  int32
	Flags   uint32
	Mode    uint32
	Str1    []byte // event: path; proc: exe
	Str2    []byte // event: second path; proc: cwd
	Str3    []byte // proc: argv, NUL-separated
}

// Argv splits a process record's argument blob. It allocates; call it off
// the drain path.
func (r *Record) Argv() []string {
	if len(r.Str3) == 0 {
		return nil
	}
	parts := bytes.Split(r.Str3, []byte{0})
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out
}

// Batch is caller-owned storage for one Drain: records and their strings,
// reused from drain to drain so draining allocates nothing per record.
type Batch struct {
	Records []Record
	buf     []byte

	Start, End     uint64 // cut ids (the reader's positions): Release(End) frees everything drained
	Bytes          uint64 // record bytes consumed (headers and strings)
	Abandoned      uint64 // runs of reserved slots skipped as never published
	AbandonedBytes uint64
	Corrupted      uint64 // published records that failed validation
	CorruptedBytes uint64
	BadTail        bool // a sub-ring's tail was outside any legal value, and was set back
	// Full: the drain left records it could have delivered for lack of room
	// in the batch. A consumer drains again at once only then; otherwise
	// it waits for its interval, so a steady producer is drained in bulk,
	// not a few hundred records at a time as fast as commits go.
	Full bool
}

// NewBatch holds up to maxRecords records and maxBytes bytes of strings;
// maxBytes is raised to MaxRecordSize so any single record fits.
func NewBatch(maxRecords, maxBytes int) *Batch {
	if maxRecords < 1 {
		maxRecords = 1
	}
	if maxBytes < MaxRecordSize {
		maxBytes = MaxRecordSize
	}
	return &Batch{Records: make([]Record, 0, maxRecords), buf: make([]byte, 0, maxBytes)}
}

func (b *Batch) reset(start uint64) {
	*b = Batch{Records: b.Records[:0], buf: b.buf[:0], Start: start, End: start}
}
