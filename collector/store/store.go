package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/restrack/restrack/ring"
	_ "modernc.org/sqlite" // database/sql driver "sqlite": pure Go, so the Go side cross-builds
)

// DBName is the database file inside a store directory.
const DBName = "restrack.db"

// DefaultRetainEvents bounds the raw-event table: enough for any one-shot
// trace worth exporting, small enough (a few hundred MB) for a week-long
// daemon. The aggregates the planner reads are never pruned.
const DefaultRetainEvents = 5_000_000

// Options tune Open.
type Options struct {
	// ReadOnly opens an existing store for queries: no lock, no migration,
	// no writes. Several readers may share a store with one writer.
	ReadOnly bool
	// RetainEvents is how many raw events the writer keeps (the newest):
	// 0 = DefaultRetainEvents, negative = all of them.
	RetainEvents int64
	// DiscardEvents keeps no raw events at all, only the aggregates.
	DiscardEvents bool
}

// Store is an open store directory. Commits are serialised (several
// collectors may share one writer); queries run concurrently with them.
type Store struct {
	dir string
	db  *sql.DB
	// rdb serves the queries (Events, Trace, Stats). For a writer it is a
	// separate pool of read-only connections: a long read (a plan over a
	// big trace, an export) never holds the writer's one connection, so
	// the collector keeps committing meanwhile (WAL readers see the last
	// commit). For a reader it is db.
	rdb    *sql.DB
	unlock func()
	opts   Options
	w      *writer // nil when read-only

	stopCheckpoints func()
}

// ErrNoStore: the directory holds no store (read-only open).
var ErrNoStore = errors.New("no restrack store here")

// Open opens (a writer also creates) the store in dir. A writer holds an
// exclusive lock on the directory: a second collector on the same store is
// an error, not a silent interleaving. A database that is not a restrack
// store, is corrupted, or comes from a newer restrack is an error and is left
// untouched.
func Open(dir string, opts Options) (*Store, error) {
	if opts.RetainEvents == 0 {
		opts.RetainEvents = DefaultRetainEvents
	}
	dbPath := filepath.Join(dir, DBName)
	s := &Store{dir: dir, opts: opts}
	if opts.ReadOnly {
		if _, err := os.Stat(dbPath); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("open store %s: %w (trace something first: restrack run --store %s -- CMD)", dir, ErrNoStore, dir)
			}
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
	} else {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create store directory %s: %w (choose a store directory you can write)", dir, err)
		}
		unlock, err := lockDir(dir)
		if err != nil {
			return nil, err
		}
		s.unlock = unlock
		// Traces name every file a workload touched: owner-only, whatever
		// the directory's mode (SQLite would use the umask).
		if f, err := os.OpenFile(dbPath, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
			f.Close()
		}
	}
	mode := modeWrite
	if opts.ReadOnly {
		mode = readMode(dir, dbPath)
	}
	db, err := sql.Open("sqlite", dsn(dbPath, mode))
	if err != nil {
		s.release()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	s.db = db
	if !opts.ReadOnly {
		// One connection: every write goes through it, and SQLite would
		// serialise writers anyway. Readers open their own Store.
		db.SetMaxOpenConns(1)
	}
	if err := s.check(context.Background()); err != nil {
		s.Close()
		return nil, err
	}
	s.rdb = db
	if !opts.ReadOnly {
		s.w = newWriter(s)
		if s.rdb, err = sql.Open("sqlite", dsn(dbPath, modeRead)); err != nil {
			s.rdb = nil
			s.Close()
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
		if err := s.startCheckpoints(dbPath); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// checkpointEvery is how often the WAL is copied into the database.
const checkpointEvery = 500 * time.Millisecond

// startCheckpoints runs PASSIVE checkpoints on a second connection: they
// never block the writer, which goes on appending to the WAL meanwhile.
func (s *Store) startCheckpoints(dbPath string) error {
	ck, err := sql.Open("sqlite", dsn(dbPath, modeWrite))
	if err != nil {
		return fmt.Errorf("open store %s: %w", s.dir, err)
	}
	ck.SetMaxOpenConns(1)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				// Errors (busy, I/O) only delay the checkpoint: the WAL
				// keeps every commit until one succeeds.
				_, _ = ck.Exec("PRAGMA wal_checkpoint(PASSIVE)")
			}
		}
	}()
	s.stopCheckpoints = func() {
		close(stop)
		<-done
		ck.Close()
	}
	return nil
}

// openMode is how a connection opens the database.
type openMode int

const (
	modeWrite openMode = iota
	modeRead
	// modeImmutable reads a store in a directory this process cannot
	// write, where SQLite cannot create the -shm index a WAL reader needs
	// ("attempt to write a readonly database"). Only safe while nothing
	// writes the database: readMode checks there is no WAL.
	modeImmutable
)

// readMode picks how a reader opens the store in dir.
func readMode(dir, dbPath string) openMode {
	if dirWritable(dir) {
		return modeRead
	}
	// A writer (or one that crashed) leaves restrack.db-wal; without it
	// the database file holds every commit and nobody is changing it.
	if _, err := os.Stat(dbPath + "-wal"); errors.Is(err, os.ErrNotExist) {
		return modeImmutable
	}
	return modeRead
}

func dsn(path string, mode openMode) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(0)")
	if mode == modeImmutable {
		q.Set("mode", "ro")
		q.Set("immutable", "1")
		q.Add("_pragma", "query_only(1)")
	} else if mode == modeRead {
		// mode=rw never creates the file; query_only refuses writes.
		q.Set("mode", "rw")
		q.Add("_pragma", "query_only(1)")
	} else {
		// synchronous=NORMAL in WAL mode: a crash of the process loses
		// nothing committed; a power loss can lose the last commits, and
		// the ring (in /dev/shm) with them, so store and source position
		// stay consistent. journal_mode is set by migrate, once the file
		// is known to be ours: it rewrites the file header.
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "cache_size(-16384)")
		// No checkpoint inside a commit: copying the WAL into the database
		// (and its fsync) stalled commits for tens of ms, long enough for
		// full-speed producers to fill the ring. checkpointLoop does it on
		// its own connection, concurrently with the commits.
		q.Add("_pragma", "wal_autocheckpoint(0)")
		q.Set("_txlock", "immediate")
	}
	return "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + q.Encode()
}

// check verifies the file is a restrack store of a version this build reads,
// creating or migrating it when opened for writing.
func (s *Store) check(ctx context.Context) error {
	var appID, version int64
	if err := s.db.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return s.dbError("read", err)
	}
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return s.dbError("read", err)
	}
	var tables int64
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&tables); err != nil {
		return s.dbError("read", err)
	}
	switch {
	case appID == 0 && tables == 0:
		if s.opts.ReadOnly {
			return fmt.Errorf("open store %s: %w (the database is empty)", s.dir, ErrNoStore)
		}
	case appID != applicationID:
		return fmt.Errorf("open store %s: %s is a SQLite database of another program (application_id %#x): not touching it; choose another --store directory",
			s.dir, filepath.Join(s.dir, DBName), appID)
	case version > schemaVersion:
		return fmt.Errorf("open store %s: schema version %d is newer than this restrack's %d: use a newer restrack", s.dir, version, schemaVersion)
	case version < schemaVersion && s.opts.ReadOnly:
		return fmt.Errorf("open store %s: schema version %d is older than this restrack's %d: open it once with the collector or restrack run to migrate", s.dir, version, schemaVersion)
	}
	if s.opts.ReadOnly {
		return nil
	}
	return s.migrate(ctx, version)
}

func (s *Store) migrate(ctx context.Context, from int64) error {
	// WAL: readers never block the collector, and a torn WAL tail is
	// detected by its checksums and ignored.
	if _, err := s.db.ExecContext(ctx, "PRAGMA journal_mode = WAL"); err != nil {
		return s.dbError("open", err)
	}
	for v := from; v < schemaVersion; v++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return s.dbError("migrate", err)
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("migrate store %s from schema %d: %w", s.dir, v, err)
		}
		if step := goMigrations[v]; step != nil {
			if err := step(ctx, tx, s.dir); err != nil {
				_ = tx.Rollback()
				return fmt.Errorf("migrate store %s from schema %d: %w", s.dir, v, err)
			}
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d; PRAGMA user_version = %d", applicationID, v+1)); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("migrate store %s from schema %d: %w", s.dir, v, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate store %s from schema %d: %w", s.dir, v, err)
		}
	}
	// Op names change with the ring ABI minor: refresh them for the views.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.dbError("update op names in", err)
	}
	defer func() { _ = tx.Rollback() }()
	for op := ring.Op(1); op < 1024; op++ {
		if !op.Known() {
			continue
		}
		if _, err := tx.ExecContext(ctx, "INSERT OR REPLACE INTO ops (op, name) VALUES (?, ?)", int64(op), op.String()); err != nil {
			return s.dbError("update op names in", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return s.dbError("update op names in", err)
	}
	return nil
}

// dbError explains SQLite's open-time failures in the user's terms.
func (s *Store) dbError(what string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "file is not a database"), strings.Contains(msg, "malformed"), strings.Contains(msg, "SQLITE_NOTADB"), strings.Contains(msg, "SQLITE_CORRUPT"):
		return fmt.Errorf("%s store %s: %s is corrupted or not a SQLite database (%v): left untouched; move it aside or choose another --store directory",
			what, s.dir, filepath.Join(s.dir, DBName), err)
	case s.opts.ReadOnly && !dirWritable(s.dir) && (strings.Contains(msg, "readonly") || strings.Contains(msg, "SQLITE_READONLY") || strings.Contains(msg, "SQLITE_CANTOPEN")):
		return fmt.Errorf("%s store %s: %v: a collector is writing it (or crashed and left %s-wal), and reading a store while it is written needs write access to its directory (SQLite's shared index); read it when the collector has stopped, or a copy of the directory",
			what, s.dir, err, DBName)
	case strings.Contains(msg, "unable to open"), strings.Contains(msg, "readonly"), strings.Contains(msg, "SQLITE_CANTOPEN"), strings.Contains(msg, "SQLITE_READONLY"):
		return fmt.Errorf("%s store %s: cannot open %s (%v): check the directory exists and is writable by you",
			what, s.dir, filepath.Join(s.dir, DBName), err)
	}
	return fmt.Errorf("%s store %s: %w", what, s.dir, err)
}

// Dir is the store directory.
func (s *Store) Dir() string { return s.dir }

// Close flushes and closes the store. It is safe to call more than once.
func (s *Store) Close() error {
	var err error
	if s.w != nil && s.db != nil {
		// The logs hold every commit; the SQL tables files and accesses
		// are materialized by whoever wants them (Materialize), not here:
		// a collector's exit stays as cheap as its commits.
		if e := s.w.close(); e != nil && err == nil {
			err = fmt.Errorf("close store %s: %w", s.dir, e)
		}
		s.w = nil
	}
	if s.stopCheckpoints != nil {
		s.stopCheckpoints()
		s.stopCheckpoints = nil
	}
	if s.rdb != nil && s.rdb != s.db {
		_ = s.rdb.Close()
	}
	s.rdb = nil
	if s.db != nil {
		if e := s.db.Close(); e != nil && err == nil {
			err = fmt.Errorf("close store %s: %w", s.dir, e)
		}
		s.db = nil
	}
	s.release()
	return err
}

func (s *Store) release() {
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
}

func (s *Store) errClosed() error { return fmt.Errorf("store %s: closed", s.dir) }
