//go:build linux

package shimtest

import (
	"debug/elf"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 11: the producer's futex wake called syscall(), which the dynamic
// linker bound to the shim's own exported syscall hook, and its full-ring
// nap called libc's nanosleep, a cancellation point. The shim's own calls
// must go through raw syscalls: it imports no function it also exports (a
// call that would re-enter its hooks) and none of libc's syscall wrappers
// that are cancellation points.
func TestTheShimNeverCallsItsOwnHooksOrACancellationPoint(t *testing.T) {
	f, err := elf.Open(shim(t))
	require.NoError(t, err)
	defer f.Close()
	syms, err := f.DynamicSymbols()
	require.NoError(t, err)
	exported, imported := map[string]bool{}, map[string]bool{}
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) != elf.STT_FUNC {
			continue
		}
		if s.Section == elf.SHN_UNDEF {
			imported[s.Name] = true
		} else {
			exported[s.Name] = true
		}
	}
	require.Equal(t, elf.ELFCLASS64, f.Class, "the PLT check reads Elf64_Rela")
	require.True(t, exported["openat"] && exported["syscall"], "the shim exports its hooks (sanity)")
	// Every call through the PLT names its target in .rela.plt: a target
	// the shim defines itself is a call that binds back into the shim.
	if plt := f.Section(".rela.plt"); plt != nil {
		data, err := plt.Data()
		require.NoError(t, err)
		for off := 0; off+24 <= len(data); off += 24 {
			idx := f.ByteOrder.Uint64(data[off+8:]) >> 32
			if idx == 0 || int(idx) > len(syms) {
				continue
			}
			name := syms[idx-1].Name
			imported[name] = true
		}
	}
	for name := range imported {
		assert.False(t, exported[name], "the shim imports %s, which it also exports: its own call would enter its hook", name)
	}
	// POSIX cancellation points a hook path could reach, and the generic
	// syscall() wrapper.
	for _, name := range []string{"syscall", "nanosleep", "clock_nanosleep", "usleep", "sleep", "pause",
		"read", "write", "close", "open", "openat", "connect", "accept", "accept4", "sendmsg", "recvmsg",
		"send", "recv", "poll", "ppoll", "select", "pselect", "fsync", "fcntl", "wait", "waitpid",
		"sigsuspend", "sigwait", "pthread_testcancel", "readlink", "readlinkat", "getcwd"} {
		assert.False(t, imported[name], "the shim imports libc's %s: use a raw syscall (rt_raw_syscall.h)", name)
	}
}
