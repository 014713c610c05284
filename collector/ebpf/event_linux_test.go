//go:build linux

package ebpf

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

// bpf2go generated restrackScratch from the object's BTF, i.e. from what
// clang laid out; the hand-written decoder must read the same offsets.
func TestTheDecoderReadsTheOffsetsClangLaidOut(t *testing.T) {
	var s restrackScratch
	e := &s.Ev
	assert.Equal(t, uintptr(eventHeaderSize), unsafe.Sizeof(*e))
	assert.Equal(t, uintptr(eventHeaderSize), unsafe.Offsetof(s.Data))
	for _, c := range []struct {
		field string
		got   uintptr
		want  uintptr
	}{
		{"op", unsafe.Offsetof(e.Op), 2}, {"len1", unsafe.Offsetof(e.Len1), 4},
		{"len3", unsafe.Offsetof(e.Len3), 8}, {"eflags", unsafe.Offsetof(e.Eflags), 10},
		{"pid", unsafe.Offsetof(e.Pid), 12}, {"tid", unsafe.Offsetof(e.Tid), 16},
		{"ppid", unsafe.Offsetof(e.Ppid), 20}, {"result", unsafe.Offsetof(e.Result), 24},
		{"dfd1", unsafe.Offsetof(e.Dfd1), 28}, {"dfd2", unsafe.Offsetof(e.Dfd2), 32},
		{"flags", unsafe.Offsetof(e.Flags), 36}, {"mode", unsafe.Offsetof(e.Mode), 40},
		{"len4", unsafe.Offsetof(e.Len4), 44},
		{"time_ns", unsafe.Offsetof(e.TimeNs), 48}, {"start_ns", unsafe.Offsetof(e.StartNs), 56},
	} {
		assert.Equal(t, c.want, c.got, c.field)
	}
	assert.Equal(t, 5*strMax, len(s.Data), "four strings, each starting below 4*RT_STR_MAX")
}
