// Package store is restrack's durable trace store: one SQLite database
// (modernc.org/sqlite, pure Go, WAL mode) in a directory, holding the
// processes seen, the files they touched, the per process × file × op ×
// access-class aggregates the planner reads, and a bounded window of raw
// events for export.
//
// A collector commits each drained batch in one transaction together with
// the source position it reached, so a restarted collector resumes exactly
// where the last committed batch ended: nothing is stored twice and nothing
// published is skipped. docs/store.md documents the schema.
package store
