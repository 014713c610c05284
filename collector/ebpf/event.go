package ebpf

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Layout of struct rt_event (bpf/event.h); event_test.go checks these
// against the header so the two cannot drift apart.
const (
	eventHeaderSize = 64
	strMax          = 4096 // RT_STR_MAX
	atFDCWD         = -100 // RT_AT_FDCWD

	typeEvent = 1
	typeProc  = 2

	efPath1Fault     = 0x1
	efPath2Fault     = 0x2
	efArgvTruncated  = 0x4
	efBaseIncomplete = 0x8
	procFollowOnly   = 0x1
	counterEmitted   = 0
	counterLostRing  = 1
	counterLostArgs  = 2
	counterLostProc  = 3
	counterFaults    = 4
	counterCount     = 5
	clockTicksPerSec = 100 // USER_HZ: the unit of /proc/PID/stat's starttime
)

// rawEvent is one decoded ring-buffer sample. Its strings alias the sample.
type rawEvent struct {
	Type, Op               uint16
	EFlags                 uint16
	PID, TID, PPID         int32
	Result                 int32
	DFD1, DFD2             int32
	Flags, Mode            uint32
	TimeNs, StartNs        uint64
	Str1, Str2, Str3, Str4 []byte // event: path, path2, base of path, base of path2
}

var errShortSample = errors.New("sample shorter than its header")

// decodeEvent parses one sample written by the BPF programs. It never trusts
// the lengths: a sample whose strings overrun it is an error, not a crash.
func decodeEvent(b []byte, ev *rawEvent) error {
	if len(b) < eventHeaderSize {
		return fmt.Errorf("decode %d-byte sample: %w", len(b), errShortSample)
	}
	le := binary.LittleEndian
	ev.Type = le.Uint16(b[0:])
	ev.Op = le.Uint16(b[2:])
	l1, l2, l3 := int(le.Uint16(b[4:])), int(le.Uint16(b[6:])), int(le.Uint16(b[8:]))
	ev.EFlags = le.Uint16(b[10:])
	ev.PID = int32(le.Uint32(b[12:]))
	ev.TID = int32(le.Uint32(b[16:]))
	ev.PPID = int32(le.Uint32(b[20:]))
	ev.Result = int32(le.Uint32(b[24:]))
	ev.DFD1 = int32(le.Uint32(b[28:]))
	ev.DFD2 = int32(le.Uint32(b[32:]))
	ev.Flags = le.Uint32(b[36:])
	ev.Mode = le.Uint32(b[40:])
	l4 := int(le.Uint16(b[44:]))
	// b[46:48] is padding.
	ev.TimeNs = le.Uint64(b[48:])
	ev.StartNs = le.Uint64(b[56:])
	rest := b[eventHeaderSize:]
	if l1+l2+l3+l4 > len(rest) {
		return fmt.Errorf("decode sample: strings of %d+%d+%d+%d bytes overrun its %d bytes", l1, l2, l3, l4, len(rest))
	}
	ev.Str1, rest = rest[:l1:l1], rest[l1:]
	ev.Str2, rest = rest[:l2:l2], rest[l2:]
	ev.Str3, rest = rest[:l3:l3], rest[l3:]
	ev.Str4 = rest[:l4:l4]
	return nil
}

// startTicks rounds a task's start_boottime down to what /proc/PID/stat's
// starttime field says (clock ticks since boot) and back to nanoseconds, so
// that (pid, start) names a process the same way in the shim's records.
func startTicks(ns uint64) uint64 {
	const tick = 1_000_000_000 / clockTicksPerSec
	return ns - ns%tick
}
