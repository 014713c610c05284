package ring

import (
	"errors"
	"fmt"
)

// ErrBadMagic: the file is not a restrack ring (or was never initialised).
var ErrBadMagic = errors.New("not a restrack ring (bad magic)")

// ABIError: the ring speaks another major ABI version than this build.
type ABIError struct {
	Path         string
	Major, Minor uint16
}

func (e *ABIError) Error() string {
	return fmt.Sprintf("ring %s has ABI %d.%d, this build speaks %d.x: restart the traced processes and the collector from one build",
		e.Path, e.Major, e.Minor, ABIMajor)
}

// SizeError: a size in the header disagrees with the file or the ABI.
type SizeError struct {
	Path   string
	What   string
	Got    uint64
	Wanted string
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("ring %s: %s is %d, want %s", e.Path, e.What, e.Got, e.Wanted)
}
