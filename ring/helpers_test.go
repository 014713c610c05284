package ring

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// mustCreate makes a ring in a test directory and returns its path.
func mustCreate(tb testing.TB, cfg Config) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "ring")
	require.NoError(tb, Create(path, cfg))
	return path
}

func mustOpen(tb testing.TB, path string, opts Options) *Reader {
	tb.Helper()
	r, err := Open(path, opts)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

func mustWriter(tb testing.TB, path string) *Writer {
	tb.Helper()
	w, err := OpenWriter(path)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = w.Close() })
	return w
}

// fakeClock is a manual clock for abandonment tests.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
