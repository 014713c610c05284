package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/ring"
)

func TestBadInvocationsExitNonZero(t *testing.T) {
	dir := t.TempDir()
	otherABI := filepath.Join(dir, "abi.ring")
	require.NoError(t, ring.Create(otherABI, ring.Config{DataSize: ring.MinDataSize}))
	f, err := os.OpenFile(otherABI, os.O_RDWR, 0)
	require.NoError(t, err)
	var b [2]byte
	binary.LittleEndian.PutUint16(b[:], ring.ABIMajor+1)
	_, err = f.WriteAt(b[:], 8)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	notDir := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))

	tests := []struct {
		name string
		args []string
		code int
	}{
		{"an unknown flag", []string{"-bogus"}, 2},
		{"help, which is what was asked for", []string{"-h"}, 0},
		{"the version", []string{"-version"}, 0},
		{"the version, GNU style", []string{"--version"}, 0},
		{"a stray argument", []string{"extra"}, 2},
		{"a ring size that is not a power of two", []string{"-ring-size", "100000"}, 2},
		{"a drain interval of zero", []string{"-drain-interval", "0s"}, 2},
		{"a host id without a database to publish to", []string{"-host-id", "h1"}, 2},
		{"a host id that cannot name a host", []string{"-publish", "host=/nonexistent", "-host-id", "a b"}, 2},
		{"no rendezvous and no ring", []string{"-rendezvous", "none"}, 2},
		{"a ring in a missing directory", []string{"-ring", filepath.Join(dir, "missing", "r"), "-store", filepath.Join(dir, "s1")}, 1},
		{"a ring of another ABI", []string{"-ring", otherABI, "-store", filepath.Join(dir, "s2")}, 1},
		{"a file that is not a ring", []string{"-ring", notDir, "-store", filepath.Join(dir, "s3")}, 1},
		{"a store that cannot be created", []string{"-ring", filepath.Join(dir, "r4"), "-store", filepath.Join(notDir, "store")}, 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Never the host's well-known socket: tests run side by side.
			args := append([]string{"-rendezvous", filepath.Join(dir, fmt.Sprint("rdv", i)), "-ring-dir", filepath.Join(dir, fmt.Sprint("rings", i))}, tt.args...)
			assert.Equal(t, tt.code, run(args))
		})
	}
}
