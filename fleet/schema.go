package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// SchemaVersion is the fleet schema this build writes and reads.
const SchemaVersion = 1

// migrationLock serialises schema changes between publishers that start
// together ("RTFL").
const migrationLock = 0x5254464c

// Every table is keyed by host_id first: it is the distribution column
// Citus would shard on (docs/fleet.md says why), so every primary key holds
// it and a host's rows are published and read on one shard.
var migrations = []string{
	// 0 → 1
	`CREATE TABLE restrack.hosts (
		host_id         text PRIMARY KEY,
		publisher       text NOT NULL,        -- the local store that owns this host id
		dropped_events  bigint NOT NULL DEFAULT 0,
		first_published timestamptz NOT NULL DEFAULT now(),
		last_published  timestamptz NOT NULL DEFAULT now()
	);
	CREATE TABLE restrack.processes (
		host_id         text NOT NULL,
		pid             integer NOT NULL,
		start_ns        bigint NOT NULL,      -- CLOCK_MONOTONIC of that host; u64 stored as the same 64 bits
		ppid            integer NOT NULL,
		parent_start_ns bigint,               -- the traced parent's start; NULL when the parent was not traced
		exe             bytea NOT NULL,       -- raw bytes, as the host's store holds them
		argv            bytea NOT NULL,       -- NUL-separated
		cwd             bytea NOT NULL,
		first_ns        bigint NOT NULL,
		last_ns         bigint NOT NULL,
		exited          boolean NOT NULL,
		PRIMARY KEY (host_id, pid, start_ns)
	);
	CREATE TABLE restrack.files (
		host_id    text NOT NULL,
		file_id    bigint NOT NULL,           -- 64-bit hash of path, unique per host
		path       bytea NOT NULL,            -- as the host's processes named it
		net_source bytea,                     -- network export ("server:/export"); NULL for a local file
		net_path   bytea,                     -- path inside the export
		PRIMARY KEY (host_id, file_id)
	);
	CREATE INDEX files_net ON restrack.files (net_source, net_path) WHERE net_source IS NOT NULL;
	CREATE TABLE restrack.accesses (
		host_id  text NOT NULL,
		pid      integer NOT NULL,
		start_ns bigint NOT NULL,
		file_id  bigint NOT NULL,
		op       text NOT NULL,
		write    boolean NOT NULL,
		count    bigint NOT NULL,
		failures bigint NOT NULL,
		first_ns bigint NOT NULL,
		last_ns  bigint NOT NULL,
		PRIMARY KEY (host_id, pid, start_ns, file_id, op, write)
	);`,
}

// Migrate creates the schema or brings it to SchemaVersion, in one
// transaction under an advisory lock, and returns the database's instance
// id (random, made at creation): a cursor made against another database,
// or against this one recreated, is not trusted.
func Migrate(ctx context.Context, conn *pgx.Conn) (string, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return "", fmt.Errorf("migrate the fleet schema: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLock)); err != nil {
		return "", fmt.Errorf("migrate the fleet schema: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS restrack;
		CREATE TABLE IF NOT EXISTS restrack.meta (key text PRIMARY KEY, value text NOT NULL)`); err != nil {
		return "", fmt.Errorf("create the fleet schema: %w (the DSN's user needs CREATE on the database)", err)
	}
	version, instance, err := readMeta(ctx, tx)
	if err != nil {
		return "", err
	}
	if version > SchemaVersion {
		return "", fmt.Errorf("the fleet database has schema version %d, newer than this restrack's %d: use a newer restrack", version, SchemaVersion)
	}
	for v := version; v < SchemaVersion; v++ {
		if _, err := tx.Exec(ctx, migrations[v]); err != nil {
			return "", fmt.Errorf("migrate the fleet schema from version %d: %w", v, err)
		}
	}
	if instance == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		instance = hex.EncodeToString(b)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO restrack.meta (key, value) VALUES ('schema_version', $1), ('instance', $2)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, strconv.Itoa(SchemaVersion), instance); err != nil {
		return "", fmt.Errorf("migrate the fleet schema: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return "", fmt.Errorf("migrate the fleet schema: %w", err)
	}
	return instance, nil
}

// checkSchema is the readers' side: no writes, and a clear error when
// nothing was ever published or the schema is not one this build reads.
func checkSchema(ctx context.Context, q pgx.Tx) error {
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass('restrack.meta') IS NOT NULL").Scan(&exists); err != nil {
		return fmt.Errorf("read the fleet database: %w", err)
	}
	if !exists {
		return errors.New("the fleet database holds no restrack data: publish first (collector -publish DSN, restrack run --publish DSN or restrack publish)")
	}
	version, _, err := readMeta(ctx, q)
	if err != nil {
		return err
	}
	if version != SchemaVersion {
		return fmt.Errorf("the fleet database has schema version %d, this restrack reads %d: publish once with this restrack to migrate it, or use a matching restrack", version, SchemaVersion)
	}
	return nil
}

func readMeta(ctx context.Context, q pgx.Tx) (version int, instance string, err error) {
	rows, err := q.Query(ctx, "SELECT key, value FROM restrack.meta")
	if err != nil {
		return 0, "", fmt.Errorf("read the fleet schema version: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return 0, "", fmt.Errorf("read the fleet schema version: %w", err)
		}
		switch k {
		case "schema_version":
			if version, err = strconv.Atoi(v); err != nil {
				return 0, "", fmt.Errorf("the fleet database's schema_version %q is not a number: not touching it", v)
			}
		case "instance":
			instance = v
		}
	}
	return version, instance, rows.Err()
}
