package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/restrack/restrack/ring"
)

// Aggregate deltas. Each commit stores its batch's aggregates as one row of
// access_deltas: per aggregate, uvarints proc_id, file_id, op, write (0/1),
// count, failures, first_ns, last_ns. Appending one blob costs little per
// aggregate; upserting into the accesses B-tree costs microseconds, so the
// writer does that only when folding (every FoldInterval, when pending
// grows past foldLimit, and on Close), merging a hot aggregate's many
// deltas into one upsert. Readers (Trace) add the unfolded deltas.

// FoldInterval is how long aggregates may stay as deltas: the lag with
// which the accesses table (and v_accesses) trails the collector.
const FoldInterval = 2 * time.Second

// foldLimit bounds the writer's pending map (memory) between folds.
const foldLimit = 100_000

func (w *writer) foldDue() bool {
	return len(w.pending) >= foldLimit || time.Since(w.lastFold) >= FoldInterval
}

func (w *writer) appendDelta(ctx context.Context, tx *sql.Tx) error {
	if len(w.agg) == 0 {
		return nil
	}
	b := w.blob[:0]
	for k, v := range w.agg {
		b = appendDeltaBytes(b, k, *v)
		mergeAgg(w.pending, k, *v)
	}
	w.blob = b
	_, err := tx.ExecContext(ctx, "INSERT INTO access_deltas (data) VALUES (?)", b)
	return err
}

func appendDeltaBytes(b []byte, k aggKey, v aggVal) []byte {
	wr := uint64(0)
	if k.write {
		wr = 1
	}
	for _, x := range [...]uint64{uint64(k.proc), uint64(k.file), uint64(k.op), wr, v.count, v.failures, v.first, v.last} {
		b = binary.AppendUvarint(b, x)
	}
	return b
}

func mergeAgg(m map[aggKey]aggVal, k aggKey, v aggVal) {
	if old, ok := m[k]; ok {
		v.count += old.count
		v.failures += old.failures
		v.first = min(v.first, old.first)
		v.last = max(v.last, old.last)
	}
	m[k] = v
}

var errBadDelta = errors.New("malformed aggregate delta")

// readDeltas decodes every unfolded delta.
func readDeltas(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, fn func(aggKey, aggVal)) error {
	rows, err := q.QueryContext(ctx, "SELECT seq, data FROM access_deltas ORDER BY seq")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var b []byte
		if err := rows.Scan(&seq, &b); err != nil {
			return err
		}
		if err := decodeDelta(b, fn); err != nil {
			return fmt.Errorf("access_deltas row %d: %w", seq, err)
		}
	}
	return rows.Err()
}

func decodeDelta(b []byte, fn func(aggKey, aggVal)) error {
	var f [8]uint64
	for len(b) > 0 {
		for i := range f {
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return errBadDelta
			}
			f[i], b = v, b[n:]
		}
		if f[3] > 1 || f[2] > 0xffff {
			return errBadDelta
		}
		fn(aggKey{proc: int64(f[0]), file: int64(f[1]), op: opOf(f[2]), write: f[3] == 1},
			aggVal{count: f[4], failures: f[5], first: f[6], last: f[7]})
	}
	return nil
}

// Fold moves every pending aggregate delta into the accesses table now.
// The writer does it on its own every FoldInterval and on Close; call it
// before handing the database to tools that read accesses directly.
func (s *Store) Fold(ctx context.Context) error {
	if s.w == nil {
		return fmt.Errorf("fold store %s: opened read-only", s.dir)
	}
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	err := func() error {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		if !w.loaded {
			if err := w.load(ctx, tx); err != nil {
				return err
			}
		}
		if err := w.fold(ctx, tx); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		clear(w.pending)
		w.lastFold = time.Now()
		return nil
	}()
	if err != nil {
		w.reset()
		return s.dbError("fold", err)
	}
	return nil
}

func opOf(v uint64) ring.Op { return ring.Op(v) }
