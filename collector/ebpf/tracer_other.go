//go:build !linux

package ebpf

import (
	"time"

	"github.com/restrack/restrack/ring"
)

// Tracer is unavailable off Linux; see Start.
type Tracer struct{ Syscalls []string }

var errNotLinux = &UnavailableError{Missing: "Linux: the eBPF mode is Linux-only", Fix: "use --mode ring"}

// Start always fails off Linux with an error wrapping ErrUnavailable.
func Start(opts Options) (*Tracer, error) { return nil, errNotLinux }

// ReadBatch always fails off Linux.
func (t *Tracer) ReadBatch(dst []ring.Record) (int, error) { return 0, errNotLinux }

// Read always fails off Linux.
func (t *Tracer) Read(dst []ring.Record) (int, error) { return 0, errNotLinux }

// Wait returns at once off Linux.
func (t *Tracer) Wait(d time.Duration) {}

// Pending is 0 off Linux.
func (t *Tracer) Pending() int { return 0 }

// RingSize is 0 off Linux.
func (t *Tracer) RingSize() int { return 0 }

// Stop does nothing off Linux.
func (t *Tracer) Stop() error { return nil }

// Counters is empty off Linux.
func (t *Tracer) Counters() (Counters, error) { return Counters{}, errNotLinux }

// Close does nothing off Linux.
func (t *Tracer) Close() error { return nil }
