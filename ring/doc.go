// Package ring is the Go side of restrack's shared-memory ring: the file
// layout (mirrored from libcshim/ring_abi.h, the one definition), the
// consumer that drains published records in bulk, and a producer for Go
// clients and tests.
//
// Producers reserve 64-byte slots by CAS on the tail counter and publish a
// record by storing its first slot's stamp; the single consumer reads
// published records in order, copies them into a caller-owned Batch and frees
// their slots only when told to (Release), so a collector can persist a batch
// before the space is reused. docs/ring-abi.md is the specification.
package ring
