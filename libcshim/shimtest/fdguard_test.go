//go:build linux

package shimtest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/internal/ctest"
	"github.com/restrack/restrack/ring/fifo"
)

// The shim's FIFO descriptors are not the program's: a program that
// closes or overwrites every descriptor and then opens new ones must never
// find record bytes in its own files, and the shim keeps recording.
func TestTheProgramCanNeitherCloseNorClobberTheShimsDescriptors(t *testing.T) {
	prog := ctest.Build(t, "fdguard", []string{"libcshim/tests/fdguard.c"})
	for _, how := range []string{"closefrom", "close_range", "close", "dup2"} {
		t.Run("after "+how, func(t *testing.T) {
			fe := newFIFO(t)
			r, err := fifo.Open(fe.fifo)
			require.NoError(t, err)
			defer r.Close()
			res := fe.run(t, nil, prog, how)
			require.NoError(t, res.err, res.stderr)
			assert.Contains(t, res.stdout, "CLEAN", "no record bytes in the program's own pipes")
			assert.NotContains(t, res.stdout, "LEAKED")
			if how == "dup2" {
				assert.Contains(t, res.stdout, "dup2 failures 0", "the program got every number it asked for")
			}
			if how == "close_range" {
				assert.Contains(t, res.stdout, "close_range 0")
			}
			evs := readAll(t, r)
			assert.NotEmpty(t, opensOf(evs, "/etc/hostname"), "the open after the program's %s is still recorded:\n%s", how, dump(evs))
		})
	}
}
