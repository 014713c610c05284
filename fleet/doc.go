// Package fleet carries restrack beyond one host (design §14): each host's
// collector publishes its aggregated accesses, processes and files to one
// PostgreSQL database, and a plan can then be computed across hosts.
//
// Identity is what makes hosts comparable: a process is (host, pid, start),
// a local file is (host, path), and a file on a network filesystem is (mount
// source, path inside the mount), so one NFS or sshfs file mounted at
// different places on two hosts is one file. Publishing reads the local
// store through its public query API, never the ring, and runs beside the
// collector: the database being down or slow delays publishing, never
// tracing. docs/fleet.md has the schema, the guarantees and the limits.
package fleet
