package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// writer turns batches into rows and log chunks: one part per job. procs
// hands out process ids and keeps their rows, paths hands out path ids,
// aggs counts the batch's aggregates, the logs append paths, aggregates and
// raw events; the writer runs them in one transaction with the source's
// position, which is what makes a restart exact.
type writer struct {
	s *Store
	// mu serialises commits: `restrack run --mode ring+ebpf` runs one
	// collector per source on the same store.
	mu sync.Mutex

	procs   procTable
	paths   *pathIndex
	pathLog *appendLog
	aggs    aggregates
	accs    *appendLog
	events  *eventLog
	stmts   writerStmts
	loaded  bool

	// src is the source of the last commit and its counters as
	// commit_state holds them (valid: loaded from the database).
	src sourceState

	tags     []uint64 // path hashes of a block of records
	nextSeq  int64    // sequence number of the next raw event
	legacy   int64    // raw events in event_chunks (stores written before schema 5)
	chunkEnc chunkEncoder
}

// writerStmts are prepared once for the writer's life: preparing them in
// every commit (parsing SQL) cost a tenth of the collector's CPU.
// Every statement a commit runs is here (tx.StmtContext binds them to the
// transaction without parsing again).
type writerStmts struct {
	procInsert, procInsertMany, procUpdate, procTimes, state *sql.Stmt
}

func (st *writerStmts) all() []**sql.Stmt {
	return []**sql.Stmt{&st.procInsert, &st.procInsertMany, &st.procUpdate, &st.procTimes, &st.state}
}

func (st *writerStmts) prepare(ctx context.Context, db *sql.DB) error {
	texts := []string{procInsertSQL, procInsertManySQL, procUpdateSQL, procTimesSQL, commitStateSQL}
	for i, dst := range st.all() {
		if *dst != nil {
			continue
		}
		s, err := db.PrepareContext(ctx, texts[i])
		if err != nil {
			return err
		}
		*dst = s
	}
	return nil
}

func (st *writerStmts) close() {
	for _, s := range st.all() {
		if *s != nil {
			(*s).Close()
		}
	}
	*st = writerStmts{}
}

func newWriter(s *Store) *writer {
	return &writer{s: s, procs: procTable{limit: cacheLimit}}
}

// reset forgets every cached id and cuts the event log back to what was
// committed: after a rolled-back transaction they may name rows that do not
// exist.
func (w *writer) reset() {
	_ = w.closeFiles()
}

func (w *writer) closeFiles() error {
	err := errors.Join(w.events.close(), w.pathLog.close(), w.accs.close())
	w.paths.free()
	w.events, w.pathLog, w.accs, w.paths, w.loaded = nil, nil, nil, nil, false
	w.src = sourceState{}
	return err
}

func (w *writer) close() error {
	w.stmts.close()
	return w.closeFiles()
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
	if err := w.procs.load(ctx, tx); err != nil {
		return err
	}
	var err error
	if w.pathLog, err = openAppendLog(ctx, tx, w.s.dir, pathsLog, pathsMagic); err != nil {
		return err
	}
	w.paths.free()
	w.paths = newPathIndex()
	f, err := os.Open(filepath.Join(w.s.dir, logName(pathsLog, w.pathLog.state.gen)))
	if err != nil {
		return fmt.Errorf("open the path log: %w", err)
	}
	if err := w.paths.load(f, w.pathLog.state.bytes); err != nil {
		return err
	}
	if w.accs, err = openAppendLog(ctx, tx, w.s.dir, accessesLog, accessMagic); err != nil {
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

// load loads the writer outside a commit (upkeep, materializing).
func (w *writer) load(ctx context.Context) error {
	if w.loaded {
		return nil
	}
	tx, err := w.begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if err := w.ensureLoaded(ctx, tx); err != nil {
		return err
	}
	return tx.Commit()
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
	firstNew := w.paths.nextID()
	w.aggs.begin(firstNew, w.procs.nextID)
	w.paths.beginBatch(w.pathLog.begin(), w.pathLog.state.bytes)
	keepRaw := !w.s.opts.DiscardEvents && w.s.opts.RetainEvents != 0
	enc := &w.chunkEnc
	enc.reset(w.events.begin())

	tags := w.tags[:0]
	var prevID int64 // path id of the previous record's Str1
	for i := range recs {
		r := &recs[i]
		if i%tagBlock == 0 {
			// The path table's slots for the next block, loaded in
			// parallel (pathIndex.touch).
			// A record with the previous record's path (a file read in
			// a loop) reuses its id: tag 0.
			tags = tags[:0]
			for j := i; j < min(i+tagBlock, len(recs)); j++ {
				t := uint64(0)
				if !samePath(recs, j) {
					t = w.paths.hash(recs[j].Str1)
				}
				tags = append(tags, t)
			}
			w.paths.touch(tags)
		}
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
			if t := tags[i%tagBlock]; t == 0 {
				pathID = prevID
			} else {
				pathID, _ = w.paths.idOf(r.Str1, t)
			}
			prevID = pathID
		}
		if len(r.Str2) > 0 {
			path2ID, _ = w.paths.id(r.Str2)
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
	w.tags = tags
	if w.paths.nextID() > 1<<32-1 {
		return fmt.Errorf("more than 2^32 distinct paths: the store's path ids are 32-bit")
	}
	if err := w.procs.flush(ctx, tx, &w.stmts); err != nil {
		return err
	}
	if err := w.pathLog.stage(w.paths.pending, w.paths.nextID()-firstNew, firstNew, 0); err != nil {
		return err
	}
	if err := w.accs.stage(w.aggs.encode(w.accs.begin()), int64(len(w.aggs.entries)), 0, w.aggs.fresh); err != nil {
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
	if err := w.enterSource(ctx, tx, cp); err != nil {
		return err
	}
	src := w.src.next(uint64(len(recs)), cp)
	if _, err := tx.StmtContext(ctx, w.stmts.state).ExecContext(ctx, w.stateArgs(&src)...); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	w.src = src
	w.procs.flushed()
	w.pathLog.committed()
	if err := w.paths.committed(w.pathLog.state.bytes); err != nil {
		// The batch is committed; the index must be rebuilt from the log.
		w.reset()
	}
	w.accs.committed()
	w.events.committed(firstSeq)
	w.nextSeq += enc.n
	if w.accs.compactDue(4) {
		// Never idle long enough to compact (FoldSome): do it now, or the
		// log would grow with the commits. The batch is committed
		// whatever happens here: a failed compaction leaves the log as it
		// was for the next try.
		if err := w.compact(ctx); err != nil {
			w.reset()
		}
	}
	return nil
}

// samePath: recs[j] is an event with the path of recs[j-1], an event too.
func samePath(recs []ring.Record, j int) bool {
	return j > 0 && recs[j].Type != ring.TypeProc && recs[j-1].Type != ring.TypeProc && len(recs[j].Str1) > 0 &&
		bytes.Equal(recs[j].Str1, recs[j-1].Str1)
}

// tagBlock is how many records' path slots are loaded ahead at once.
const tagBlock = 32

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

// sourceState is a source's row as commit_state holds it: absolute values,
// so a commit writes them without reading anything.
type sourceState struct {
	valid                                                         bool
	id                                                            uint64
	path                                                          string
	position, records, bytes, droppedFull, droppedTooBig, abandon int64
	corrupted                                                     int64
}

// next is s after a batch of records ending at cp: where the batch ends
// in its source, and what the source lost so far.
func (s sourceState) next(records uint64, cp Checkpoint) sourceState {
	s.path, s.position = cp.Path, int64(cp.Position)
	s.records += int64(records)
	s.bytes += int64(cp.Bytes)
	s.droppedFull = max(s.droppedFull, int64(cp.DroppedFull))
	s.droppedTooBig = max(s.droppedTooBig, int64(cp.DroppedTooBig))
	s.abandon += int64(cp.Abandoned)
	s.corrupted += int64(cp.Corrupted)
	return s
}

// enterSource makes cp's source the one commit_state describes: the
// previous one's values go to its row in source_rows, a new source gets a
// row, and its values are read. Only the first commit of a writer, or of
// another source (`--mode ring+ebpf`), does this.
func (w *writer) enterSource(ctx context.Context, tx *sql.Tx, cp Checkpoint) error {
	if w.src.valid && w.src.id == cp.ID {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE source_rows SET path = c.path, position = c.position, records = c.records,
		bytes = c.bytes, dropped_full = c.dropped_full, dropped_toobig = c.dropped_toobig, abandoned = c.abandoned,
		corrupted = c.corrupted, last_unix_ns = c.last_unix_ns
		FROM commit_state c WHERE c.id = 1 AND source_rows.id = c.source_id AND c.source_id != ?`, int64(cp.ID)); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	if _, err := tx.ExecContext(ctx, `INSERT INTO source_rows (id, kind, path, position, first_unix_ns, last_unix_ns)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`, int64(cp.ID), cp.Kind, cp.Path, int64(cp.Position), now, now); err != nil {
		return err
	}
	// The view: commit_state's values if it already names this source.
	s := sourceState{valid: true, id: cp.ID}
	if err := tx.QueryRowContext(ctx, `SELECT path, position, records, bytes, dropped_full, dropped_toobig, abandoned, corrupted
		FROM sources WHERE id = ?`, int64(cp.ID)).Scan(&s.path, &s.position, &s.records, &s.bytes, &s.droppedFull,
		&s.droppedTooBig, &s.abandon, &s.corrupted); err != nil {
		return err
	}
	w.src = s
	return nil
}

// commitStateSQL is the one row a commit writes besides its processes:
// the source position and counters, the logs' and the current segment's
// committed lengths.
const commitStateSQL = `UPDATE commit_state SET source_id = ?, path = ?, position = ?, records = ?, bytes = ?,
	dropped_full = ?, dropped_toobig = ?, abandoned = ?, corrupted = ?, last_unix_ns = ?,
	paths_bytes = ?, paths_n = ?, acc_bytes = ?, acc_n = ?, acc_fresh = ?, seg = ?, seg_n = ?, seg_bytes = ? WHERE id = 1`

func (w *writer) stateArgs(s *sourceState) []any {
	pb, pn, _ := w.pathLog.pending()
	ab, an, af := w.accs.pending()
	seg, segN, segBytes := w.events.pending()
	return []any{int64(s.id), s.path, s.position, s.records, s.bytes, s.droppedFull, s.droppedTooBig, s.abandon, s.corrupted,
		time.Now().UnixNano(), pb, pn, ab, an, af, seg, segN, segBytes}
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
