package store

import (
	"context"
	"database/sql"
)

// applicationID marks a SQLite file as a restrack store ("RTST"): a database
// without it is someone else's and is never touched.
const applicationID = 0x52545354

// schemaVersion is PRAGMA user_version of a store this build writes.
// migrations[v] upgrades a store from version v to v+1.
const schemaVersion = 8

var migrations = []string{
	// 0 → 1: the first schema.
	`
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;

-- One row per source (ring creation, FIFO run): where the committed data
-- ends and what was lost on the way.
CREATE TABLE sources (
	id             INTEGER PRIMARY KEY,  -- ring id (bit pattern of the u64), random for a FIFO
	kind           TEXT NOT NULL,        -- 'ring', 'fifo'
	path           TEXT NOT NULL,
	position       INTEGER NOT NULL,     -- next ring slot to read: all before it is committed
	records        INTEGER NOT NULL DEFAULT 0,
	bytes          INTEGER NOT NULL DEFAULT 0,
	dropped_full   INTEGER NOT NULL DEFAULT 0,  -- producers: ring stayed full
	dropped_toobig INTEGER NOT NULL DEFAULT 0,  -- producers: record too big
	abandoned      INTEGER NOT NULL DEFAULT 0,  -- collector: producer died mid-append
	corrupted      INTEGER NOT NULL DEFAULT 0,  -- collector: record failed validation
	first_unix_ns  INTEGER NOT NULL,
	last_unix_ns   INTEGER NOT NULL
);

CREATE TABLE processes (
	id             INTEGER PRIMARY KEY,
	pid            INTEGER NOT NULL,
	start_ns       INTEGER NOT NULL,     -- process start, ns since boot: pid + start_ns is the identity
	ppid           INTEGER NOT NULL,
	exe            TEXT NOT NULL DEFAULT '',
	cwd            TEXT NOT NULL DEFAULT '',
	argv           BLOB,                 -- arguments, NUL-separated
	argv_truncated INTEGER NOT NULL DEFAULT 0,
	first_ns       INTEGER NOT NULL,     -- first and last record time (CLOCK_MONOTONIC)
	last_ns        INTEGER NOT NULL,
	exit_ns        INTEGER,              -- NULL while not seen exiting
	UNIQUE (pid, start_ns)
);

CREATE TABLE files (
	id   INTEGER PRIMARY KEY,
	path TEXT NOT NULL UNIQUE            -- absolute; raw bytes, not necessarily UTF-8
);

CREATE TABLE ops (
	op   INTEGER PRIMARY KEY,
	name TEXT NOT NULL
);

-- What the planner reads: every event folded into one row per
-- process × file × op × access class.
CREATE TABLE accesses (
	proc_id  INTEGER NOT NULL REFERENCES processes (id),
	file_id  INTEGER NOT NULL REFERENCES files (id),
	op       INTEGER NOT NULL,
	write    INTEGER NOT NULL,           -- 1: write class, 0: read
	count    INTEGER NOT NULL,           -- successful calls
	failures INTEGER NOT NULL,           -- failed calls
	first_ns INTEGER NOT NULL,
	last_ns  INTEGER NOT NULL,
	PRIMARY KEY (proc_id, file_id, op, write)
) WITHOUT ROWID;
CREATE INDEX accesses_by_file ON accesses (file_id);

-- Raw events, newest retain_events kept (meta).
CREATE TABLE events (
	seq      INTEGER PRIMARY KEY,        -- commit order
	time_ns  INTEGER NOT NULL,
	proc_id  INTEGER NOT NULL,
	ppid     INTEGER NOT NULL,
	tid      INTEGER NOT NULL,
	op       INTEGER NOT NULL,
	access   INTEGER NOT NULL,           -- 0 none (context: fork, chdir), 1 read, 2 write, 3 lookup
	flags    INTEGER NOT NULL,
	mode     INTEGER NOT NULL,
	result   INTEGER NOT NULL,           -- fd or return value; -errno on failure
	rflags   INTEGER NOT NULL,
	path_id  INTEGER,
	path2_id INTEGER
);

CREATE VIEW v_accesses AS
SELECT p.pid, p.start_ns, p.exe, f.path, o.name AS op,
       CASE a.write WHEN 1 THEN 'write' ELSE 'read' END AS access,
       a.count, a.failures, a.first_ns, a.last_ns
FROM accesses a
JOIN processes p ON p.id = a.proc_id
JOIN files f ON f.id = a.file_id
LEFT JOIN ops o ON o.op = a.op;

CREATE VIEW v_events AS
SELECT e.seq, e.time_ns, p.pid, p.start_ns, e.ppid, e.tid, o.name AS op,
       CASE e.access WHEN 3 THEN 'lookup' WHEN 2 THEN 'write' WHEN 1 THEN 'read' ELSE 'none' END AS access,
       e.flags, e.mode, e.result, f.path, f2.path AS path2
FROM events e
JOIN processes p ON p.id = e.proc_id
LEFT JOIN ops o ON o.op = e.op
LEFT JOIN files f ON f.id = e.path_id
LEFT JOIN files f2 ON f2.id = e.path2_id;
`,
	// 1 → 2: which source (sources.id) each raw event came from, so that
	// `restrack coverage` can tell what the shim saw from what the kernel
	// saw in one --mode ring+ebpf run. NULL for events stored before.
	`ALTER TABLE events ADD COLUMN source_id INTEGER;`,
	// 2 → 3: aggregate deltas. A commit appends its batch's aggregates
	// as one encoded row instead of one B-tree upsert per aggregate; the
	// writer folds them into accesses every few seconds, so a hot
	// aggregate costs one upsert per fold, not one per batch.
	`
CREATE TABLE access_deltas (
	seq  INTEGER PRIMARY KEY,
	data BLOB NOT NULL                   -- see delta.go: varint-encoded aggregates
);
`,
	// 3 → 4: raw events in chunks. A row per raw event cost ~2 µs in
	// SQLite (binding 14 values, a B-tree insert), capping ingest near
	// 400 k events/s and stalling the drain under load; a commit now
	// stores its batch's raw events as one encoded row (chunk.go). The
	// events table stays for stores written before; nothing writes it.
	`
CREATE TABLE event_chunks (
	first_seq INTEGER PRIMARY KEY,       -- sequence number of the chunk's first event
	n         INTEGER NOT NULL,          -- events in the chunk
	source_id INTEGER,                   -- sources.id of the batch
	data      BLOB NOT NULL              -- see chunk.go: varint-encoded events
);
`,
	// 4 → 5: raw events in append-only segment files beside the
	// database (eventlog.go): a chunk in SQLite was written twice (WAL,
	// checkpoint) through overflow pages. event_segments holds each
	// segment's committed length, updated in the commit's transaction.
	// processes.command is argv joined by spaces, for sqlite3 users (the
	// NUL-separated BLOB prints as its first word). New paths wait in
	// file_deltas, as aggregates in access_deltas, until the writer folds
	// them (files.go): a B-tree insert per new path cost more than the
	// traced program took to open the next one.
	`
CREATE TABLE event_segments (
	seg       INTEGER PRIMARY KEY,       -- file events-SEG.log (8 digits)
	first_seq INTEGER NOT NULL,          -- sequence number of its first event
	n         INTEGER NOT NULL,          -- committed events
	bytes     INTEGER NOT NULL           -- committed length: what follows is cut by the next writer
);
CREATE TABLE file_deltas (
	first_id INTEGER PRIMARY KEY,        -- files.id of its first path; the others follow in order
	n        INTEGER NOT NULL,
	data     BLOB NOT NULL               -- see files.go: uvarint length + bytes per path
);
ALTER TABLE processes ADD COLUMN command TEXT NOT NULL DEFAULT '';
UPDATE processes SET command = replace(CAST(argv AS TEXT), char(0), ' ');
`,
	// 5 → 6: the uid the collector verified as the owner of a process's
	// records (its per-uid ring); NULL when the source had no verified
	// owner (a ring given by path, FIFO, eBPF).
	`ALTER TABLE processes ADD COLUMN uid INTEGER;`,
	// 6 → 7: the path table and the aggregates leave SQLite for
	// append-only logs beside the database (tracelog.go): a B-tree insert
	// per new (process, file) pair cost microseconds, the delta rows were
	// written twice (WAL, checkpoint) and folded at a microsecond or more
	// each. trace_logs holds each log's committed generation and length,
	// updated in the commit's transaction like event_segments. files and
	// accesses stay, materialized from the logs on demand (materialize.go);
	// migrate7 moves their rows and the deltas into the logs.
	`
CREATE TABLE trace_logs (
	name      TEXT PRIMARY KEY,          -- 'paths' (paths-GEN.log), 'accesses' (accesses-GEN.log)
	gen       INTEGER NOT NULL,          -- the file's generation (compaction starts the next)
	bytes     INTEGER NOT NULL,          -- committed length: what follows is cut by the next writer
	n         INTEGER NOT NULL,          -- entries committed (paths; aggregate entries)
	base      INTEGER NOT NULL DEFAULT 0,  -- accesses: entries of the compacted sum the file starts with
	fresh     INTEGER NOT NULL DEFAULT 0,  -- accesses: later entries that were surely new keys
	sql_gen   INTEGER NOT NULL DEFAULT 0,  -- accesses: the table accesses holds accesses-SQL_GEN.log
	sql_bytes INTEGER NOT NULL DEFAULT 0,  --   up to byte sql_bytes,
	sql_n     INTEGER NOT NULL DEFAULT 0   --   its first sql_n entries
) WITHOUT ROWID;
INSERT INTO trace_logs (name, gen, bytes, n) VALUES ('paths', 1, 0, 0), ('accesses', 1, 0, 0);
`,
	// 7 → 8: a commit writes one row of one table. Each commit updated a
	// row of sources, of trace_logs (twice) and of event_segments: a
	// B-tree page each, a WAL frame each (two pwrites, a checksum, then a
	// checkpoint copy), the largest fixed cost of a small commit under a
	// live trace. commit_state now holds what a commit changes — the
	// source's position and counters, the logs' and the current
	// segment's committed lengths — as absolute values; the former
	// tables keep the rest (source_rows, trace_log_rows, segment_rows:
	// written when a source or segment changes, at a compaction) and
	// views with their old names and columns overlay commit_state, so
	// readers and sqlite3 users see every commit exactly as before.
	`
ALTER TABLE sources RENAME TO source_rows;
ALTER TABLE trace_logs RENAME TO trace_log_rows;
ALTER TABLE event_segments RENAME TO segment_rows;
CREATE TABLE commit_state (
	id             INTEGER PRIMARY KEY CHECK (id = 1),
	source_id      INTEGER,              -- the source of the last commit (source_rows.id); NULL: none
	path           TEXT,                 -- its values, absolute: they replace source_rows' in sources
	position       INTEGER,
	records        INTEGER,
	bytes          INTEGER,
	dropped_full   INTEGER,
	dropped_toobig INTEGER,
	abandoned      INTEGER,
	corrupted      INTEGER,
	last_unix_ns   INTEGER,
	paths_bytes    INTEGER,              -- trace_logs 'paths': bytes, n (NULL: trace_log_rows holds them)
	paths_n        INTEGER,
	acc_bytes      INTEGER,              -- trace_logs 'accesses': bytes, n, fresh (NULL: likewise)
	acc_n          INTEGER,
	acc_fresh      INTEGER,
	seg            INTEGER,              -- the segment being appended to (segment_rows.seg) and its n, bytes
	seg_n          INTEGER,
	seg_bytes      INTEGER
);
INSERT INTO commit_state (id) VALUES (1);
CREATE VIEW sources AS
SELECT s.id, s.kind, coalesce(c.path, s.path) AS path, coalesce(c.position, s.position) AS position,
       coalesce(c.records, s.records) AS records, coalesce(c.bytes, s.bytes) AS bytes,
       coalesce(c.dropped_full, s.dropped_full) AS dropped_full, coalesce(c.dropped_toobig, s.dropped_toobig) AS dropped_toobig,
       coalesce(c.abandoned, s.abandoned) AS abandoned, coalesce(c.corrupted, s.corrupted) AS corrupted,
       s.first_unix_ns, coalesce(c.last_unix_ns, s.last_unix_ns) AS last_unix_ns
FROM source_rows s LEFT JOIN commit_state c ON c.id = 1 AND c.source_id = s.id;
CREATE VIEW trace_logs AS
SELECT t.name, t.gen,
       coalesce(CASE t.name WHEN 'paths' THEN c.paths_bytes ELSE c.acc_bytes END, t.bytes) AS bytes,
       coalesce(CASE t.name WHEN 'paths' THEN c.paths_n ELSE c.acc_n END, t.n) AS n,
       t.base,
       coalesce(CASE t.name WHEN 'paths' THEN NULL ELSE c.acc_fresh END, t.fresh) AS fresh,
       t.sql_gen, t.sql_bytes, t.sql_n
FROM trace_log_rows t LEFT JOIN commit_state c ON c.id = 1;
CREATE VIEW event_segments AS
SELECT e.seg, e.first_seq, coalesce(c.seg_n, e.n) AS n, coalesce(c.seg_bytes, e.bytes) AS bytes
FROM segment_rows e LEFT JOIN commit_state c ON c.id = 1 AND c.seg = e.seg;
`,
}

// goMigrations[v] runs after migrations[v], in its transaction: steps SQL
// alone cannot do.
var goMigrations = map[int64]func(ctx context.Context, tx *sql.Tx, dir string) error{
	6: migrate7,
}
