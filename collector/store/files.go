package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// fileTable gives each distinct path its id. Ids are handed out here (the
// writer is the only one), so a new path costs a map insert. A commit
// stores its batch's new paths as one file_deltas row (first_id, n, the
// paths as uvarint length + bytes; ids first_id … first_id+n-1 in order):
// inserting each into the files table and its path index cost over a
// microsecond, more than a traced program takes to open the next new file.
// The fold (FoldSome) moves the oldest rows into files in id order (the
// table's B-tree then only grows at its right edge); readers look paths up
// in both.
type fileTable struct {
	limit    int
	m        map[string]int64
	complete bool // every stored path is in m: a miss is new
	evictAt  int  // map size that triggers the next eviction pass
	// hashes holds every path in m or stored, once m is not complete:
	// a miss there needs no lookup in the files table.
	hashes  *pathHashes
	nextID  int64 // the id the next new path gets
	stored  int64 // ids below it are in the files table; the others in file_deltas
	rows    int   // file_deltas rows
	fresh   []string
	pending int // file_deltas rows of this batch awaiting their commit
	blob    []byte
	args    []any
	sorted  []newFile
	// folded is where stored moves once the materializing transaction
	// commits.
	folded int64
}

type newFile struct {
	path string
	id   int64
}

func (t *fileTable) load(ctx context.Context, tx *sql.Tx) error {
	t.m, t.complete, t.fresh, t.pending, t.evictAt, t.hashes = make(map[string]int64), false, t.fresh[:0], 0, 0, newPathHashes()
	var n, maxID, deltas, deltaEnd int64
	var firstDelta sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM files), (SELECT coalesce(max(id), 0) FROM files),
		(SELECT coalesce(sum(n), 0) FROM file_deltas), (SELECT coalesce(max(first_id + n), 0) FROM file_deltas),
		(SELECT min(first_id) FROM file_deltas), (SELECT count(*) FROM file_deltas)`).
		Scan(&n, &maxID, &deltas, &deltaEnd, &firstDelta, &t.rows); err != nil {
		return err
	}
	t.nextID = max(maxID+1, deltaEnd)
	t.stored = t.nextID
	if firstDelta.Valid {
		t.stored = firstDelta.Int64
	}
	// Paths not in the files table yet are always cached: a lookup in
	// files would miss them and number them twice.
	if err := readFileDeltas(ctx, tx, func(id int64, p string) { t.m[p] = id }); err != nil {
		return err
	}
	for p := range t.m {
		t.hashes.add([]byte(p))
	}
	fits := n+deltas <= int64(t.limit/2)
	rows, err := tx.QueryContext(ctx, "SELECT id, path FROM files")
	if err != nil {
		return err
	}
	defer rows.Close()
	var p []byte
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id, &p); err != nil {
			return err
		}
		t.hashes.add(p)
		if fits {
			t.m[string(p)] = id
		}
	}
	t.complete = fits
	return rows.Err()
}

func (t *fileTable) id(ctx context.Context, tx *sql.Tx, lookup *sql.Stmt, path []byte) (int64, error) {
	if id, ok := t.m[string(path)]; ok { // no allocation: the compiler keys by the bytes
		return id, nil
	}
	p := string(path)
	var id int64
	if !t.complete && t.hashes.mayHold(path) {
		err := tx.StmtContext(ctx, lookup).QueryRowContext(ctx, p).Scan(&id)
		if err != nil && err != sql.ErrNoRows {
			return 0, err
		}
	}
	if id == 0 {
		id = t.nextID
		t.nextID++
		t.fresh = append(t.fresh, p)
		t.hashes.add(path)
	}
	if len(t.m) >= max(t.limit, t.evictAt) {
		// Forget the paths the files table holds; the others stay. When
		// most are unfolded the pass frees little: the next waits until
		// the map has grown by half a limit, so the passes cost O(1) per
		// path however large the backlog.
		for k, v := range t.m {
			if v < t.stored {
				delete(t.m, k)
			}
		}
		t.complete = false
		t.evictAt = len(t.m) + t.limit/2
	}
	t.m[p] = id
	return id, nil
}

// flush stores the batch's new paths as file_deltas rows of at most
// foldChunk paths: a row is what one fold slice takes.
func (t *fileTable) flush(ctx context.Context, tx *sql.Tx, insert *sql.Stmt) error {
	st := tx.StmtContext(ctx, insert)
	first := t.nextID - int64(len(t.fresh))
	for rest := t.fresh; len(rest) > 0; {
		n := min(len(rest), foldChunk)
		b := t.blob[:0]
		for _, p := range rest[:n] {
			b = binary.AppendUvarint(b, uint64(len(p)))
			b = append(b, p...)
		}
		t.blob = b
		if _, err := st.ExecContext(ctx, first, n, b); err != nil {
			return err
		}
		t.pending++
		first += int64(n)
		rest = rest[n:]
	}
	return nil
}

// flushed notes the batch's commit.
func (t *fileTable) flushed() {
	t.fresh = t.fresh[:0]
	t.rows += t.pending
	t.pending = 0
}

// backlog is how many file_deltas rows wait for the fold.
func (t *fileTable) backlog() int { return t.rows }

// filesPerInsert is how many paths one INSERT carries: the per-statement
// overhead then counts once per 64 rows.
const filesPerInsert = 64

func insertFilesSQL(n int) string {
	return "INSERT INTO files (id, path) VALUES " + strings.TrimSuffix(strings.Repeat("(?,?),", n), ",")
}

// materializeSome moves the oldest maxRows file_deltas rows into the files
// table, inside the caller's transaction, and returns how many it moved.
func (t *fileTable) materializeSome(ctx context.Context, tx *sql.Tx, bulk *sql.Stmt, maxRows int) (int, error) {
	rows, err := tx.QueryContext(ctx, "SELECT first_id, n, data FROM file_deltas ORDER BY first_id LIMIT ?", maxRows)
	if err != nil {
		return 0, err
	}
	t.sorted = t.sorted[:0]
	var last, end int64
	done := 0
	for rows.Next() {
		var n int64
		var b []byte
		if err := rows.Scan(&last, &n, &b); err != nil {
			rows.Close()
			return 0, err
		}
		if err := decodeFileDelta(last, n, b, func(id int64, p string) { t.sorted = append(t.sorted, newFile{p, id}) }); err != nil {
			rows.Close()
			return 0, err
		}
		end = last + n
		done++
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	if done == 0 {
		return 0, nil
	}
	st := tx.StmtContext(ctx, bulk)
	for rest := t.sorted; len(rest) > 0; {
		n := min(len(rest), filesPerInsert)
		t.args = t.args[:0]
		for _, f := range rest[:n] {
			t.args = append(t.args, f.id, f.path)
		}
		if n == filesPerInsert {
			_, err = st.ExecContext(ctx, t.args...)
		} else {
			_, err = tx.ExecContext(ctx, insertFilesSQL(n), t.args...)
		}
		if err != nil {
			return 0, err
		}
		rest = rest[n:]
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM file_deltas WHERE first_id <= ?", last); err != nil {
		return 0, err
	}
	t.folded = end
	return done, nil
}

// materialized notes the commit of materializeSome's transaction.
func (t *fileTable) materialized(rows int) {
	if rows > 0 {
		t.rows -= rows
		t.stored = t.folded
	}
}

var errBadFileDelta = errors.New("malformed file delta")

func decodeFileDelta(first, n int64, b []byte, fn func(id int64, path string)) error {
	for i := range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return fmt.Errorf("file_deltas row %d: %w", first, errBadFileDelta)
		}
		fn(first+i, string(b[k:k+int(l)]))
		b = b[k+int(l):]
	}
	if len(b) != 0 {
		return fmt.Errorf("file_deltas row %d: %w", first, errBadFileDelta)
	}
	return nil
}

// readFileDeltas decodes every path not yet in the files table.
func readFileDeltas(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, fn func(id int64, path string)) error {
	rows, err := q.QueryContext(ctx, "SELECT first_id, n, data FROM file_deltas ORDER BY first_id")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var first, n int64
		var b []byte
		if err := rows.Scan(&first, &n, &b); err != nil {
			return err
		}
		if err := decodeFileDelta(first, n, b, fn); err != nil {
			return err
		}
	}
	return rows.Err()
}
