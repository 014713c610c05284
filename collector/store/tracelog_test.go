package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/ring"
)

// accessCounts summarises a trace as path → "op r|w count/failures".
func accessCounts(tb testing.TB, s *Store) map[string]string {
	tb.Helper()
	tr, err := s.Trace(context.Background())
	require.NoError(tb, err)
	got := map[string]string{}
	for _, a := range tr.Accesses {
		require.Equal(tb, a.Path, tr.Files[a.File-1], "an access names its file by number")
		rw := "r"
		if a.Write {
			rw = "w"
		}
		k := fmt.Sprintf("%d %s %s %s", a.Proc.PID, a.Path, a.Op, rw)
		require.NotContains(tb, got, k, "one aggregate per key")
		got[k] = fmt.Sprintf("%d/%d %d-%d", a.Count, a.Failures, a.FirstNs, a.LastNs)
	}
	return got
}

// sqlCounts is the same summary from the materialized SQL view, as a
// sqlite3 user sees it.
func sqlCounts(tb testing.TB, s *Store) map[string]string {
	tb.Helper()
	rows, err := s.rdb.Query("SELECT pid, path, op, access, count, failures, first_ns, last_ns FROM v_accesses")
	require.NoError(tb, err)
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var pid, count, failures, first, last int64
		var path, op, access string
		require.NoError(tb, rows.Scan(&pid, &path, &op, &access, &count, &failures, &first, &last))
		got[fmt.Sprintf("%d %s %s %s", pid, path, op, access[:1])] = fmt.Sprintf("%d/%d %d-%d", count, failures, first, last)
	}
	require.NoError(tb, rows.Err())
	return got
}

// A chunk appended to the path or accesses log whose commit never came (a
// kill between the write and the commit) is cut by the next writer; a
// committed chunk damaged on disk is an error naming the file.
func TestTraceLogsKeepExactlyTheCommittedChunks(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	mustCommit(t, s, 1, ev(1, 1, 1, ring.OpOpen, ring.AccessRead, 3, "/one"))
	mustCommit(t, s, 2, ev(1, 1, 2, ring.OpOpen, ring.AccessRead, 3, "/one"), ev(1, 1, 3, ring.OpOpen, ring.AccessWrite, 3, "/two"))
	crash := crashCopy(t, dir, func(name string, b []byte) []byte {
		switch name {
		case logName(pathsLog, 1):
			// An uncommitted chunk claiming the next ids: numbering them
			// again must not collide with it.
			buf := appendPath(make([]byte, chunkHeaderLen), []byte("/never-committed"))
			sealChunk(buf, pathsMagic, 1, 3, 0)
			return append(b, buf...)
		case logName(accessesLog, 1):
			return append(b, []byte("RTAG and the rest of a chunk whose commit never came")...)
		}
		return b
	})
	c := mustOpen(t, crash, Options{})
	mustCommit(t, c, 3, ev(1, 1, 4, ring.OpOpen, ring.AccessRead, 3, "/three"), ev(1, 1, 5, ring.OpOpen, ring.AccessRead, 3, "/one"))
	want := map[string]string{
		"1 /one open r":   "3/0 1-5",
		"1 /two open w":   "1/0 3-3",
		"1 /three open r": "1/0 4-4",
	}
	assert.Equal(t, want, accessCounts(t, c), "the uncommitted tails are cut before the next chunks")
	var paths []string
	require.NoError(t, c.Events(context.Background(), EventFilter{}, func(e *Event) error { paths = append(paths, e.Path); return nil }))
	assert.Equal(t, []string{"/one", "/one", "/two", "/three", "/one"}, paths)
	require.NoError(t, c.Close())
	assert.Equal(t, want, accessCounts(t, mustOpen(t, crash, Options{ReadOnly: true})), "reopened by a reader")

	for _, name := range []string{logName(pathsLog, 1), logName(accessesLog, 1)} {
		damaged := crashCopy(t, crash, func(n string, b []byte) []byte {
			if n == name {
				b[chunkHeaderLen+1] ^= 0xff // inside the first chunk's payload
			}
			return b
		})
		r := mustOpen(t, damaged, Options{ReadOnly: true})
		_, err := r.Trace(context.Background())
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), name)
		assert.Contains(t, err.Error(), "checksum")
		if name == logName(pathsLog, 1) {
			w := mustOpen(t, damaged, Options{})
			err := w.Commit(context.Background(), []ring.Record{ev(1, 1, 9, ring.OpOpen, ring.AccessRead, 3, "/one")},
				Checkpoint{SourceInfo: SourceInfo{ID: 42, Kind: "ring"}, Position: 9})
			require.Error(t, err, "a writer needs the path log: it refuses a damaged one (the records stay in the ring)")
			assert.Contains(t, err.Error(), "checksum")
		}
	}
}

// Compaction sums the accesses log into the next generation: the trace is
// the same before and after, across a crash, and the SQL tables are rebuilt
// from the new generation.
func TestCompactionKeepsEveryAggregateOnce(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	pos := uint64(0)
	for b := range 30 {
		var recs []ring.Record
		for i := range 20 {
			r := ev(int32(1+i%3), 1, uint64(b*100+i), ring.OpOpenat, uint8(1+i%2), int32(3-4*(i%5/4)), fmt.Sprintf("/data/f%d", i%7))
			recs = append(recs, r)
		}
		recs = append(recs, ev(9, 1, uint64(b*100+50), ring.OpOpen, ring.AccessRead, 3, fmt.Sprintf("/new/%d", b)))
		pos++
		mustCommit(t, s, pos, recs...)
		if b == 10 {
			ms, err := s.Materialize(context.Background())
			require.NoError(t, err)
			assert.False(t, ms.Rebuilt)
		}
	}
	before := accessCounts(t, s)
	log1 := filepath.Join(dir, logName(accessesLog, 1))
	fi, err := os.Stat(log1)
	require.NoError(t, err)

	s.w.mu.Lock()
	require.NoError(t, s.w.compact(context.Background()))
	s.w.mu.Unlock()
	assert.Equal(t, before, accessCounts(t, s), "compaction changes no aggregate")
	_, err = os.Stat(log1)
	assert.ErrorIs(t, err, os.ErrNotExist, "the old generation is removed")
	fi2, err := os.Stat(filepath.Join(dir, logName(accessesLog, 2)))
	require.NoError(t, err)
	assert.Less(t, fi2.Size(), fi.Size()/2, "one entry per aggregate instead of one per commit")

	pos++
	mustCommit(t, s, pos, ev(1, 1, 9000, ring.OpOpenat, ring.AccessRead, 3, "/data/f0"), ev(9, 1, 9001, ring.OpOpen, ring.AccessRead, 3, "/new/after"))
	after := accessCounts(t, s)
	assert.Equal(t, len(before)+1, len(after))
	crash := crashCopy(t, dir, nil)
	c := mustOpen(t, crash, Options{})
	assert.Equal(t, after, accessCounts(t, c), "after a crash")

	ms, err := c.Materialize(context.Background())
	require.NoError(t, err)
	assert.True(t, ms.Rebuilt, "the SQL table came from the old generation: it is written again")
	assert.Equal(t, after, sqlCounts(t, c), "sqlite3 sees what the planner sees")
	st, err := c.Stats(context.Background())
	require.NoError(t, err)
	assert.Equal(t, int64(0), st.AccessDeltas)
	assert.Equal(t, int64(len(after)), st.Accesses)
}

// Materializing adds only what the logs hold beyond the SQL tables, and
// the tables then say what the planner's trace says.
func TestMaterializeCopiesEachNewRowOnce(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	mustCommit(t, s, 1, ev(1, 1, 1, ring.OpOpen, ring.AccessRead, 3, "/a"), ev(1, 1, 2, ring.OpOpen, ring.AccessWrite, -13, "/b"))
	ms, err := s.Materialize(context.Background())
	require.NoError(t, err)
	assert.Equal(t, MaterializeStats{Files: 2, Accesses: 2}, ms)
	assert.Equal(t, accessCounts(t, s), sqlCounts(t, s))

	mustCommit(t, s, 2, ev(1, 1, 3, ring.OpOpen, ring.AccessRead, 3, "/a"), ev(2, 1, 4, ring.OpRename, ring.AccessWrite, 0, "/c", "/a"))
	st, err := s.Stats(context.Background())
	require.NoError(t, err)
	assert.Equal(t, int64(2), st.Accesses, "the SQL table trails the logs")
	assert.Equal(t, int64(3), st.AccessDeltas, "three aggregate entries since")
	assert.Equal(t, int64(3), st.Files)
	ms, err = s.Materialize(context.Background())
	require.NoError(t, err)
	assert.Equal(t, MaterializeStats{Files: 1, Accesses: 3}, ms, "only the new path and the touched aggregates")
	assert.Equal(t, accessCounts(t, s), sqlCounts(t, s))
	ms, err = s.Materialize(context.Background())
	require.NoError(t, err)
	assert.Equal(t, MaterializeStats{}, ms, "nothing new, nothing done")
	assert.Equal(t, accessCounts(t, s), sqlCounts(t, s))
}

// A store written by schema 6 (paths in files and file_deltas, aggregates
// in accesses and access_deltas) opens with every path and aggregate, and
// goes on from there.
func TestSchema6StoreMigratesWithItsData(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, DBName))
	require.NoError(t, err)
	for v := range 6 {
		_, err := db.Exec(migrations[v])
		require.NoError(t, err, "migration %d", v)
	}
	var delta1, delta2 []byte
	delta1 = appendDeltaBytes(delta1, aggKey{1, 1, ring.OpOpen, false}, aggVal{2, 0, 10, 20})
	delta1 = appendDeltaBytes(delta1, aggKey{1, 3, ring.OpOpen, true}, aggVal{1, 0, 15, 15})
	delta2 = appendDeltaBytes(delta2, aggKey{1, 1, ring.OpOpen, false}, aggVal{1, 1, 5, 30})
	fileDelta := appendPath(appendPath(nil, []byte("/c")), []byte("/d"))
	_, err = db.Exec(`PRAGMA application_id = 0x52545354; PRAGMA user_version = 6;
		INSERT INTO sources (id, kind, path, position, records, first_unix_ns, last_unix_ns) VALUES (42, 'ring', '/dev/shm/test', 7, 7, 1, 1);
		INSERT INTO processes (id, pid, start_ns, ppid, exe, first_ns, last_ns) VALUES (1, 100, 1, 1, '/bin/old', 1, 30);
		INSERT INTO files (id, path) VALUES (1, '/a'), (2, '/b');`)
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO accesses VALUES (1, 1, ?, 0, 4, 0, 1, 9), (1, 2, ?, 0, 1, 0, 3, 3)`, int64(ring.OpOpen), int64(ring.OpOpen))
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO file_deltas (first_id, n, data) VALUES (3, 2, ?)`, fileDelta)
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO access_deltas (data) VALUES (?), (?)`, delta1, delta2)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	s := mustOpen(t, dir, Options{})
	want := map[string]string{
		"100 /a open r": "7/1 1-30",
		"100 /b open r": "1/0 3-3",
		"100 /c open w": "1/0 15-15",
	}
	assert.Equal(t, want, accessCounts(t, s), "every aggregate, folded or not")
	pos, ok, err := s.Resume(context.Background(), 42)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, uint64(7), pos)

	mustCommit(t, s, 8, ev(100, 1, 40, ring.OpOpen, ring.AccessRead, 3, "/d"), ev(100, 1, 41, ring.OpOpen, ring.AccessRead, 3, "/a"),
		ev(100, 1, 42, ring.OpOpen, ring.AccessRead, 3, "/e"))
	want["100 /a open r"] = "8/1 1-41"
	want["100 /d open r"] = "1/0 40-40"
	want["100 /e open r"] = "1/0 42-42"
	assert.Equal(t, want, accessCounts(t, s), "old paths keep their ids, new ones come after")
	tr, err := s.Trace(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"/a", "/b", "/c", "/d", "/e"}, sorted(tr.Files))

	ms, err := s.Materialize(context.Background())
	require.NoError(t, err)
	assert.Equal(t, int64(3), ms.Files, "/c and /d from the deltas, /e")
	assert.Equal(t, want, sqlCounts(t, s))
	require.NoError(t, s.Close())
	r := mustOpen(t, dir, Options{ReadOnly: true})
	st, err := r.Stats(context.Background())
	require.NoError(t, err)
	assert.Equal(t, int64(schemaVersion), st.SchemaVersion)
	assert.Equal(t, int64(5), st.Files)
	assert.Equal(t, want, accessCounts(t, r))
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}

// The path index numbers each path once however the table and the blocks
// grow, and gives back the bytes it was given, long paths included.
func TestPathIndexNumbersEachPathOnce(t *testing.T) {
	x := newPathIndex()
	defer x.free()
	long := bytes.Repeat([]byte("/long"), 20000) // 100,000 bytes: beyond the 16-bit length
	path := func(i int) []byte {
		switch i {
		case 7:
			return long
		case 8:
			return long[:len(long)-1]
		}
		return fmt.Appendf(nil, "/data/%d/file-%d", i%97, i)
	}
	const n = 300_000
	for i := range n {
		id, isNew := x.id(path(i))
		require.True(t, isNew)
		require.Equal(t, int64(i+1), id)
	}
	for i := range n {
		id, isNew := x.id(path(i))
		require.False(t, isNew, "path %d", i)
		require.Equal(t, int64(i+1), id)
		require.Equal(t, path(i), x.path(id))
	}
}

// A compaction killed before its commit leaves a next generation nobody
// names; one killed after it, the old generation. Either way the next
// writer removes the file the database does not name and the trace is
// whole.
func TestAnInterruptedCompactionLeavesOneGeneration(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	mustCommit(t, s, 1, ev(1, 1, 1, ring.OpOpen, ring.AccessRead, 3, "/a"), ev(1, 1, 2, ring.OpOpen, ring.AccessRead, 3, "/b"))
	mustCommit(t, s, 2, ev(1, 1, 3, ring.OpOpen, ring.AccessRead, 3, "/a"))
	want := accessCounts(t, s)

	// Killed before the commit: accesses-2 written, the database names 1.
	before := crashCopy(t, dir, nil)
	require.NoError(t, os.WriteFile(filepath.Join(before, logName(accessesLog, 2)), []byte("RTAG a compaction that never committed"), 0o600))
	// Killed after the commit, before the old file went.
	s.w.mu.Lock()
	require.NoError(t, s.w.compact(context.Background()))
	s.w.mu.Unlock()
	after := crashCopy(t, dir, nil)
	require.NoError(t, os.WriteFile(filepath.Join(after, logName(accessesLog, 1)), []byte("RTAG the old generation"), 0o600))

	for name, d := range map[string]string{"before the commit": before, "after the commit": after} {
		c := mustOpen(t, d, Options{})
		assert.Equal(t, want, accessCounts(t, c), name)
		mustCommit(t, c, 3, ev(1, 1, 4, ring.OpOpen, ring.AccessRead, 3, "/b"))
		got := accessCounts(t, c)
		assert.Equal(t, "2/0 2-4", got["1 /b open r"], name)
		logs, _ := filepath.Glob(filepath.Join(d, "accesses-*.log"))
		assert.Len(t, logs, 1, "%s: the generation the database does not name is removed", name)
	}
}

// The aggregates of a process new in its commit are new keys even on old
// files (a build's compilers reading the same headers): compaction's
// estimate counts them as distinct, so a build of new processes never
// compacts (summing a log of distinct keys gains nothing).
func TestNewProcessesAggregatesCountAsDistinct(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	mustCommit(t, s, 1, ev(1, 1, 10, ring.OpOpen, ring.AccessRead, 3, "/usr/include/stdio.h"), ev(1, 1, 11, ring.OpOpen, ring.AccessRead, 3, "/usr/lib/libc.so.6"))
	// Process 2 is new here; process 1 is not.
	mustCommit(t, s, 2, ev(2, 1, 20, ring.OpOpen, ring.AccessRead, 3, "/usr/include/stdio.h"), ev(2, 1, 21, ring.OpOpen, ring.AccessRead, 3, "/usr/lib/libc.so.6"),
		ev(1, 1, 22, ring.OpOpen, ring.AccessRead, 3, "/usr/include/stdio.h"))
	var n, fresh int64
	require.NoError(t, s.db.QueryRow("SELECT n, fresh FROM trace_logs WHERE name = 'accesses'").Scan(&n, &fresh))
	assert.Equal(t, int64(5), n)
	assert.Equal(t, int64(4), fresh, "2 of new paths, then 2 of a new process; process 1's repeat may repeat a key")
}

// A process that only goes on running updates its times; what an earlier
// commit stored of it (exe, cwd, argv, command, uid) stays.
func TestRunningProcessKeepsItsRowWhileItsTimesMove(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	mustCommit(t, s, 1, proc(7, 1, 100, "/usr/bin/cc", "cc", "-c", "a.c"), ev(7, 100, 150, ring.OpOpen, ring.AccessRead, 3, "/a.c"))
	mustCommit(t, s, 2, ev(7, 100, 300, ring.OpOpen, ring.AccessRead, 3, "/a.h"))
	var exe, command string
	var first, last int64
	require.NoError(t, s.db.QueryRow("SELECT exe, command, first_ns, last_ns FROM processes WHERE pid = 7").Scan(&exe, &command, &first, &last))
	assert.Equal(t, "/usr/bin/cc", exe)
	assert.Equal(t, "cc -c a.c", command)
	assert.Equal(t, int64(100), first)
	assert.Equal(t, int64(300), last, "the span stretched by the second commit")
}

// New processes are inserted procInsertRows to a statement: every row
// gets its own values, whatever its place in a statement or the rest
// inserted one by one; an exit updates a stored row's exit_ns only.
func TestManyNewProcessesInOneCommitKeepTheirRows(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	n := 2*procInsertRows + 5
	var recs []ring.Record
	for i := range n {
		pid := int32(100 + i)
		recs = append(recs, proc(pid, 1, uint64(1000+i), fmt.Sprintf("/bin/p%d", i), fmt.Sprintf("p%d", i), "-x"),
			ev(pid, uint64(1000+i), uint64(5000+i), ring.OpOpen, ring.AccessRead, 3, "/etc/passwd"))
		if i%3 == 0 {
			recs = append(recs, ring.Record{Type: ring.TypeProc, Op: ring.OpProcExit, PID: pid, StartNs: uint64(1000 + i), TimeNs: uint64(6000 + i)})
		}
	}
	mustCommit(t, s, 1, recs...)
	// Process 1 (i = 1) exits in a later commit.
	mustCommit(t, s, 2, ring.Record{Type: ring.TypeProc, Op: ring.OpProcExit, PID: 101, StartNs: 1001, TimeNs: 7001})
	rows, err := s.db.Query("SELECT pid, start_ns, exe, command, first_ns, last_ns, exit_ns FROM processes ORDER BY pid")
	require.NoError(t, err)
	defer rows.Close()
	i := 0
	for ; rows.Next(); i++ {
		var pid, start, first, last int64
		var exe, command string
		var exit sql.NullInt64
		require.NoError(t, rows.Scan(&pid, &start, &exe, &command, &first, &last, &exit))
		assert.Equal(t, int64(100+i), pid)
		assert.Equal(t, int64(1000+i), start)
		assert.Equal(t, fmt.Sprintf("/bin/p%d", i), exe)
		assert.Equal(t, fmt.Sprintf("p%d -x", i), command)
		assert.Equal(t, int64(1000+i), first)
		switch {
		case i%3 == 0:
			assert.Equal(t, sql.NullInt64{Int64: int64(6000 + i), Valid: true}, exit, "pid %d", pid)
			assert.Equal(t, int64(6000+i), last)
		case i == 1:
			assert.Equal(t, sql.NullInt64{Int64: 7001, Valid: true}, exit, "exited in the second commit")
			assert.Equal(t, int64(7001), last)
		default:
			assert.False(t, exit.Valid, "pid %d has not exited", pid)
			assert.Equal(t, int64(5000+i), last)
		}
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, n, i)
}
