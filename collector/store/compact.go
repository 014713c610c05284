package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Compaction. The accesses log holds one entry per aggregate per commit
// that touched it: a program reading the same file in a loop for a week
// adds one entry per commit. Compaction sums the log into one entry per
// key, written as the next generation's file (accesses-GEN+1.log), and
// switches to it in one transaction; the old file is removed after.
//
// When: the writer cannot know how many keys the log repeats without
// reading it, but it knows a lower bound of the distinct keys — the
// entries of the last compaction (base) plus the entries of paths new in
// their batch (fresh: a new path makes new keys). The others may repeat.
// A compaction runs once they outnumber the surely distinct ones (and
// compactMin): its cost, linear in the log, is then paid for by at least as
// many appended entries since the last one — amortised O(1) per entry. A
// trace of only new pairs never compacts; a repeat-pair trace compacts
// every compactMin commits.

const (
	compactMin = 1 << 16
	// compactChunk bounds the entries of one chunk of a compacted file.
	compactChunk = 1 << 16
)

// compactDue: the entries that may repeat outnumber factor times the
// surely distinct ones. The collector compacts while idle at factor 1; a
// commit compacts itself at factor 4 (a collector that is never idle).
func (l *appendLog) compactDue(factor int64) bool {
	st := l.state
	return st.n-st.base-st.fresh > factor*max(st.base+st.fresh, compactMin)
}

// readAggregates calls fn with every aggregate entry of the accesses log
// of st from byte from on. Entries of one key are to be summed.
func readAggregates(dir string, st logState, from int64, fn func(aggKey, aggVal)) error {
	return readLogChunks(dir, accessesLog, accessMagic, st, from, func(n, _ int64, payload []byte) error {
		return decodeDelta(payload, fn)
	})
}

// sumAggregates reads the accesses log of st into one value per key.
func sumAggregates(dir string, st logState, from int64) (map[aggKey]aggVal, error) {
	all := make(map[aggKey]aggVal, max(st.base+st.fresh, 16))
	err := readAggregates(dir, st, from, func(k aggKey, v aggVal) { mergeAgg(all, k, v) })
	return all, err
}

// compact rewrites the accesses log as one entry per key. Called with
// w.mu held and the writer loaded.
func (w *writer) compact(ctx context.Context) error {
	old := w.accs.state
	all, err := sumAggregates(w.s.dir, old, 0)
	if err != nil {
		return err
	}
	st := logState{gen: old.gen + 1, n: int64(len(all)), base: int64(len(all))}
	path := filepath.Join(w.s.dir, logName(accessesLog, st.gen))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("compact the accesses log: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(path)
		}
	}()
	buf := w.accs.begin()
	n := int64(0)
	flush := func() error {
		if n == 0 {
			return nil
		}
		sealChunk(buf, accessMagic, n, 0, 0)
		if _, err := f.Write(buf); err != nil {
			return fmt.Errorf("compact the accesses log: %w", err)
		}
		st.bytes += int64(len(buf))
		buf, n = buf[:chunkHeaderLen], 0
		return nil
	}
	for k, v := range all {
		buf = appendDeltaBytes(buf, k, v)
		if n++; n == compactChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	w.accs.buf = buf
	// The new file must be on disk before the transaction naming it
	// commits, and that commit durable before the old file goes: a power
	// loss then finds one complete generation either way.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("compact the accesses log: %w", err)
	}
	if _, err := w.s.db.ExecContext(ctx, "PRAGMA synchronous = FULL"); err != nil {
		return err
	}
	defer w.s.db.ExecContext(ctx, "PRAGMA synchronous = NORMAL")
	tx, err := w.begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, "UPDATE trace_log_rows SET gen = ?, bytes = ?, n = ?, base = ?, fresh = 0 WHERE name = ?",
		st.gen, st.bytes, st.n, st.base, accessesLog); err != nil {
		return err
	}
	// The new generation's lengths are in trace_log_rows now; the next
	// commit overlays its own again.
	if _, err := tx.ExecContext(ctx, "UPDATE commit_state SET acc_bytes = NULL, acc_n = NULL, acc_fresh = NULL WHERE id = 1"); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	ok = true
	_ = w.accs.close()
	// A reader still on the old generation keeps its open file; one that
	// has not opened it yet starts over on the new one (errLogGone).
	_ = os.Remove(filepath.Join(w.s.dir, logName(accessesLog, old.gen)))
	w.accs.f, w.accs.state = f, st
	return nil
}

// Fold brings the SQL tables files and accesses up to date with the logs
// (Materialize); kept for callers of earlier releases.
func (s *Store) Fold(ctx context.Context) error {
	_, err := s.Materialize(ctx)
	return err
}

// FoldSome does the writer's upkeep while the collector finds its source
// empty: a compaction of the accesses log when one is due. It never
// materializes the SQL tables (the reader's side does: Materialize). It
// reports whether more upkeep is waiting (never, today: one compaction
// does all).
func (s *Store) FoldSome(ctx context.Context, budget time.Duration) (bool, error) {
	if s.w == nil {
		return false, fmt.Errorf("compact store %s: opened read-only", s.dir)
	}
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.load(ctx); err != nil {
		w.reset()
		return false, s.dbError("compact", err)
	}
	if w.accs.compactDue(1) {
		if err := w.compact(ctx); err != nil {
			w.reset()
			return false, s.dbError("compact", err)
		}
	}
	return false, nil
}
