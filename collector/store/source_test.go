package store

import (
	"context"
	"os"
	"path/filepath"
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

// Two sources committing in turn (`--mode ring+ebpf`) each keep their
// exact position and counters, whichever one commit_state holds: live,
// after a reopen and after a crash.
func TestInterleavedSourcesKeepTheirPositionsAndCounters(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	ctx := context.Background()
	type want struct{ pos, records, abandoned, dropped int64 }
	exp := map[uint64]*want{1: {}, 2: {}}
	for n := range 7 {
		id := uint64(1 + n%2)
		if n >= 5 {
			id = 2 // two commits in a row of one source, then a crash copy
		}
		w := exp[id]
		w.pos += 10
		w.records += 2
		w.abandoned++
		w.dropped = int64(5 * n)
		require.NoError(t, s.Commit(ctx, []ring.Record{
			ev(int32(10+id), 1000, uint64(n), ring.OpOpenat, ring.AccessRead, 3, "/f"),
			ev(int32(10+id), 1000, uint64(n), ring.OpOpenat, ring.AccessRead, 3, "/g"),
		}, Checkpoint{SourceInfo: SourceInfo{ID: id, Kind: "ring", Path: "r"}, Position: uint64(w.pos), Abandoned: 1, DroppedFull: uint64(5 * n)}))
	}
	check := func(st *Store, when string) {
		for id, w := range exp {
			var got want
			require.NoError(t, st.rdb.QueryRow("SELECT position, records, abandoned, dropped_full FROM sources WHERE id = ?", int64(id)).
				Scan(&got.pos, &got.records, &got.abandoned, &got.dropped), when)
			assert.Equal(t, *w, got, "%s: source %d", when, id)
			pos, ok, err := st.Resume(ctx, id)
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, uint64(w.pos), pos, when)
		}
		stats, err := st.Stats(ctx)
		require.NoError(t, err)
		assert.Equal(t, uint64(14), stats.Records, when)
	}
	check(s, "live")
	crash := crashCopy(t, dir, nil)
	require.NoError(t, s.Close())
	check(mustOpen(t, dir, Options{ReadOnly: true}), "reopened")
	c := mustOpen(t, crash, Options{})
	check(c, "after a crash")
	// The crashed copy's writer goes on with source 1 (not the one
	// commit_state held): source 2's values move to its row.
	require.NoError(t, c.Commit(ctx, nil, Checkpoint{SourceInfo: SourceInfo{ID: 1, Kind: "ring", Path: "r"}, Position: 40}))
	exp[1].pos = 40
	check(c, "after the crash, another source")
	require.NoError(t, c.Close())
	check(mustOpen(t, crash, Options{ReadOnly: true}), "after the crash, reopened")
}

// A commit writes its metadata as one row: with a running process whose
// span moves, it adds two pages to the WAL (commit_state and the
// process's row), where a row per table (sources, trace_logs twice,
// event_segments) made four.
func TestACommitWritesTwoPages(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	s.stopCheckpoints() // the WAL only grows from here
	s.stopCheckpoints = nil
	ctx := context.Background()
	cp := Checkpoint{SourceInfo: SourceInfo{ID: 1, Kind: "ring", Path: "r"}}
	for n := range 3 {
		cp.Position++
		require.NoError(t, s.Commit(ctx, []ring.Record{proc(10, 1, 1000, "/bin/app"), ev(10, 1000, uint64(2000+n), ring.OpOpenat, ring.AccessRead, 3, "/f")}, cp))
	}
	var page int64
	require.NoError(t, s.rdb.QueryRow("PRAGMA page_size").Scan(&page))
	wal := filepath.Join(dir, DBName+"-wal")
	before, err := os.Stat(wal)
	require.NoError(t, err)
	cp.Position++
	// A new path, an aggregate, a raw event; the process's last_ns moves.
	require.NoError(t, s.Commit(ctx, []ring.Record{ev(10, 1000, 3000, ring.OpOpenat, ring.AccessRead, 3, "/new")}, cp))
	after, err := os.Stat(wal)
	require.NoError(t, err)
	assert.Equal(t, int64(2), (after.Size()-before.Size())/(page+24), "WAL frames of one commit")
}
