// Package ring is the Go side of restrack's shared-memory ring: the file
// layout (mirrored from libcshim/ring_abi.h, the one definition), the
// consumer that drains published records in bulk, and a producer for Go
// clients and tests.
//
// The ring is split into per-CPU sub-rings. Producers reserve 64-byte slots
// by CAS on their sub-ring's tail and publish a record by storing its first
// slot's stamp; the single consumer (it holds flock on the file) reads every
// sub-ring, restores each thread's order by time, copies records into a
// caller-owned Batch and frees their slots only when told to (Release), so a
// collector can persist a batch before the space is reused. Positions the
// consumer hands out are cut ids, one per drain. docs/ring-abi.md is the
// specification.
package ring
