package ring

import (
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const futexSupported = true

const futexWait = 0 // FUTEX_WAIT from linux/futex.h

// sleepOnDoorbell blocks until a producer rings the doorbell (crossing the
// high-water mark) or timeout passes. seen is the doorbell value read before
// the caller last checked the ring, so a ring in between is never missed.
func (m *mapping) sleepOnDoorbell(seen uint32, timeout time.Duration) {
	if m.flags&FlagFutexDoorbell == 0 {
		time.Sleep(timeout)
		return
	}
	if atomic.LoadUint32(&m.hdr.Doorbell) != seen {
		return
	}
	ts := unix.NsecToTimespec(timeout.Nanoseconds())
	// Not FUTEX_PRIVATE: producers live in other processes.
	_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(&m.hdr.Doorbell)),
		futexWait, uintptr(seen), uintptr(unsafe.Pointer(&ts)), 0, 0)
}

const futexWake = 1 // FUTEX_WAKE

func (m *mapping) ringDoorbell() {
	atomic.AddUint32(&m.hdr.Doorbell, 1)
	if m.flags&FlagFutexDoorbell != 0 {
		_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(&m.hdr.Doorbell)), futexWake, 1, 0, 0, 0)
	}
}
