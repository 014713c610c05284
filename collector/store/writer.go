package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/restrack/restrack/ring"
)

// SourceInfo names where records come from. ID tells one ring creation from
// another (the ring id); positions are only comparable within one ID.
type SourceInfo struct {
	ID   uint64
	Kind string // "ring", "fifo"
	Path string
	// UID is the uid the collector verified as the owner of every record
	// of this source (a per-uid ring handed out over the rendezvous
	// socket), valid when UIDKnown; the store records it per process.
	UID      uint32
	UIDKnown bool
}

// Checkpoint travels with a batch into its transaction: where the batch ends
// in its source and what the source lost so far.
type Checkpoint struct {
	SourceInfo
	Position  uint64 // next position to read: every record before it is in this or an earlier commit
	Bytes     uint64 // record bytes in this batch
	Abandoned uint64 // this batch: records skipped because their producer died mid-append
	Corrupted uint64 // this batch: records that failed validation
	// Producer-side drop counters, cumulative since the source was created.
	DroppedFull, DroppedTooBig uint64
}

// writer turns batches into rows: one part per job. procs and files hand
// out ids from memory, aggs counts and folds the aggregates, events appends
// the raw events to the segment log; the writer runs them in one
// transaction with the source's position, which is what makes a restart
// exact.
type writer struct {
	s *Store
	// mu serialises commits: `restrack run --mode ring+ebpf` runs one
	// collector per source on the same store.
	mu sync.Mutex

	procs  procTable
	files  fileTable
	aggs   aggregates
	events *eventLog
	stmts  writerStmts
	loaded bool

	nextSeq  int64 // sequence number of the next raw event
	legacy   int64 // raw events in event_chunks (stores written before schema 5)
	chunkEnc chunkEncoder
}

// writerStmts are prepared once for the writer's life: preparing them in
// every commit (parsing SQL) cost a tenth of the collector's CPU.
type writerStmts struct {
	procInsert, procUpdate, fileLookup, fileInsert, fileDelta, delta, upsert, source *sql.Stmt
}

func (st *writerStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&st.procInsert, procInsertSQL}, {&st.procUpdate, procUpdateSQL},
		{&st.fileLookup, "SELECT id FROM files WHERE path = ?"}, {&st.fileInsert, insertFilesSQL(filesPerInsert)},
		{&st.fileDelta, "INSERT INTO file_deltas (first_id, n, data) VALUES (?, ?, ?)"},
		{&st.delta, "INSERT INTO access_deltas (data) VALUES (?)"}, {&st.upsert, upsertAccessesSQL(aggPerUpsert)},
		{&st.source, sourceUpsertSQL},
	} {
		if *p.dst != nil {
			continue
		}
		s, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			return err
		}
		*p.dst = s
	}
	return nil
}

func (st *writerStmts) close() {
	for _, s := range []*sql.Stmt{st.procInsert, st.procUpdate, st.fileLookup, st.fileInsert, st.fileDelta, st.delta, st.upsert, st.source} {
		if s != nil {
			s.Close()
		}
	}
	*st = writerStmts{}
}

func newWriter(s *Store) *writer {
	return &writer{s: s, procs: procTable{limit: cacheLimit}, files: fileTable{limit: cacheLimit}}
}

// reset forgets every cached id and cuts the event log back to what was
// committed: after a rolled-back transaction they may name rows that do not
// exist.
func (w *writer) reset() {
	_ = w.events.close()
	w.events, w.loaded = nil, false
}

func (w *writer) close() error {
	w.stmts.close()
	err := w.events.close()
	w.events, w.loaded = nil, false
	return err
}

// ensureLoaded fills the caches from the database (when they fit), opens
// the event log and reads the sequence window of the raw events.
func (w *writer) ensureLoaded(ctx context.Context, tx *sql.Tx) error {
	if w.loaded {
		return nil
	}
	var legacyMax, chunkEnd, segEnd, legacy sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT max(seq) FROM events), (SELECT max(first_seq + n) FROM event_chunks),
		(SELECT max(first_seq + n) FROM event_segments), (SELECT sum(n) FROM event_chunks)`).Scan(&legacyMax, &chunkEnd, &segEnd, &legacy); err != nil {
		return err
	}
	w.nextSeq = max(legacyMax.Int64+1, chunkEnd.Int64, segEnd.Int64, 1)
	w.legacy = legacy.Int64
	if err := w.files.load(ctx, tx); err != nil {
		return err
	}
	if err := w.procs.load(ctx, tx); err != nil {
		return err
	}
	if err := w.aggs.load(ctx, tx); err != nil {
		return err
	}
	ev, err := openEventLog(ctx, tx, w.s.dir)
	if err != nil {
		return err
	}
	if keep := w.s.opts.RetainEvents; keep > 0 {
		ev.segmentEvents = max(keep/8, 1)
	}
	w.events, w.loaded = ev, true
	return nil
}

// begin starts the writer's transaction. The statements are prepared
// first: the writer's pool has one connection, which the transaction then
// holds.
func (w *writer) begin(ctx context.Context) (*sql.Tx, error) {
	if err := w.stmts.prepare(ctx, w.s.db); err != nil {
		return nil, err
	}
	return w.s.db.BeginTx(ctx, nil)
}

// Commit stores a batch and its checkpoint in one transaction: either both
// are durable or neither is, which is what makes a restart exact.
func (s *Store) Commit(ctx context.Context, recs []ring.Record, cp Checkpoint) error {
	if s.db == nil {
		return s.errClosed()
	}
	if s.w == nil {
		return fmt.Errorf("commit to store %s: opened read-only", s.dir)
	}
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	if err := s.w.commit(ctx, recs, cp); err != nil {
		s.w.reset()
		return s.dbError("commit to", err)
	}
	return nil
}

func (w *writer) commit(ctx context.Context, recs []ring.Record, cp Checkpoint) error {
	tx, err := w.begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if err := w.ensureLoaded(ctx, tx); err != nil {
		return err
	}
	w.aggs.begin()
	keepRaw := !w.s.opts.DiscardEvents && w.s.opts.RetainEvents != 0
	enc := &w.chunkEnc
	enc.reset(w.events.begin())

	for i := range recs {
		r := &recs[i]
		p, err := w.procs.get(ctx, tx, r)
		if err != nil {
			return err
		}
		if cp.UIDKnown && p.uid != int64(cp.UID) {
			p.uid = int64(cp.UID)
			w.procs.touch(p)
		}
		if r.Type == ring.TypeProc {
			w.procs.apply(p, r)
			continue
		}
		var pathID, path2ID int64
		if len(r.Str1) > 0 {
			if pathID, err = w.files.id(ctx, tx, w.stmts.fileLookup, r.Str1); err != nil {
				return err
			}
		}
		if len(r.Str2) > 0 {
			if path2ID, err = w.files.id(ctx, tx, w.stmts.fileLookup, r.Str2); err != nil {
				return err
			}
		}
		if r.Access != ring.AccessNone {
			write := r.Access == ring.AccessWrite
			if pathID != 0 {
				w.aggs.count(aggKey{p.id, pathID, r.Op, write}, r)
			}
			// The second path of rename/link is touched as much as the
			// first (both change). A relative second path (a symlink's
			// target text) is not a file access.
			if path2ID != 0 && r.Str2[0] == '/' {
				w.aggs.count(aggKey{p.id, path2ID, r.Op, write}, r)
			}
		}
		if keepRaw {
			enc.add(r, p.id, pathID, path2ID)
		}
	}
	if err := w.procs.flush(ctx, tx, w.stmts.procInsert, w.stmts.procUpdate); err != nil {
		return err
	}
	if err := w.files.flush(ctx, tx, w.stmts.fileDelta); err != nil {
		return err
	}
	newDeltas, err := w.aggs.appendDelta(ctx, tx, w.stmts.delta)
	if err != nil {
		return err
	}
	firstSeq := w.nextSeq
	if enc.n > 0 {
		if err := w.events.stage(ctx, tx, enc.bytes(), enc.n, firstSeq, cp.ID); err != nil {
			return err
		}
	}
	if err := w.prune(ctx, tx); err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, w.stmts.source).ExecContext(ctx, sourceArgs(uint64(len(recs)), cp)...); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	w.procs.flushed()
	w.files.flushed()
	w.aggs.rows += newDeltas
	w.events.committed(firstSeq)
	w.nextSeq += enc.n
	if w.files.backlog()+w.aggs.rows > foldBacklog {
		// Never idle long enough to fold: fold a slice now, or the
		// backlog (and the memory pinning its paths) would grow forever.
		// The batch is committed whatever happens here: a failed fold
		// only leaves its deltas for the next one (Close reports it).
		if _, err := w.foldSlice(ctx); err != nil {
			w.reset()
		}
	}
	return nil
}

// prune keeps the newest RetainEvents raw events, give or take a segment:
// the oldest go first, legacy chunks (schema 4) before segments.
func (w *writer) prune(ctx context.Context, tx *sql.Tx) error {
	keep := w.s.opts.RetainEvents
	if keep < 0 {
		return nil
	}
	segs := w.events.retained() + w.events.staged.n
	for w.legacy > 0 && w.legacy+segs > keep {
		var first, n int64
		if err := tx.QueryRowContext(ctx, "SELECT first_seq, n FROM event_chunks ORDER BY first_seq LIMIT 1").Scan(&first, &n); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM event_chunks WHERE first_seq = ?", first); err != nil {
			return err
		}
		w.legacy -= n
	}
	return w.events.prune(ctx, tx, keep)
}

const sourceUpsertSQL = `INSERT INTO sources (id, kind, path, position, records, bytes, dropped_full, dropped_toobig,
		abandoned, corrupted, first_unix_ns, last_unix_ns)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET
		path = excluded.path, position = excluded.position,
		records = records + excluded.records, bytes = bytes + excluded.bytes,
		dropped_full = max(dropped_full, excluded.dropped_full),
		dropped_toobig = max(dropped_toobig, excluded.dropped_toobig),
		abandoned = abandoned + excluded.abandoned, corrupted = corrupted + excluded.corrupted,
		last_unix_ns = excluded.last_unix_ns`

// sourceArgs are the checkpoint's values for sourceUpsertSQL: where the
// batch ends in its source, and what the source lost so far.
func sourceArgs(records uint64, cp Checkpoint) []any {
	now := time.Now().UnixNano()
	return []any{int64(cp.ID), cp.Kind, cp.Path, int64(cp.Position), int64(records), int64(cp.Bytes),
		int64(cp.DroppedFull), int64(cp.DroppedTooBig), int64(cp.Abandoned), int64(cp.Corrupted), now, now}
}

// Resume returns the position after the last committed batch of source id,
// and whether the store has seen that source at all.
func (s *Store) Resume(ctx context.Context, id uint64) (uint64, bool, error) {
	if s.db == nil {
		return 0, false, s.errClosed()
	}
	var pos int64
	err := s.db.QueryRowContext(ctx, "SELECT position FROM sources WHERE id = ?", int64(id)).Scan(&pos)
	if err == sql.ErrNoRows {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, s.dbError("read", err)
	}
	return uint64(pos), true, nil
}
