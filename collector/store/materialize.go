package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// Materializing: the SQL tables files and accesses (and so the view
// v_accesses) for people who query the store with sqlite3. The collector
// never writes them: a row in a B-tree and its index costs SQLite compiled
// to Go one to three microseconds, ten times the collector's whole budget
// per event. Materialize copies what the logs hold beyond what the tables
// already show — new paths by id, the aggregates appended since the last
// run — so its cost is paid once per new row, by whoever asks
// (`restrack sql`), when they ask.

// MaterializeStats says what Materialize did.
type MaterializeStats struct {
	Files    int64 // paths added to files
	Accesses int64 // aggregates written to accesses (inserted or updated)
	// Rebuilt: accesses was emptied and written again, because the log was
	// compacted since the last run.
	Rebuilt bool
}

// Materialize brings files and accesses up to date with the logs, in one
// transaction. It needs the writer (the store's lock): a collector writing
// the store must stop first.
func (s *Store) Materialize(ctx context.Context) (MaterializeStats, error) {
	var ms MaterializeStats
	if s.db == nil {
		return ms, s.errClosed()
	}
	if s.w == nil {
		return ms, fmt.Errorf("materialize store %s: opened read-only", s.dir)
	}
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	ms, err := w.materialize(ctx)
	if err != nil {
		w.reset()
		return ms, s.dbError("materialize", err)
	}
	return ms, nil
}

func (w *writer) materialize(ctx context.Context) (MaterializeStats, error) {
	var ms MaterializeStats
	if err := w.load(ctx); err != nil {
		return ms, err
	}
	tx, err := w.begin(ctx)
	if err != nil {
		return ms, err
	}
	defer func() { _ = tx.Rollback() }()

	var maxID int64
	if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(id), 0) FROM files").Scan(&maxID); err != nil {
		return ms, err
	}
	ins := bulkInserter{tx: tx, ctx: ctx, sql: insertFilesSQL, per: filesPerInsert, width: 2}
	if err := readPaths(w.s.dir, w.pathLog.state, func(id int64, p []byte) error {
		if id <= maxID || len(p) == 0 {
			return nil
		}
		ms.Files++
		return ins.add(id, string(p))
	}); err != nil {
		return ms, err
	}
	if err := ins.flush(); err != nil {
		return ms, err
	}

	var sqlGen, sqlBytes int64
	if err := tx.QueryRowContext(ctx, "SELECT sql_gen, sql_bytes FROM trace_logs WHERE name = ?", accessesLog).Scan(&sqlGen, &sqlBytes); err != nil {
		return ms, err
	}
	st := w.accs.state
	from := sqlBytes
	if sqlGen != st.gen {
		if _, err := tx.ExecContext(ctx, "DELETE FROM accesses"); err != nil {
			return ms, err
		}
		from, ms.Rebuilt = 0, true
	}
	all, err := sumAggregates(w.s.dir, st, from)
	if err != nil {
		return ms, err
	}
	keys := make([]aggKey, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	// In key order the B-tree is walked once, not at random.
	slices.SortFunc(keys, compareAggKeys)
	up := bulkInserter{tx: tx, ctx: ctx, sql: upsertAccessesSQL, per: aggPerUpsert, width: 8}
	for _, k := range keys {
		v := all[k]
		if err := up.add(k.proc, k.file, int64(k.op), k.write, int64(v.count), int64(v.failures), int64(v.first), int64(v.last)); err != nil {
			return ms, err
		}
	}
	if err := up.flush(); err != nil {
		return ms, err
	}
	ms.Accesses = int64(len(keys))
	if _, err := tx.ExecContext(ctx, "UPDATE trace_log_rows SET sql_gen = ?, sql_bytes = ?, sql_n = ? WHERE name = ?", st.gen, st.bytes, st.n, accessesLog); err != nil {
		return ms, err
	}
	return ms, tx.Commit()
}

// bulkInserter runs a statement of per rows (sql(per)) with width values
// each: the per-statement overhead then counts once per per rows.
type bulkInserter struct {
	tx         *sql.Tx
	ctx        context.Context
	sql        func(n int) string
	per, width int
	full       *sql.Stmt
	args       []any
}

func (b *bulkInserter) add(vals ...any) error {
	b.args = append(b.args, vals...)
	if len(b.args) < b.per*b.width {
		return nil
	}
	if b.full == nil {
		st, err := b.tx.PrepareContext(b.ctx, b.sql(b.per))
		if err != nil {
			return err
		}
		b.full = st
	}
	_, err := b.full.ExecContext(b.ctx, b.args...)
	b.args = b.args[:0]
	return err
}

func (b *bulkInserter) flush() error {
	defer func() {
		if b.full != nil {
			b.full.Close()
			b.full = nil
		}
	}()
	if len(b.args) == 0 {
		return nil
	}
	_, err := b.tx.ExecContext(b.ctx, b.sql(len(b.args)/b.width), b.args...)
	b.args = b.args[:0]
	return err
}

const (
	filesPerInsert = 64
	aggPerUpsert   = 64
)

func insertFilesSQL(n int) string {
	return "INSERT INTO files (id, path) VALUES " + strings.TrimSuffix(strings.Repeat("(?,?),", n), ",")
}

func upsertAccessesSQL(n int) string {
	return "INSERT INTO accesses (proc_id, file_id, op, write, count, failures, first_ns, last_ns) VALUES " +
		strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?),", n), ",") +
		` ON CONFLICT (proc_id, file_id, op, write) DO UPDATE SET
		count = count + excluded.count, failures = failures + excluded.failures,
		first_ns = min(first_ns, excluded.first_ns), last_ns = max(last_ns, excluded.last_ns)`
}
