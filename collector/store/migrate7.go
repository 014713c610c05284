package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// migrate7 moves a schema-6 store's paths (files and file_deltas) and
// aggregates (accesses and access_deltas) into the logs of schema 7, in
// the migration's transaction: the log files are written and synced
// first, then trace_logs names them. If the transaction fails, the store
// stays at schema 6 and the next writer removes the files (their
// generation is not committed). files and accesses keep their rows: they
// are the materialized state, up to where the deltas begin.
func migrate7(ctx context.Context, tx *sql.Tx, dir string) error {
	type pathRow struct {
		id   int64
		path []byte
	}
	var paths []pathRow
	rows, err := tx.QueryContext(ctx, "SELECT id, path FROM files")
	if err != nil {
		return err
	}
	for rows.Next() {
		var r pathRow
		if err := rows.Scan(&r.id, &r.path); err != nil {
			rows.Close()
			return err
		}
		paths = append(paths, r)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	rows, err = tx.QueryContext(ctx, "SELECT first_id, n, data FROM file_deltas ORDER BY first_id")
	if err != nil {
		return err
	}
	for rows.Next() {
		var first, n int64
		var b []byte
		if err := rows.Scan(&first, &n, &b); err != nil {
			rows.Close()
			return err
		}
		if err := decodeFileDelta(first, n, b, func(id int64, p []byte) error {
			paths = append(paths, pathRow{id, append([]byte(nil), p...)})
			return nil
		}); err != nil {
			rows.Close()
			return err
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	slices.SortFunc(paths, func(a, b pathRow) int { return cmp.Compare(a.id, b.id) })

	pw, err := newLogWriter(dir, pathsLog, 1, pathsMagic)
	if err != nil {
		return err
	}
	defer pw.abort()
	for i := 0; i < len(paths); {
		// A chunk holds consecutive ids.
		j := i + 1
		for j < len(paths) && j-i < compactChunk && paths[j].id == paths[j-1].id+1 {
			j++
		}
		b := pw.buf[:chunkHeaderLen]
		for _, p := range paths[i:j] {
			b = appendPath(b, p.path)
		}
		if err := pw.write(b, int64(j-i), paths[i].id); err != nil {
			return err
		}
		i = j
	}
	if err := pw.finish(); err != nil {
		return err
	}

	aw, err := newLogWriter(dir, accessesLog, 1, accessMagic)
	if err != nil {
		return err
	}
	defer aw.abort()
	rows, err = tx.QueryContext(ctx, "SELECT proc_id, file_id, op, write, count, failures, first_ns, last_ns FROM accesses")
	if err != nil {
		return err
	}
	b, n := aw.buf[:chunkHeaderLen], int64(0)
	for rows.Next() {
		var procID, fileID, op, count, failures, first, last int64
		var write bool
		if err := rows.Scan(&procID, &fileID, &op, &write, &count, &failures, &first, &last); err != nil {
			rows.Close()
			return err
		}
		b = appendDeltaBytes(b, aggKey{procID, fileID, opOf(uint64(op)), write},
			aggVal{uint64(count), uint64(failures), uint64(first), uint64(last)})
		if n++; n == compactChunk {
			if err := aw.write(b, n, 0); err != nil {
				rows.Close()
				return err
			}
			b, n = b[:chunkHeaderLen], 0
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if err := aw.write(b, n, 0); err != nil {
		return err
	}
	table, sqlBytes := aw.n, aw.bytes
	rows, err = tx.QueryContext(ctx, "SELECT seq, data FROM access_deltas ORDER BY seq")
	if err != nil {
		return err
	}
	for rows.Next() {
		var seq int64
		var data []byte
		if err := rows.Scan(&seq, &data); err != nil {
			rows.Close()
			return err
		}
		n := int64(0)
		if err := decodeDelta(data, func(aggKey, aggVal) { n++ }); err != nil {
			rows.Close()
			return fmt.Errorf("access_deltas row %d: %w", seq, err)
		}
		if err := aw.write(append(b[:chunkHeaderLen], data...), n, 0); err != nil {
			rows.Close()
			return err
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if err := aw.finish(); err != nil {
		return err
	}
	// One statement per Exec: the driver binds every statement of a
	// multi-statement Exec from the first argument.
	for _, st := range []struct {
		sql  string
		args []any
	}{
		{"UPDATE trace_logs SET bytes = ?, n = ? WHERE name = 'paths'", []any{pw.bytes, pw.n}},
		{"UPDATE trace_logs SET bytes = ?, n = ?, base = ?, sql_gen = 1, sql_bytes = ?, sql_n = ? WHERE name = 'accesses'",
			[]any{aw.bytes, aw.n, table, sqlBytes, table}},
		{"DROP TABLE file_deltas", nil}, {"DROP TABLE access_deltas", nil},
	} {
		if _, err := tx.ExecContext(ctx, st.sql, st.args...); err != nil {
			return err
		}
	}
	pw.done, aw.done = true, true
	return nil
}

// logWriter writes a whole log file (a migration, a compaction).
type logWriter struct {
	f        *os.File
	magic    string
	buf      []byte
	bytes, n int64
	done     bool
}

func newLogWriter(dir, name string, gen int64, magic string) (*logWriter, error) {
	f, err := os.OpenFile(filepath.Join(dir, logName(name, gen)), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s log: %w", name, err)
	}
	return &logWriter{f: f, magic: magic, buf: make([]byte, chunkHeaderLen, 1<<16)}, nil
}

// write seals and writes the chunk b (header space, then payload) of n
// entries; an empty chunk is not written.
func (w *logWriter) write(b []byte, n, first int64) error {
	w.buf = b
	if n == 0 {
		return nil
	}
	sealChunk(b, w.magic, n, first, 0)
	if _, err := w.f.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", w.f.Name(), err)
	}
	w.bytes += int64(len(b))
	w.n += n
	return nil
}

// finish syncs the file: it must be on disk before a commit names it.
func (w *logWriter) finish() error {
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", w.f.Name(), err)
	}
	return nil
}

// abort closes the file, and removes it unless the caller marked it done.
func (w *logWriter) abort() {
	w.f.Close()
	if !w.done {
		os.Remove(w.f.Name())
	}
}
