package store

import (
	"context"
	"database/sql"
	"slices"
	"strings"
)

// fileTable gives each distinct path its id. Ids are handed out here (the
// writer is the only one), so a new path costs a map insert; the commit
// then writes the batch's new paths in bulk statements, sorted, so that
// the path index is walked in order rather than at random.
type fileTable struct {
	limit    int
	m        map[string]int64
	complete bool // every stored path is in m: a miss is new
	nextID   int64
	fresh    []newFile // paths of this batch, not stored yet
	args     []any
}

type newFile struct {
	path string
	id   int64
}

func (t *fileTable) load(ctx context.Context, tx *sql.Tx) error {
	t.m, t.complete, t.fresh = make(map[string]int64), false, t.fresh[:0]
	var n, maxID int64
	if err := tx.QueryRowContext(ctx, "SELECT count(*), coalesce(max(id), 0) FROM files").Scan(&n, &maxID); err != nil {
		return err
	}
	t.nextID = maxID + 1
	if n > int64(t.limit/2) {
		return nil
	}
	rows, err := tx.QueryContext(ctx, "SELECT id, path FROM files")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var p string
		if err := rows.Scan(&id, &p); err != nil {
			return err
		}
		t.m[p] = id
	}
	t.complete = true
	return rows.Err()
}

func (t *fileTable) id(ctx context.Context, tx *sql.Tx, lookup *sql.Stmt, path []byte) (int64, error) {
	if id, ok := t.m[string(path)]; ok { // no allocation: the compiler keys by the bytes
		return id, nil
	}
	p := string(path)
	var id int64
	if !t.complete {
		err := tx.StmtContext(ctx, lookup).QueryRowContext(ctx, p).Scan(&id)
		if err != nil && err != sql.ErrNoRows {
			return 0, err
		}
	}
	if id == 0 {
		id = t.nextID
		t.nextID++
		t.fresh = append(t.fresh, newFile{p, id})
	}
	if len(t.m) >= t.limit {
		// Forget what is stored; this batch's new paths are not stored
		// yet, so they stay (a lookup would miss them and number them twice).
		clear(t.m)
		for _, f := range t.fresh {
			t.m[f.path] = f.id
		}
		t.complete = false
	}
	t.m[p] = id
	return id, nil
}

// filesPerInsert is how many paths one INSERT carries: the per-statement
// overhead then counts once per 64 rows.
const filesPerInsert = 64

func insertFilesSQL(n int) string {
	return "INSERT INTO files (id, path) VALUES " + strings.TrimSuffix(strings.Repeat("(?,?),", n), ",")
}

// flush inserts the batch's new paths.
func (t *fileTable) flush(ctx context.Context, tx *sql.Tx, bulk *sql.Stmt) error {
	if len(t.fresh) == 0 {
		return nil
	}
	slices.SortFunc(t.fresh, func(a, b newFile) int { return strings.Compare(a.path, b.path) })
	st := tx.StmtContext(ctx, bulk)
	for rest := t.fresh; len(rest) > 0; {
		n := min(len(rest), filesPerInsert)
		t.args = t.args[:0]
		for _, f := range rest[:n] {
			t.args = append(t.args, f.id, f.path)
		}
		var err error
		if n == filesPerInsert {
			_, err = st.ExecContext(ctx, t.args...)
		} else {
			_, err = tx.ExecContext(ctx, insertFilesSQL(n), t.args...)
		}
		if err != nil {
			return err
		}
		rest = rest[n:]
	}
	return nil
}

func (t *fileTable) flushed() { t.fresh = t.fresh[:0] }
