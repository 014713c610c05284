// Package collector drains a source of trace records (the shared-memory
// ring, the FIFO of the paper's design, later eBPF) in bulk into a store.
//
// It waits for the drain interval or the ring's high-water doorbell, never
// spinning; copies everything published in one pass; commits each batch in
// one store transaction together with the position it reached; and only
// then releases the batch's ring slots. A collector killed at any point
// therefore loses nothing published: the next one finds the position in the
// store and resumes there, and the records it had not committed are still in
// the ring. Counters are served as Prometheus metrics and, with status and
// plan queries, over a unix socket restricted to the collector's own user.
package collector
