package ring

import (
	"strings"
	"testing"
)

// BenchmarkDrain measures the consumer alone: one Drain copies a ring full of
// published records (64-byte paths) into a batch. Reported as records/s and
// MB/s of record bytes.
func BenchmarkDrain(b *testing.B) {
	path := mustCreate(b, Config{DataSize: DefaultDataSize})
	w := mustWriter(b, path)
	r := mustOpen(b, path, Options{})
	rec := event("/"+strings.Repeat("d", 63), 0)
	n := 0
	for w.Append(rec) == nil {
		n++
	}
	batch := NewBatch(n, n*70)
	b.ResetTimer()
	var records, bytes uint64
	for i := 0; i < b.N; i++ {
		// Re-read the same published records: they stay valid until released.
		for i := range r.subs {
			r.subs[i].cursor = 0
			r.subs[i].resetScan()
		}
		r.cut = r.released
		r.Drain(batch)
		if len(batch.Records) != n {
			b.Fatalf("drained %d of %d", len(batch.Records), n)
		}
		records += uint64(len(batch.Records))
		bytes += batch.Bytes
	}
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(records)/secs, "records/s")
	b.ReportMetric(float64(bytes)/secs/1e6, "MB/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkWriterAppend is the Go producer's cost per record (64-byte path),
// with a consumer releasing in bulk every 4096 records.
func BenchmarkWriterAppend(b *testing.B) {
	path := mustCreate(b, Config{DataSize: DefaultDataSize})
	w := mustWriter(b, path)
	r := mustOpen(b, path, Options{})
	batch := NewBatch(8192, 8192*70)
	rec := event("/"+strings.Repeat("w", 63), 0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := w.Append(rec); err != nil {
			b.Fatal(err)
		}
		if i%4096 == 4095 {
			r.Drain(batch)
			r.Release(batch.End)
		}
	}
}
