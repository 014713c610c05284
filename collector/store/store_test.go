package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/ring"
	"github.com/restrack/restrack/trace"
)

func mustOpen(tb testing.TB, dir string, opts Options) *Store {
	tb.Helper()
	s, err := Open(dir, opts)
	require.NoError(tb, err)
	tb.Cleanup(func() { s.Close() })
	return s
}

func mustCommit(tb testing.TB, s *Store, pos uint64, recs ...ring.Record) {
	tb.Helper()
	require.NoError(tb, s.Commit(context.Background(), recs, Checkpoint{
		SourceInfo: SourceInfo{ID: 42, Kind: "ring", Path: "/dev/shm/test"}, Position: pos,
	}))
}

func proc(pid, ppid int32, start uint64, exe string, argv ...string) ring.Record {
	var a []byte
	for i, s := range argv {
		if i > 0 {
			a = append(a, 0)
		}
		a = append(a, s...)
	}
	return ring.Record{Type: ring.TypeProc, Op: ring.OpProcStart, PID: pid, PPID: ppid, StartNs: start,
		TimeNs: start, Str1: []byte(exe), Str2: []byte("/"), Str3: a}
}

func ev(pid int32, start uint64, t uint64, op ring.Op, access uint8, result int32, path string, path2 ...string) ring.Record {
	r := ring.Record{Type: ring.TypeEvent, Op: op, Access: access, PID: pid, TID: pid, StartNs: start, TimeNs: t,
		Result: result, Str1: []byte(path)}
	if len(path2) > 0 {
		r.Str2 = []byte(path2[0])
	}
	return r
}

// crashCopy copies a store directory as a crash of its writer would leave
// it (the writer's lock aside), each file passed through tear when given.
func crashCopy(tb testing.TB, dir string, tear func(name string, b []byte) []byte) string {
	tb.Helper()
	crash := tb.TempDir()
	ents, err := os.ReadDir(dir)
	require.NoError(tb, err)
	for _, e := range ents {
		if e.Name() == LockName || e.Name() == DBName+"-shm" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(tb, err)
		if tear != nil {
			b = tear(e.Name(), b)
		}
		require.NoError(tb, os.WriteFile(filepath.Join(crash, e.Name()), b, 0o600))
	}
	return crash
}

func TestTrace(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	mustCommit(t, s, 10,
		proc(100, 1, 1000, "/bin/sh", "sh", "-c", "cat x"),
		proc(101, 100, 2000, "/bin/cat", "cat", "x"),
		ev(101, 2000, 2100, ring.OpOpenat, ring.AccessRead, 3, "/etc/hostname"),
		ev(101, 2000, 2200, ring.OpOpenat, ring.AccessRead, 3, "/etc/hostname"),
		ev(101, 2000, 2300, ring.OpOpenat, ring.AccessRead, -2, "/etc/hostname"),
		ev(100, 1000, 2400, ring.OpOpenat, ring.AccessWrite, 1, "/tmp/out"),
	)
	// A second batch folds into the same aggregates.
	mustCommit(t, s, 20,
		ev(100, 1000, 2500, ring.OpRename, ring.AccessWrite, 0, "/tmp/out", "/tmp/final"),
		ev(101, 2000, 2600, ring.OpOpenat, ring.AccessRead, 3, "/etc/hostname"),
		ring.Record{Type: ring.TypeProc, Op: ring.OpProcExit, PID: 101, StartNs: 2000, TimeNs: 2700},
	)
	tr, err := s.Trace(context.Background())
	require.NoError(t, err)

	require.Len(t, tr.Processes, 2)
	sh, cat := tr.Processes[0], tr.Processes[1]
	assert.Equal(t, trace.ProcKey{PID: 100, StartNs: 1000}, sh.Key)
	assert.Equal(t, trace.ProcKey{}, sh.Parent, "an untraced parent stays zero")
	assert.Equal(t, []string{"sh", "-c", "cat x"}, sh.Argv)
	assert.Equal(t, sh.Key, cat.Parent)
	assert.Equal(t, "/bin/cat", cat.Exe)
	assert.True(t, cat.Exited)
	assert.False(t, sh.Exited)
	assert.Equal(t, uint64(2000), cat.FirstNs)
	assert.Equal(t, uint64(2700), cat.LastNs)

	got := map[string]trace.Access{}
	for _, a := range tr.Accesses {
		got[a.Path+" "+a.Op] = a
	}
	require.Len(t, got, 4)
	host := got["/etc/hostname openat"]
	require.NotZero(t, host.File, "accesses name their file by number")
	assert.Equal(t, host.Path, tr.Files[host.File-1])
	host.File = 0
	assert.Equal(t, trace.Access{Proc: cat.Key, Path: "/etc/hostname", Op: "openat", Count: 3, Failures: 1, FirstNs: 2100, LastNs: 2600}, host)
	assert.True(t, got["/tmp/out openat"].Write)
	assert.True(t, got["/tmp/out rename"].Write, "a rename writes its source")
	assert.True(t, got["/tmp/final rename"].Write, "and its target")

	pos, ok, err := s.Resume(context.Background(), 42)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, uint64(20), pos)
	_, ok, err = s.Resume(context.Background(), 43)
	require.NoError(t, err)
	assert.False(t, ok, "another ring is unknown")
}

func TestEventsRoundTripAnyPathBytes(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	weird := "/tmp/new\nline/\xff\xfe-not-utf8"
	mustCommit(t, s, 3,
		ev(7, 70, 1, ring.OpOpen, ring.AccessWrite, 3, weird),
		ev(7, 70, 2, ring.OpChdir, ring.AccessNone, 0, "/tmp"),
		ev(8, 80, 3, ring.OpRename, ring.AccessWrite, 0, "/a", "/b"),
	)
	var got []Event
	collect := func(f EventFilter) []Event {
		got = nil
		require.NoError(t, s.Events(context.Background(), f, func(e *Event) error { got = append(got, *e); return nil }))
		return got
	}
	all := collect(EventFilter{})
	require.Len(t, all, 2, "context-only events are left out by default")
	assert.Equal(t, weird, all[0].Path)
	assert.Equal(t, "/b", all[1].Path2)
	assert.Len(t, collect(EventFilter{All: true}), 3)
	assert.Len(t, collect(EventFilter{PID: 8}), 1)
	assert.Len(t, collect(EventFilter{PathGlob: "/tmp/*"}), 1)
	assert.Len(t, collect(EventFilter{PathGlob: "/b"}), 1, "the glob also matches the second path")
}

func TestEventsAfterASeqAreOnlyTheNewerOnesAcrossChunks(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	for b := range 3 {
		var recs []ring.Record
		for i := range 4 {
			recs = append(recs, ev(1, 1, uint64(b*4+i), ring.OpOpen, ring.AccessRead, 3, "/x"))
		}
		mustCommit(t, s, uint64(b+1), recs...)
	}
	var seqs []int64
	var times []uint64
	require.NoError(t, s.Events(context.Background(), EventFilter{}, func(e *Event) error { seqs = append(seqs, e.Seq); return nil }))
	require.Len(t, seqs, 12)
	for _, after := range []int{0, 2, 3, 4, 5, 10, 11} {
		times = times[:0]
		require.NoError(t, s.Events(context.Background(), EventFilter{AfterSeq: seqs[after]}, func(e *Event) error {
			times = append(times, e.TimeNs)
			return nil
		}))
		want := []uint64{}
		for i := after + 1; i < 12; i++ {
			want = append(want, uint64(i))
		}
		assert.Equal(t, want, append([]uint64{}, times...), "after the event at %d", after)
	}
}

func TestRetentionKeepsTheNewestEvents(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{RetainEvents: 100})
	for b := range 20 {
		var recs []ring.Record
		for i := range 50 {
			recs = append(recs, ev(1, 1, uint64(b*50+i), ring.OpOpen, ring.AccessRead, 3, "/x"))
		}
		mustCommit(t, s, uint64(b+1), recs...)
	}
	var first *Event
	n := 0
	require.NoError(t, s.Events(context.Background(), EventFilter{}, func(e *Event) error {
		if first == nil {
			c := *e
			first = &c
		}
		n++
		return nil
	}))
	assert.Equal(t, 100, n, "the window holds exactly the newest events")
	assert.Equal(t, uint64(900), first.TimeNs, "the oldest are pruned")
	tr, err := s.Trace(context.Background())
	require.NoError(t, err)
	require.Len(t, tr.Accesses, 1)
	assert.Equal(t, uint64(1000), tr.Accesses[0].Count, "aggregates are never pruned")
}

func TestDiscardEventsKeepsAggregates(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{DiscardEvents: true})
	mustCommit(t, s, 1, ev(1, 1, 1, ring.OpOpen, ring.AccessRead, 3, "/x"))
	require.NoError(t, s.Fold(context.Background()))
	st, err := s.Stats(context.Background())
	require.NoError(t, err)
	assert.Equal(t, int64(0), st.EventsRetained)
	assert.Equal(t, int64(1), st.Accesses)
}

func TestOpenRefusesWhatIsNotAStore(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(tb testing.TB, dir string)
		opts    Options
		wantErr string
	}{
		{
			name: "a SQLite database of another program is left alone",
			prepare: func(tb testing.TB, dir string) {
				db, err := sql.Open("sqlite", filepath.Join(dir, DBName))
				require.NoError(tb, err)
				_, err = db.Exec("CREATE TABLE theirs (x); PRAGMA application_id = 7")
				require.NoError(tb, err)
				require.NoError(tb, db.Close())
			},
			wantErr: "another program",
		},
		{
			name: "a file of garbage is called corrupted",
			prepare: func(tb testing.TB, dir string) {
				require.NoError(tb, os.WriteFile(filepath.Join(dir, DBName), []byte("this is not a database at all, really not, not even a bit of it"), 0o600))
			},
			wantErr: "corrupted or not a SQLite database",
		},
		{
			name: "a store from a newer restrack is refused",
			prepare: func(tb testing.TB, dir string) {
				s := mustOpen(tb, dir, Options{})
				_, err := s.db.Exec("PRAGMA user_version = 99")
				require.NoError(tb, err)
				require.NoError(tb, s.Close())
			},
			wantErr: "newer",
		},
		{
			name:    "a missing store cannot be read",
			prepare: func(testing.TB, string) {},
			opts:    Options{ReadOnly: true},
			wantErr: "no restrack store",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.prepare(t, dir)
			before, _ := os.ReadFile(filepath.Join(dir, DBName))
			_, err := Open(dir, tt.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			after, _ := os.ReadFile(filepath.Join(dir, DBName))
			assert.True(t, bytes.Equal(before, after), "the file is not rewritten")
		})
	}
}

func TestASecondWriterIsRefused(t *testing.T) {
	dir := t.TempDir()
	mustOpen(t, dir, Options{})
	_, err := Open(dir, Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "in use by another writer")
	r := mustOpen(t, dir, Options{ReadOnly: true})
	_, err = r.Stats(context.Background())
	assert.NoError(t, err, "readers share the store with the writer")
}

func TestUnwritableDirectoryIsAClearError(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes anywhere: permissions cannot make a directory unwritable")
	}
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o500))
	_, err := Open(filepath.Join(dir, "store"), Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "permission denied")
}

// A crash can leave the WAL with a half-written last frame. SQLite's frame
// checksums make it ignore the torn frame: the store opens with everything
// committed before it.
func TestTornWALTailOpensWithCommittedData(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	mustCommit(t, s, 1, ev(1, 1, 1, ring.OpOpen, ring.AccessRead, 3, "/committed"))
	_, err := s.db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	require.NoError(t, err)
	mustCommit(t, s, 2, ev(1, 1, 2, ring.OpOpen, ring.AccessRead, 3, "/also-committed"))
	mustCommit(t, s, 3, ev(1, 1, 3, ring.OpOpen, ring.AccessRead, 3, "/torn"))

	// Snapshot the files as a crash would leave them (the store still
	// open, so nothing is checkpointed), then tear the WAL's last frame.
	crash := crashCopy(t, dir, func(name string, b []byte) []byte {
		if name == DBName+"-wal" {
			return b[:len(b)-100]
		}
		return b
	})
	c := mustOpen(t, crash, Options{})
	require.NoError(t, c.Check(context.Background()))
	var paths []string
	require.NoError(t, c.Events(context.Background(), EventFilter{}, func(e *Event) error { paths = append(paths, e.Path); return nil }))
	assert.Equal(t, []string{"/committed", "/also-committed"}, paths)
	pos, _, err := c.Resume(context.Background(), 42)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), pos, "the position is as torn as the data: a restart re-reads the lost batch")
}

// Aggregates committed as log entries are part of the trace at once,
// survive a crash (a chunk per commit, summed by readers), and are
// materialized into the SQL table accesses on demand, each counted once.
func TestUnfoldedAggregatesAreNeitherLostNorCountedTwice(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	mustCommit(t, s, 1, ev(1, 1, 1, ring.OpOpen, ring.AccessRead, 3, "/x"), ev(1, 1, 2, ring.OpOpen, ring.AccessRead, 3, "/x"))
	mustCommit(t, s, 2, ev(1, 1, 3, ring.OpOpen, ring.AccessRead, -13, "/x"), ev(1, 1, 4, ring.OpOpen, ring.AccessWrite, 3, "/y"))
	want := map[string]trace.Access{
		"/x": {Proc: trace.ProcKey{PID: 1, StartNs: 1}, Path: "/x", Op: "open", Count: 2, Failures: 1, FirstNs: 1, LastNs: 3},
		"/y": {Proc: trace.ProcKey{PID: 1, StartNs: 1}, Path: "/y", Op: "open", Write: true, Count: 1, FirstNs: 4, LastNs: 4},
	}
	check := func(st *Store, when string) {
		tr, err := st.Trace(context.Background())
		require.NoError(t, err)
		got := map[string]trace.Access{}
		for _, a := range tr.Accesses {
			assert.Equal(t, a.Path, tr.Files[a.File-1], when)
			a.File = 0
			got[a.Path] = a
		}
		assert.Equal(t, want, got, when)
	}
	check(s, "before folding")

	// A crash now: a copy of the files as they are, deltas unfolded.
	crash := crashCopy(t, dir, nil)
	c := mustOpen(t, crash, Options{})
	check(c, "after a crash")
	mustCommit(t, c, 3, ev(1, 1, 5, ring.OpOpen, ring.AccessRead, 3, "/x"))
	want["/x"] = trace.Access{Proc: trace.ProcKey{PID: 1, StartNs: 1}, Path: "/x", Op: "open", Count: 3, Failures: 1, FirstNs: 1, LastNs: 5}
	check(c, "after the next commit")
	require.NoError(t, c.Fold(context.Background()))
	require.NoError(t, c.Close())
	r := mustOpen(t, crash, Options{ReadOnly: true})
	st, err := r.Stats(context.Background())
	require.NoError(t, err)
	assert.Equal(t, int64(0), st.AccessDeltas, "materializing takes every entry")
	assert.Equal(t, int64(2), st.Accesses)
	check(r, "after materializing")
}

// Whatever bytes a damaged disk hands back, reading a store fails with an
// error or succeeds; it never panics (design §10: corrupted store).
func TestDamagedStoreNeverCrashesItsReaders(t *testing.T) {
	src := t.TempDir()
	s := mustOpen(t, src, Options{})
	var recs []ring.Record
	for i := range 2000 {
		recs = append(recs, ev(int32(1+i%7), 1, uint64(i), ring.OpOpenat, uint8(1+i%2), 3, fmt.Sprintf("/data/f%d", i%300)))
	}
	mustCommit(t, s, 1, recs...)
	require.NoError(t, s.Close())
	clean, err := os.ReadFile(filepath.Join(src, DBName))
	require.NoError(t, err)

	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 40 {
		b := bytes.Clone(clean)
		// Damage a run of bytes somewhere past the header (a bad header
		// is the "not a SQLite database" case, tested above).
		at := 100 + rng.IntN(len(b)-200)
		for j := range 1 + rng.IntN(64) {
			b[at+j] = byte(rng.Uint32())
		}
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, DBName), b, 0o600))
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("damage %d at %d: panic %v", i, at, r)
				}
			}()
			r, err := Open(dir, Options{ReadOnly: true})
			if err != nil {
				return
			}
			defer r.Close()
			_, _ = r.Stats(context.Background())
			_, _ = r.Trace(context.Background())
			_ = r.Events(context.Background(), EventFilter{All: true}, func(*Event) error { return nil })
		}()
	}
}

// A process's exe and argv live only in the writer's cache until the
// commit writes them. When the cache fills up mid-batch it must keep them:
// forgetting the entry made the next record reload the stale row, which
// was then written over the one holding the exe.
func TestAFullProcessCacheKeepsWhatItHasNotWrittenYet(t *testing.T) {
	tests := []struct {
		name  string
		limit int
	}{
		{"a cache of two processes", 2},
		{"a cache of three processes", 3},
		{"the default cache", cacheLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpen(t, t.TempDir(), Options{})
			s.w.procs.limit = tt.limit
			// The service exists in the store before the batch, without
			// an exe: the row a forgetful cache would reload.
			mustCommit(t, s, 1, ev(10, 100, 1, ring.OpOpen, ring.AccessRead, 3, "/etc/before"))
			recs := []ring.Record{proc(10, 1, 100, "/usr/bin/service", "service", "--serve")}
			for pid := int32(20); pid < 30; pid++ { // other processes fill the cache
				recs = append(recs, ev(pid, 200, 2, ring.OpOpen, ring.AccessRead, 3, fmt.Sprintf("/tmp/f%d", pid)))
			}
			recs = append(recs, ev(10, 100, 3, ring.OpOpen, ring.AccessRead, 3, "/etc/after"))
			mustCommit(t, s, 2, recs...)

			tr, err := s.Trace(context.Background())
			require.NoError(t, err)
			require.Len(t, tr.Processes, 11)
			for _, p := range tr.Processes {
				if p.Key.PID == 10 {
					assert.Equal(t, "/usr/bin/service", p.Exe)
					assert.Equal(t, []string{"service", "--serve"}, p.Argv)
				}
			}
			files := map[string]bool{}
			for _, a := range tr.Accesses {
				files[a.Path] = true
			}
			assert.Len(t, files, 12, "every file once, whatever the cache forgot")

			// Folded into the files table and seen again through a cache
			// that forgets: still one id per path.
			require.NoError(t, s.Fold(context.Background()))
			mustCommit(t, s, 3, recs[1:]...)
			st, err := s.Stats(context.Background())
			require.NoError(t, err)
			assert.Equal(t, int64(12), st.Files)
		})
	}
}

// Raw events go to segment files outside SQLite; a chunk written whose
// commit never happened (a kill between the write and the commit) is cut
// by the next writer, and a committed chunk damaged on disk is an error
// naming its file, never wrong events.
func TestEventSegmentsKeepExactlyTheCommittedChunks(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	mustCommit(t, s, 1, ev(1, 1, 1, ring.OpOpen, ring.AccessRead, 3, "/one"))
	mustCommit(t, s, 2, ev(1, 1, 2, ring.OpOpen, ring.AccessRead, 3, "/two"))
	seg := filepath.Join(dir, segmentName(1))
	crash := crashCopy(t, dir, func(name string, b []byte) []byte {
		if name == filepath.Base(seg) {
			return append(b, []byte("RTEV and the rest of a chunk whose commit never came")...)
		}
		return b
	})
	require.NoError(t, s.Close())

	paths := func(st *Store) ([]string, error) {
		var got []string
		err := st.Events(context.Background(), EventFilter{}, func(e *Event) error { got = append(got, e.Path); return nil })
		return got, err
	}
	c := mustOpen(t, crash, Options{})
	mustCommit(t, c, 3, ev(1, 1, 3, ring.OpOpen, ring.AccessRead, 3, "/three"))
	got, err := paths(c)
	require.NoError(t, err)
	assert.Equal(t, []string{"/one", "/two", "/three"}, got, "the uncommitted tail is cut before the next chunk")
	require.NoError(t, c.Close())

	b, err := os.ReadFile(filepath.Join(crash, segmentName(1)))
	require.NoError(t, err)
	b[chunkHeaderLen+2] ^= 0xff // inside the first chunk's payload
	require.NoError(t, os.WriteFile(filepath.Join(crash, segmentName(1)), b, 0o600))
	r := mustOpen(t, crash, Options{ReadOnly: true})
	_, err = paths(r)
	require.Error(t, err)
	assert.Contains(t, err.Error(), segmentName(1))
	assert.Contains(t, err.Error(), "checksum")
}
