//go:build !linux

package ebpf

import (
	"github.com/restrack/restrack/ring"
)

// Tracer is unavailable off Linux; see Start.
type Tracer struct{ Syscalls []string }

var errNotLinux = &UnavailableError{Missing: "Linux: the eBPF mode is Linux-only", Fix: "use --mode ring"}

// Start always fails off Linux with an error wrapping ErrUnavailable.
func Start(opts Options) (*Tracer, error) { return nil, errNotLinux }

// ReadBatch always fails off Linux.
func (t *Tracer) ReadBatch(dst []ring.Record) (int, error) { return 0, errNotLinux }

// Stop does nothing off Linux.
func (t *Tracer) Stop() error { return nil }

// Counters is empty off Linux.
func (t *Tracer) Counters() (Counters, error) { return Counters{}, errNotLinux }

// Close does nothing off Linux.
func (t *Tracer) Close() error { return nil }
