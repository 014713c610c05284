package store

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/ring"
)

func TestEventsRememberWhichSourceRecordedThem(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	ctx := context.Background()
	commit := func(id uint64, kind, path string) {
		require.NoError(t, s.Commit(ctx, []ring.Record{
			proc(10, 1, 1000, "/bin/app"),
			ev(10, 1000, 2000, ring.OpOpenat, ring.AccessRead, 3, path),
		}, Checkpoint{SourceInfo: SourceInfo{ID: id, Kind: kind, Path: kind}, Position: 1}))
	}
	commit(1, "ring", "/etc/seen-by-both")
	commit(1<<63+5, "ebpf", "/etc/seen-by-both") // ids use the whole u64
	commit(1<<63+5, "ebpf", "/etc/kernel-only")

	got := map[string][]string{}
	require.NoError(t, s.Events(ctx, EventFilter{}, func(e *Event) error {
		got[e.Path] = append(got[e.Path], e.Source)
		return nil
	}))
	assert.Equal(t, map[string][]string{
		"/etc/seen-by-both": {"ring", "ebpf"},
		"/etc/kernel-only":  {"ebpf"},
	}, got)
}

func TestTwoSourcesMayCommitToOneStoreConcurrently(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	var wg sync.WaitGroup
	for i, kind := range []string{"ring", "ebpf"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 50 {
				assert.NoError(t, s.Commit(context.Background(), []ring.Record{
					ev(int32(10+i), 1000, uint64(n), ring.OpOpenat, ring.AccessRead, 3, "/f"),
				}, Checkpoint{SourceInfo: SourceInfo{ID: uint64(i + 1), Kind: kind, Path: kind}, Position: uint64(n + 1)}))
			}
		}()
	}
	wg.Wait()
	var n int
	require.NoError(t, s.Events(context.Background(), EventFilter{}, func(*Event) error { n++; return nil }))
	assert.Equal(t, 100, n)
}

func TestAProcessKeepsTheUIDItsRingWasVerifiedFor(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	ctx := context.Background()
	require.NoError(t, s.Commit(ctx, []ring.Record{ev(10, 1000, 2000, ring.OpOpenat, ring.AccessRead, 3, "/srv/data")},
		Checkpoint{SourceInfo: SourceInfo{ID: 7, Kind: "ring", Path: "uid-65534.ring", UID: 65534, UIDKnown: true}, Position: 1}))
	require.NoError(t, s.Commit(ctx, []ring.Record{ev(11, 1000, 2000, ring.OpOpenat, ring.AccessRead, 3, "/srv/data")},
		Checkpoint{SourceInfo: SourceInfo{ID: 8, Kind: "fifo", Path: "fifo"}, Position: 1}))
	check := func(st *Store, when string) {
		tr, err := st.Trace(ctx)
		require.NoError(t, err)
		require.Len(t, tr.Processes, 2)
		for _, p := range tr.Processes {
			switch p.Key.PID {
			case 10:
				assert.True(t, p.UIDKnown, when)
				assert.Equal(t, uint32(65534), p.UID, when)
			case 11:
				assert.False(t, p.UIDKnown, "%s: a source without a verified owner claims no uid (not root)", when)
			}
		}
	}
	check(s, "in the writer's store")
	require.NoError(t, s.Close())
	check(mustOpen(t, s.Dir(), Options{ReadOnly: true}), "reopened")
}
