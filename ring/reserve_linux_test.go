package ring

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestCreateReservesEveryPageOfTheRing(t *testing.T) {
	path := mustCreate(t, Config{DataSize: 1 << 20})
	st, err := os.Stat(path)
	require.NoError(t, err)
	blocks := st.Sys().(*syscall.Stat_t).Blocks * 512
	assert.GreaterOrEqual(t, blocks, st.Size(), "no holes: a producer writing into a hole on a full file system dies of SIGBUS")
}

func TestCreateOnAFullFileSystemFailsClearlyAndLeavesNothing(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("cannot mount a small tmpfs here: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	err := Create(filepath.Join(dir, "ring"), Config{DataSize: 1 << 20})
	require.Error(t, err)
	assert.True(t, errors.Is(err, unix.ENOSPC), err.Error())
	assert.Contains(t, err.Error(), "cannot reserve")
	entries, _ := os.ReadDir(dir)
	assert.Empty(t, entries, "no ring, and no temporary file, is left behind")
}
