//go:build linux

package ebpf

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/collector"
	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/ring"
)

func TestACollectorStoresTheKernelsRecordsWithSourceEbpf(t *testing.T) {
	bin := mustGoWriter(t)
	src, err := NewSource(Options{PID: os.Getpid(), ChildrenOnly: true})
	skipUnlessBPF(t, err)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, src.Close()) })

	st, err := store.Open(t.TempDir(), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	c := collector.New(src, st, collector.Config{DrainInterval: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	dir := t.TempDir()
	out, err := exec.Command(bin, dir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	cancel()
	require.NoError(t, <-done)

	var found *store.Event
	require.NoError(t, st.Events(context.Background(), store.EventFilter{}, func(e *store.Event) error {
		if e.Path == filepath.Join(dir, "out.txt") && e.Op == ring.OpOpenat {
			cp := *e
			found = &cp
		}
		return nil
	}))
	require.NotNil(t, found, "the static binary's write is in the store")
	assert.Equal(t, SourceKind, found.Source)
	assert.Equal(t, uint8(ring.AccessWrite), found.Access)

	tr, err := st.Trace(context.Background())
	require.NoError(t, err)
	var exe string
	for _, p := range tr.Processes {
		if p.Key.PID == found.PID {
			exe = p.Exe
		}
	}
	assert.Equal(t, bin, exe, "the process record names the static binary")
}
