package planner_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/planner"
	"github.com/restrack/restrack/ring"
)

// mustBigStore writes a store holding procs processes and accesses distinct
// aggregated accesses (one event each) over files paths, shaped like
// genTrace's: applications of ten processes, mostly private files.
func mustBigStore(b *testing.B, procs, files, accesses int) string {
	b.Helper()
	dir := b.TempDir()
	s, err := store.Open(dir, store.Options{DiscardEvents: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := rand.New(rand.NewPCG(3, 3))
	var recs []ring.Record
	pos := uint64(0)
	flush := func() {
		pos += uint64(len(recs))
		if err := s.Commit(context.Background(), recs, store.Checkpoint{
			SourceInfo: store.SourceInfo{ID: 1, Kind: "ring", Path: "bench"}, Position: pos}); err != nil {
			b.Fatal(err)
		}
		recs = recs[:0]
	}
	for i := range procs {
		ppid := int32(1)
		if i%10 != 0 {
			ppid = int32(1000 + i - 1 - r.IntN(i%10))
		}
		exe := "/usr/local/bin/app" + strconv.Itoa(i/10)
		recs = append(recs, ring.Record{Type: ring.TypeProc, Op: ring.OpProcStart, PID: int32(1000 + i), PPID: ppid,
			StartNs: uint64(i) * 1000, TimeNs: uint64(i) * 1000, Str1: []byte(exe), Str2: []byte("/"), Str3: []byte(exe)})
	}
	flush()
	apps := max(1, procs/10)
	perApp := max(1, files/apps)
	seen := map[[2]int]bool{}
	for len(seen) < accesses {
		proc := r.IntN(procs)
		file := min(files-1, proc/10*perApp+r.IntN(perApp))
		if r.IntN(10) == 0 {
			file = r.IntN(max(1, files/100))
		}
		if seen[[2]int{proc, file}] {
			continue
		}
		seen[[2]int{proc, file}] = true
		access := uint8(ring.AccessRead)
		if r.IntN(5) == 0 {
			access = ring.AccessWrite
		}
		recs = append(recs, ring.Record{Type: ring.TypeEvent, Op: ring.OpOpenat, Access: access, PID: int32(1000 + proc),
			TID: int32(1000 + proc), StartNs: uint64(proc) * 1000, TimeNs: uint64(procs+len(seen)) * 1000, Result: 3,
			Str1: fmt.Appendf(nil, "/srv/app%d/data/file%d", file%apps, file)})
		if len(recs) == 50_000 {
			flush()
		}
	}
	flush()
	return dir
}

// BenchmarkPlanFromStore is `restrack plan` without the printing: open the
// store read-only, load the aggregated trace, plan. The store's load is
// most of it. RESTRACK_BENCH_STORE=1 enables it (building the 1M-access
// store takes a minute).
func BenchmarkPlanFromStore(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run("accesses="+strconv.Itoa(n), func(b *testing.B) {
			if n > 100_000 && !bigBench() {
				b.Skip("RESTRACK_BENCH_STORE=1 builds the 1M-access store (about a minute)")
			}
			dir := mustBigStore(b, n/100, n/10, n)
			b.ResetTimer()
			for b.Loop() {
				s, err := store.Open(dir, store.Options{ReadOnly: true})
				if err != nil {
					b.Fatal(err)
				}
				tr, err := s.Trace(context.Background())
				s.Close()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := planner.Compute(tr, planner.Options{AP: tr.Processes[1].Key}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func bigBench() bool { return os.Getenv("RESTRACK_BENCH_STORE") == "1" }
