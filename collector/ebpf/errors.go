package ebpf

import "errors"

// ErrUnavailable is wrapped by every error that means "this machine or
// this user cannot run the eBPF mode" (as opposed to a bug): no Linux, no
// privileges, no BTF, no tracefs. Tests skip on it unless
// RESTRACK_REQUIRE_BPF=1.
var ErrUnavailable = errors.New("eBPF mode unavailable")

// ErrStopped is returned by ReadBatch once the tracer is stopped and every
// record it produced has been read.
var ErrStopped = errors.New("tracer stopped")

// UnavailableError names what is missing and how to get it.
type UnavailableError struct {
	Missing string // what the machine or user lacks
	Fix     string // what to do about it; may be empty
	Err     error  // the underlying failure, if any
}

func (e *UnavailableError) Error() string {
	s := "eBPF mode unavailable: " + e.Missing
	if e.Fix != "" {
		s += " (" + e.Fix + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *UnavailableError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrUnavailable}
	}
	return []error{ErrUnavailable, e.Err}
}
