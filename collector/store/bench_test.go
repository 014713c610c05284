package store

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/restrack/restrack/ring"
)

// benchBatch is a drained batch of n events from 64 processes over files
// distinct paths. Every event of a batch folds into one of at most
// 64 × files aggregates: that number, not the event count, is what a
// commit costs (one B-tree upsert each).
func benchBatch(n, offset, files int) []ring.Record {
	recs := make([]ring.Record, n)
	paths := make([][]byte, files)
	for i := range paths {
		paths[i] = fmt.Appendf(nil, "/srv/app/data/dir%03d/file%06d.dat", i%500, i)
	}
	for i := range recs {
		k := offset + i
		pid := int32(1000 + k%64)
		r := ring.Record{Type: ring.TypeEvent, Op: ring.OpOpenat, Access: ring.AccessRead, PID: pid, TID: pid, PPID: 1,
			StartNs: uint64(pid) * 1000, TimeNs: uint64(k), Result: 3, Flags: 0, Str1: paths[(k/64*7919)%len(paths)]}
		if k%5 == 0 {
			r.Access, r.Flags = ring.AccessWrite, 0o1101
		}
		if k%97 == 0 {
			r.Result = -2
		}
		recs[i] = r
	}
	return recs
}

// BenchmarkCommit measures sustained ingest: batches of 32 Ki records (the
// collector's default batch), one transaction each, into a store that
// already holds the workload's processes and files.
//
//	go test -run '^$' -bench Commit -benchtime 100x ./collector/store/
func BenchmarkCommit(b *testing.B) {
	const batch = 32 * 1024
	for _, files := range []int{16, 256, 32 * 1024} {
		for _, tc := range []struct {
			name string
			opts Options
		}{
			{"aggregates", Options{DiscardEvents: true}},
			{"aggregates+raw", Options{RetainEvents: -1}},
		} {
			b.Run(fmt.Sprintf("files=%d/%s", files, tc.name), func(b *testing.B) {
				s := mustOpen(b, b.TempDir(), tc.opts)
				batches := make([][]ring.Record, 8)
				for i := range batches {
					batches[i] = benchBatch(batch, i*batch, files)
				}
				ctx := context.Background()
				cp := Checkpoint{SourceInfo: SourceInfo{ID: 1, Kind: "ring", Path: "bench"}}
				// Warm up: processes, files and aggregates exist, as in a
				// collector that has run for a while.
				for i := range batches {
					if err := s.Commit(ctx, batches[i], cp); err != nil {
						b.Fatal(err)
					}
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					cp.Position = uint64(i+1) * batch
					if err := s.Commit(ctx, batches[i%len(batches)], cp); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkIngestShapes is the store's part of `restrack-bench -parts
// ingest` (the ring's drain aside): batches of 32 Ki records of one
// process, raw events kept at the default retention, every record a new
// path (new-pair) or the same one (repeat-pair). ns/op is per event.
//
//	go test -run '^$' -bench IngestShapes -benchtime 1000000x ./collector/store/
func BenchmarkIngestShapes(b *testing.B) {
	const batch = 32 * 1024
	for _, shape := range []string{"repeat-pair", "new-pair"} {
		b.Run(shape, func(b *testing.B) {
			s := mustOpen(b, b.TempDir(), Options{})
			ctx := context.Background()
			cp := Checkpoint{SourceInfo: SourceInfo{ID: 1, Kind: "ring", Path: "bench"}}
			recs := make([]ring.Record, batch)
			paths := make([]byte, 0, batch*48)
			b.ResetTimer()
			var cpu time.Duration
			for done := 0; done < b.N; done += batch {
				n := min(batch, b.N-done)
				b.StopTimer() // making the records is not the store's cost
				paths = paths[:0]
				for i := range n {
					k := done + i
					if shape == "repeat-pair" {
						k = 0
					}
					start := len(paths)
					paths = fmt.Appendf(paths, "/srv/app/data/dir%03d/file%09d.db", k%500, k)
					recs[i] = ring.Record{Type: ring.TypeEvent, Op: ring.OpOpen, Access: ring.AccessRead, PID: 1000, TID: 1000, PPID: 1,
						StartNs: 1, TimeNs: uint64(done + i), Result: 3, Str1: paths[start:len(paths):len(paths)]}
				}
				cp.Position = uint64(done + n)
				b.StartTimer()
				c0 := cpuTime()
				if err := s.Commit(ctx, recs[:n], cp); err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime() - c0
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/event")
		})
	}
}

// cpuTime is this process's user+sys CPU time: a loaded machine stretches
// wall time far more than CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSmallCommits is the store under a live `restrack run`: the
// collector commits whatever arrived since its last drain, often a few
// hundred records, so the commit's fixed cost (transaction, metadata rows,
// WAL frames, log writes) is what a record pays. Batches of 100, 1 k and
// 10 k records of one process re-opening a few files (openloop), and a
// build-like shape where every commit brings new processes (start, exec
// with argv, 20 opens of shared libraries and sources, exit). CPU is the
// whole process's (the checkpoint goroutine included).
//
//	go test -run '^$' -bench SmallCommits -benchtime 2000x ./collector/store/
func BenchmarkSmallCommits(b *testing.B) {
	for _, shape := range []string{"openloop", "procs"} {
		for _, batch := range []int{100, 1000, 10000} {
			if shape == "procs" && batch == 10000 {
				continue
			}
			b.Run(fmt.Sprintf("%s/batch=%d", shape, batch), func(b *testing.B) {
				s := mustOpen(b, b.TempDir(), Options{})
				ctx := context.Background()
				cp := Checkpoint{SourceInfo: SourceInfo{ID: 1, Kind: "ring", Path: "bench"}}
				libs := make([][]byte, 64)
				for i := range libs {
					libs[i] = fmt.Appendf(nil, "/usr/lib/x86_64-linux-gnu/lib%02d.so.6", i)
				}
				argv := []byte("gcc\x00-DHAVE_CONFIG_H\x00-I.\x00-Ilib\x00-g\x00-O2\x00-MT\x00src/hello.o\x00-MD\x00-MP\x00-c\x00-o\x00src/hello.o\x00src/hello.c")
				recs := make([]ring.Record, batch)
				var t uint64
				procs, pid := 0, int32(1000)
				mk := func(i int) {
					t++
					r := ring.Record{Type: ring.TypeEvent, Op: ring.OpOpenat, Access: ring.AccessRead, PID: pid, TID: pid, PPID: 1,
						StartNs: uint64(pid), TimeNs: t, Result: 3, Str1: libs[i%4]}
					if shape == "procs" {
						// 24 records per process: start, exec, 21 opens, exit.
						switch k := i % 24; k {
						case 0:
							pid++
							procs++
							r = ring.Record{Type: ring.TypeProc, Op: ring.OpProcStart, PID: pid, TID: pid, PPID: 999, StartNs: uint64(pid), TimeNs: t,
								Str1: []byte("/usr/bin/make"), Str2: []byte("/build/hello-2.12"), Str3: []byte("make\x00-j2")}
						case 1:
							r = ring.Record{Type: ring.TypeProc, Op: ring.OpProcExec, PID: pid, TID: pid, PPID: 999, StartNs: uint64(pid), TimeNs: t,
								Str1: []byte("/usr/bin/gcc"), Str2: []byte("/build/hello-2.12"), Str3: argv}
						case 23:
							r = ring.Record{Type: ring.TypeProc, Op: ring.OpProcExit, PID: pid, TID: pid, PPID: 999, StartNs: uint64(pid), TimeNs: t}
						default:
							r.StartNs, r.PPID, r.Str1 = uint64(pid), 999, libs[(k*7+int(pid))%len(libs)]
						}
					}
					recs[i] = r
				}
				for i := range recs {
					mk(i)
				}
				if err := s.Commit(ctx, recs, cp); err != nil { // warm: the files exist
					b.Fatal(err)
				}
				procs = 0
				b.ResetTimer()
				c0 := cpuTime()
				for i := 0; i < b.N; i++ {
					// No StopTimer here: it reads the memory statistics
					// (a stop-the-world) at a cost like a small commit's.
					// Making the records costs a few ns per record.
					for j := range recs {
						if shape == "procs" {
							mk(j)
						} else {
							// Time goes on: the process's row changes
							// (last_ns), as under a live trace.
							recs[j].TimeNs += uint64(batch)
						}
					}
					cp.Position += uint64(batch)
					if err := s.Commit(ctx, recs, cp); err != nil {
						b.Fatal(err)
					}
				}
				cpu := float64((cpuTime() - c0).Nanoseconds())
				b.ReportMetric(cpu/float64(b.N), "cpu-ns/commit")
				b.ReportMetric(cpu/float64(b.N*batch), "cpu-ns/record")
				if procs > 0 {
					b.ReportMetric(cpu/float64(procs), "cpu-ns/proc")
				}
			})
		}
	}
}
