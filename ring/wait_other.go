//go:build !linux

package ring

import (
	"sync/atomic"
	"time"
)

// Without futex(2) the consumer polls on its timer only.
const futexSupported = false

func (m *mapping) sleepOnDoorbell(seen uint32, timeout time.Duration) {
	time.Sleep(timeout)
}

func (m *mapping) ringDoorbell() { atomic.AddUint32(&m.hdr.Doorbell, 1) }
