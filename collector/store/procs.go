package store

import (
	"bytes"
	"context"
	"database/sql"
	"strings"

	"github.com/restrack/restrack/ring"
)

// cacheLimit bounds each id cache (files, processes). Past it the cache
// forgets what the database already holds and lookups of forgotten entries
// fall back to the database: memory stays bounded on a week-long trace full
// of temporary files.
const cacheLimit = 200_000

type procKey struct {
	pid   int32
	start uint64
}

type procEntry struct {
	key               procKey
	id                int64
	ppid              int32
	exe, cwd          string
	argv              []byte
	argvTrunc         bool
	first, last, exit uint64
	exited            bool
	uid               int64 // verified owner; -1 unknown (NULL)
	dirty             bool  // changed since the last flush
	// full: more than first_ns/last_ns/exit_ns changed (a long-running
	// process only stretches its time span commit after commit, then
	// exits: those updates bind three integers, not its argv and command
	// again).
	full   bool
	stored bool // has a row (else it is inserted at the flush)
}

// procTable gives each process its id and keeps its row: the latest exe,
// cwd and argv, its first and last record times and its exit. New ids are
// handed out here (the writer is the only one), so a new process costs a
// map insert until the commit writes its row.
type procTable struct {
	limit    int // cache bound: cacheLimit, smaller in tests
	m        map[procKey]*procEntry
	complete bool // every stored process is in m: a miss is new
	nextID   int64
	dirty    []*procEntry // changed entries, flushed at the commit
	// last is the entry of the previous record: records come in runs of
	// one process, and hashing the key was a fifth of the commit's time.
	last    *procEntry
	evictAt int   // map size that triggers the next eviction pass
	insArgs []any // the new processes' values, reused by flush
}

func (t *procTable) load(ctx context.Context, tx *sql.Tx) error {
	t.m, t.complete, t.dirty, t.last, t.evictAt = make(map[procKey]*procEntry), false, t.dirty[:0], nil, 0
	var n, maxID int64
	if err := tx.QueryRowContext(ctx, "SELECT count(*), coalesce(max(id), 0) FROM processes").Scan(&n, &maxID); err != nil {
		return err
	}
	t.nextID = maxID + 1
	if n > int64(t.limit/2) {
		return nil
	}
	rows, err := tx.QueryContext(ctx, procSelect)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		k, e, err := scanProc(rows)
		if err != nil {
			return err
		}
		t.m[k] = e
	}
	t.complete = true
	return rows.Err()
}

const procSelect = "SELECT id, pid, start_ns, ppid, exe, cwd, argv, argv_truncated, first_ns, last_ns, exit_ns, coalesce(uid, -1) FROM processes"

func scanProc(row interface{ Scan(...any) error }) (procKey, *procEntry, error) {
	var k procKey
	e := procEntry{stored: true}
	var start, first, last int64
	var exit sql.NullInt64
	if err := row.Scan(&e.id, &k.pid, &start, &e.ppid, &e.exe, &e.cwd, &e.argv, &e.argvTrunc, &first, &last, &exit, &e.uid); err != nil {
		return k, nil, err
	}
	k.start = uint64(start)
	e.key = k
	e.first, e.last = uint64(first), uint64(last)
	e.exit, e.exited = uint64(exit.Int64), exit.Valid
	return k, &e, nil
}

// get finds or creates the process of a record and stretches its time span.
func (t *procTable) get(ctx context.Context, tx *sql.Tx, r *ring.Record) (*procEntry, error) {
	k := procKey{r.PID, r.StartNs}
	p, ok := t.last, t.last != nil && t.last.key == k
	if !ok {
		p, ok = t.m[k]
	}
	if !ok {
		if !t.complete {
			_, e, err := scanProc(tx.QueryRowContext(ctx, procSelect+" WHERE pid = ? AND start_ns = ?", r.PID, int64(r.StartNs)))
			switch {
			case err == nil:
				p = e
			case err != sql.ErrNoRows:
				return nil, err
			}
		}
		if p == nil {
			p = &procEntry{key: k, uid: -1, id: t.nextID, ppid: r.PPID, first: r.TimeNs, last: r.TimeNs}
			t.nextID++
			t.touch(p)
		}
		t.evictIfFull()
		t.m[k] = p
	}
	t.last = p
	if r.TimeNs < p.first {
		p.first = r.TimeNs
		t.touchTimes(p)
	}
	if r.TimeNs > p.last {
		p.last = r.TimeNs
		t.touchTimes(p)
	}
	return p, nil
}

// evictIfFull forgets the clean entries when the cache is full. Dirty ones
// are pinned: their changes (an exe, an argv) exist only here until the
// flush, and a second entry loaded from the stale row would be flushed over
// them.
func (t *procTable) evictIfFull() {
	if len(t.m) < max(t.limit, t.evictAt) {
		return
	}
	for k, p := range t.m {
		if !p.dirty {
			delete(t.m, k)
		}
	}
	// Passes that free little (a batch of many new processes) wait for
	// the map to grow by half a limit: O(1) per process.
	t.complete, t.last, t.evictAt = false, nil, len(t.m)+t.limit/2
}

// touch marks p's row for a full write at the flush; touchTimes only
// its first/last/exit times.
func (t *procTable) touch(p *procEntry) {
	p.full = true
	t.touchTimes(p)
}

func (t *procTable) touchTimes(p *procEntry) {
	if !p.dirty {
		p.dirty = true
		t.dirty = append(t.dirty, p)
	}
}

// apply takes a process record: exec replaces the program, exit closes the
// process. Later records win, as they describe the process now.
func (t *procTable) apply(p *procEntry, r *ring.Record) {
	switch r.Op {
	case ring.OpProcExit:
		p.exit, p.exited = r.TimeNs, true
		t.touchTimes(p) // exit_ns is written with the times
		return
	default:
		if len(r.Str1) > 0 {
			p.exe = string(r.Str1)
		}
		if len(r.Str2) > 0 {
			p.cwd = string(r.Str2)
		}
		if len(r.Str3) > 0 || r.Op == ring.OpProcExec {
			p.argv = append(p.argv[:0:0], r.Str3...)
			p.argvTrunc = r.RFlags&ring.RFArgvTruncated != 0
		}
		if r.Op != ring.OpProcExec {
			p.ppid = r.PPID
		}
	}
	t.touch(p)
}

// flush writes every changed process: new ones inserted, others updated.
func (t *procTable) flush(ctx context.Context, tx *sql.Tx, st *writerStmts) error {
	if len(t.dirty) == 0 {
		return nil
	}
	stmt := func(s **sql.Stmt, parent *sql.Stmt) *sql.Stmt {
		if *s == nil {
			*s = tx.StmtContext(ctx, parent)
		}
		return *s
	}
	var ins, insMany, upd, times *sql.Stmt
	rows := t.insArgs[:0]
	for _, p := range t.dirty {
		var exit any
		if p.exited {
			exit = int64(p.exit)
		}
		if p.stored && !p.full {
			if _, err := stmt(&times, st.procTimes).ExecContext(ctx, int64(p.first), int64(p.last), exit, p.id); err != nil {
				return err
			}
			continue
		}
		var uid any
		if p.uid >= 0 {
			uid = p.uid
		}
		if p.stored {
			if _, err := stmt(&upd, st.procUpdate).ExecContext(ctx, p.ppid, p.exe, p.cwd, p.argv, p.argvTrunc, int64(p.first), int64(p.last),
				exit, command(p.argv), uid, p.id); err != nil {
				return err
			}
			continue
		}
		rows = append(rows, p.ppid, p.exe, p.cwd, p.argv, p.argvTrunc, int64(p.first), int64(p.last), exit, command(p.argv), uid, p.id,
			p.key.pid, int64(p.key.start))
		if len(rows) == procInsertRows*procInsertCols {
			if _, err := stmt(&insMany, st.procInsertMany).ExecContext(ctx, rows...); err != nil {
				return err
			}
			rows = rows[:0]
		}
	}
	for i := 0; i < len(rows); i += procInsertCols {
		if _, err := stmt(&ins, st.procInsert).ExecContext(ctx, rows[i:i+procInsertCols]...); err != nil {
			return err
		}
	}
	clear(rows)
	t.insArgs = rows[:0]
	return nil
}

// flushed marks the flushed entries clean once their transaction commits.
func (t *procTable) flushed() {
	for _, p := range t.dirty {
		p.dirty, p.stored, p.full = false, true, false
	}
	t.dirty = t.dirty[:0]
}

// command is argv for people: the arguments joined by spaces (sqlite3 of
// Debian 12 cuts a BLOB at its first NUL in replace(), so the NUL-separated
// argv alone printed only the program's name).
func command(argv []byte) string { return string(bytes.ReplaceAll(argv, []byte{0}, []byte{' '})) }

const (
	procInsertSQL = `INSERT INTO processes (ppid, exe, cwd, argv, argv_truncated, first_ns, last_ns, exit_ns, command, uid, id, pid, start_ns)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	procUpdateSQL = `UPDATE processes SET ppid = ?, exe = ?, cwd = ?, argv = ?, argv_truncated = ?,
		first_ns = ?, last_ns = ?, exit_ns = ?, command = ?, uid = ? WHERE id = ?`
	procTimesSQL = `UPDATE processes SET first_ns = ?, last_ns = ?, exit_ns = ? WHERE id = ?`
	// A build starts processes by the dozen per commit: a statement
	// inserts procInsertRows of them (the per-statement cost of
	// database/sql and SQLite paid once), the rest go one by one.
	procInsertRows = 16
	procInsertCols = 13
)

var procInsertManySQL = procInsertSQL + strings.Repeat(", (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", procInsertRows-1)
