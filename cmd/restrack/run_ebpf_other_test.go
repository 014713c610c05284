//go:build !linux

package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Off Linux (FreeBSD) the eBPF modes exist as flags but fail at once with a
// message naming the mode that works. Compiled by make test-freebsd (go vet
// with GOOS=freebsd); it runs only on FreeBSD itself.
func TestEBPFModesOffLinuxSayTheyAreLinuxOnly(t *testing.T) {
	for _, mode := range []string{"ebpf", "ring+ebpf"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			// ring+ebpf preloads the shim: any regular file passes the lookup
			// that comes before the tracer fails.
			shim := filepath.Join(dir, "librestrack.so")
			require.NoError(t, os.WriteFile(shim, nil, 0o644))
			var stderr bytes.Buffer
			code := runRun([]string{"-mode", mode, "-shim", shim, "-store", filepath.Join(dir, "store"), "--", "true"},
				nil, io.Discard, &stderr)
			assert.Equal(t, exitRunFailed, code)
			assert.Contains(t, stderr.String(), "the eBPF mode is Linux-only")
			assert.Contains(t, stderr.String(), "use --mode ring")
		})
	}
}
