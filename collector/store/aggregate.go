package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
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

type aggKey struct {
	proc, file int64
	op         ring.Op
	write      bool
}

type aggVal struct {
	count, failures, first, last uint64
}

// aggregates counts a batch's accesses, appends them as a delta, and folds
// the deltas into the accesses table.
type aggregates struct {
	batch map[aggKey]*aggVal // this batch's aggregates
	slab  []aggVal           // backing store of batch's values: one allocation per 1 Ki new aggregates
	// pending holds the aggregates committed as deltas but not yet folded
	// into the accesses table.
	pending  map[aggKey]aggVal
	lastFold time.Time
	blob     []byte
	keys     []aggKey
	args     []any
	// lastKey and lastVal memoise the previous record's aggregate: a
	// program that reads a file in a loop hits the same one in a row.
	lastKey aggKey
	lastVal *aggVal
}

func (a *aggregates) load(ctx context.Context, tx *sql.Tx) error {
	a.batch, a.pending = make(map[aggKey]*aggVal), map[aggKey]aggVal{}
	a.lastFold = time.Now()
	return readDeltas(ctx, tx, func(k aggKey, v aggVal) { mergeAgg(a.pending, k, v) })
}

// begin empties the batch.
func (a *aggregates) begin() {
	clear(a.batch)
	a.slab, a.lastVal = a.slab[:0], nil
}

func (a *aggregates) count(k aggKey, r *ring.Record) {
	v, ok := a.lastVal, a.lastVal != nil && a.lastKey == k
	if !ok {
		v, ok = a.batch[k]
	}
	if !ok {
		if len(a.slab) == cap(a.slab) {
			// A new slab: earlier pointers into the old one stay valid.
			a.slab = make([]aggVal, 0, max(1024, 2*cap(a.slab)))
		}
		a.slab = append(a.slab, aggVal{first: r.TimeNs, last: r.TimeNs})
		v = &a.slab[len(a.slab)-1]
		a.batch[k] = v
	}
	a.lastKey, a.lastVal = k, v
	// A connect in progress (non-blocking, EINPROGRESS) is a connection
	// made as far as the plan is concerned: its outcome comes later.
	if r.Result < 0 && r.RFlags&ring.RFInProgress == 0 {
		v.failures++
	} else {
		v.count++
	}
	v.first = min(v.first, r.TimeNs)
	v.last = max(v.last, r.TimeNs)
}

func (a *aggregates) foldDue() bool {
	return len(a.pending) >= foldLimit || time.Since(a.lastFold) >= FoldInterval
}

// appendDelta stores the batch's aggregates as one access_deltas row. The
// batch is merged into pending only once the transaction commits
// (committed): a failed commit must not count it.
func (a *aggregates) appendDelta(ctx context.Context, tx *sql.Tx, insert *sql.Stmt) error {
	if len(a.batch) == 0 {
		return nil
	}
	b := a.blob[:0]
	for k, v := range a.batch {
		b = appendDeltaBytes(b, k, *v)
	}
	a.blob = b
	_, err := tx.StmtContext(ctx, insert).ExecContext(ctx, b)
	return err
}

// committed merges the committed batch into pending; folded says whether
// that transaction also folded everything pending before it.
func (a *aggregates) committed(folded bool) {
	if folded {
		clear(a.pending)
		a.lastFold = time.Now()
		return
	}
	for k, v := range a.batch {
		mergeAgg(a.pending, k, *v)
	}
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

// aggPerUpsert is how many aggregates one upsert statement carries: the
// per-statement overhead (binding, VDBE setup, database/sql) then counts
// once per 64 rows; the B-tree work per row remains.
const aggPerUpsert = 64

func upsertAccessesSQL(n int) string {
	return "INSERT INTO accesses (proc_id, file_id, op, write, count, failures, first_ns, last_ns) VALUES " +
		strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?),", n), ",") +
		` ON CONFLICT (proc_id, file_id, op, write) DO UPDATE SET
		count = count + excluded.count, failures = failures + excluded.failures,
		first_ns = min(first_ns, excluded.first_ns), last_ns = max(last_ns, excluded.last_ns)`
}

// fold upserts every pending aggregate and this batch's into accesses and
// empties the delta table, inside the caller's transaction. Keys go in
// order, so the B-tree is walked once rather than at random.
func (a *aggregates) fold(ctx context.Context, tx *sql.Tx, bulk *sql.Stmt) error {
	all := a.pending
	if len(a.batch) > 0 {
		all = make(map[aggKey]aggVal, len(a.pending)+len(a.batch))
		for k, v := range a.pending {
			all[k] = v
		}
		for k, v := range a.batch {
			mergeAgg(all, k, *v)
		}
	}
	if len(all) > 0 {
		a.keys = a.keys[:0]
		for k := range all {
			a.keys = append(a.keys, k)
		}
		slices.SortFunc(a.keys, compareAggKeys)
		st := tx.StmtContext(ctx, bulk)
		for rest := a.keys; len(rest) > 0; {
			n := min(len(rest), aggPerUpsert)
			a.args = a.args[:0]
			for _, k := range rest[:n] {
				v := all[k]
				a.args = append(a.args, k.proc, k.file, int64(k.op), k.write,
					int64(v.count), int64(v.failures), int64(v.first), int64(v.last))
			}
			var err error
			if n == aggPerUpsert {
				_, err = st.ExecContext(ctx, a.args...)
			} else {
				_, err = tx.ExecContext(ctx, upsertAccessesSQL(n), a.args...)
			}
			if err != nil {
				return err
			}
			rest = rest[n:]
		}
	}
	_, err := tx.ExecContext(ctx, "DELETE FROM access_deltas")
	return err
}

func compareAggKeys(x, y aggKey) int {
	switch {
	case x.proc != y.proc:
		return cmp.Compare(x.proc, y.proc)
	case x.file != y.file:
		return cmp.Compare(x.file, y.file)
	case x.op != y.op:
		return cmp.Compare(x.op, y.op)
	case x.write != y.write:
		if x.write {
			return 1
		}
		return -1
	}
	return 0
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
		tx, err := w.begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		if err := w.ensureLoaded(ctx, tx); err != nil {
			return err
		}
		w.aggs.begin()
		if err := w.aggs.fold(ctx, tx, w.stmts.upsert); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		w.aggs.committed(true)
		return nil
	}()
	if err != nil {
		w.reset()
		return s.dbError("fold", err)
	}
	return nil
}

func opOf(v uint64) ring.Op { return ring.Op(v) }
