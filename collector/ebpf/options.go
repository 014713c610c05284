package ebpf

import (
	"fmt"
	"time"
)

// Options choose what a Tracer follows and how it buffers.
type Options struct {
	// PID is the root of the traced process tree. Required.
	PID int
	// ChildrenOnly traces PID's descendants born after Start but not PID
	// itself: pass the tracer's own pid, then start the workload, so the
	// workload is traced from its first instruction and the tracer's own
	// file activity is not.
	ChildrenOnly bool
	// RingSize is the BPF ring buffer's size in bytes: a power of two, at
	// least one page. Default 8 MiB.
	RingSize int
	// PollInterval is how long ReadBatch waits for records when the ring
	// is empty. Default 10 ms.
	PollInterval time.Duration
	// WakeBytes: once this many bytes are unread, the kernel wakes a
	// waiting ReadBatch instead of leaving the records for the next poll.
	// Default RingSize/4.
	WakeBytes int
}

const (
	defaultRingSize     = 8 << 20
	defaultPollInterval = 10 * time.Millisecond
)

func (o *Options) setDefaults(pageSize int) error {
	if o.PID <= 0 {
		return fmt.Errorf("options: root pid %d is not a process id", o.PID)
	}
	if o.RingSize == 0 {
		o.RingSize = defaultRingSize
	}
	if o.RingSize < pageSize || o.RingSize&(o.RingSize-1) != 0 {
		return fmt.Errorf("options: ring size %d is not a power of two of at least %d", o.RingSize, pageSize)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = defaultPollInterval
	}
	if o.WakeBytes <= 0 || o.WakeBytes > o.RingSize {
		o.WakeBytes = o.RingSize / 4
	}
	return nil
}

// Counters are a tracer's totals since Start.
type Counters struct {
	Records      uint64 // records returned by ReadBatch
	Emitted      uint64 // records the kernel side wrote into the ring
	LostRing     uint64 // records dropped in the kernel: ring full
	LostInflight uint64 // syscalls not reported: too many in flight at once
	LostProcs    uint64 // children not followed: too many traced processes
	Faults       uint64 // path or argv strings the kernel could not read
	Unresolved   uint64 // relative paths whose base directory was unknown
	Corrupt      uint64 // samples that failed to decode (a bug if non-zero)
}

// Lost is every record that should have been reported and was not.
func (c Counters) Lost() uint64 { return c.LostRing + c.LostInflight + c.LostProcs }
