// Command restrack-fleetbench measures the fleet database (docs/fleet.md):
// N simulated hosts, each with A aggregated accesses, published into one
// PostgreSQL (the publish throughput), then one plan computed from the
// fleet database side by side with the same plan from one local store of
// the same size. `make bench-fleet` runs it; it starts its own PostgreSQL.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/fleet"
	"github.com/restrack/restrack/internal/pgtest"
	"github.com/restrack/restrack/planner"
	"github.com/restrack/restrack/ring"
	"github.com/restrack/restrack/trace"
)

func main() { os.Exit(run(os.Args[1:])) }

// Shape of a simulated host: applications of ten processes (a root and
// nine children); most accesses go to the application's own files, one in
// ten to a file of the shared export every host mounts at /mnt/shared.
const (
	procsPerApp  = 10
	sharedFiles  = 1000
	localPerApp  = 200
	sharedMount  = "/mnt/shared"
	sharedSource = "nfs1:/export"
)

type access struct {
	proc, file int
	shared     bool
	write      bool
}

type host struct {
	name     string
	procs    int
	accesses []access
}

func genHost(i, nAccesses int) host {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	h := host{name: fmt.Sprintf("host%03d", i), procs: max(procsPerApp, nAccesses/100)}
	seen := map[access]bool{}
	for len(h.accesses) < nAccesses {
		a := access{proc: r.IntN(h.procs)}
		if r.IntN(10) == 0 {
			a.shared, a.file, a.write = true, r.IntN(sharedFiles), r.IntN(50) == 0
		} else {
			a.file, a.write = r.IntN(localPerApp), r.IntN(10) == 0
		}
		k := a
		k.write = false
		if seen[k] {
			continue
		}
		seen[k] = true
		h.accesses = append(h.accesses, a)
	}
	return h
}

func (h host) pid(p int) int32 { return int32(1000 + p) }
func (h host) ppid(p int) int32 {
	if p%procsPerApp == 0 {
		return 1
	}
	return h.pid(p - p%procsPerApp)
}

// path is the file as the host's processes name it; prefix makes local
// files distinct per host in the one-store comparison (where they are
// "//HOST/…" in the fleet).
func (h host) path(a access, prefix string) string {
	if a.shared {
		return fmt.Sprintf("%s/data/f%d", sharedMount, a.file)
	}
	return fmt.Sprintf("%s/srv/app%d/f%d", prefix, a.proc/procsPerApp, a.file)
}

func (h host) trace() *trace.Trace {
	tr := &trace.Trace{}
	for p := 0; p < h.procs; p++ {
		k := trace.ProcKey{PID: h.pid(p), StartNs: uint64(p+1) * 1000}
		pr := trace.Process{Key: k, PPID: h.ppid(p), Exe: "/usr/local/bin/app", Argv: []string{"app", fmt.Sprint(p / procsPerApp)}}
		if p%procsPerApp != 0 {
			pr.Parent = trace.ProcKey{PID: h.ppid(p), StartNs: uint64(p-p%procsPerApp+1) * 1000}
		}
		tr.Processes = append(tr.Processes, pr)
	}
	for _, a := range h.accesses {
		tr.Accesses = append(tr.Accesses, trace.Access{Proc: tr.Processes[a.proc].Key, Path: h.path(a, ""), Op: "openat",
			Write: a.write, Count: 1, FirstNs: 5000, LastNs: 5000})
	}
	return tr
}

type stats struct{ mean, median time.Duration }

func summarize(ds []time.Duration) stats {
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stats{sum / time.Duration(len(s)), med}
}

func run(args []string) int {
	fs := flag.NewFlagSet("restrack-fleetbench", flag.ContinueOnError)
	nHosts := fs.Int("hosts", 100, "simulated hosts")
	nAcc := fs.Int("accesses", 20000, "aggregated accesses per host")
	reps := fs.Int("reps", 3, "repetitions of each plan")
	quick := fs.Bool("quick", false, "5 hosts × 2000 accesses, 3 repetitions (a smoke run; asserts nothing about speed)")
	dsn := fs.String("dsn", "", "use this PostgreSQL (its database must be empty of restrack data) instead of starting one")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *quick {
		*nHosts, *nAcc, *reps = 5, 2000, 3
	}
	if *nHosts < 1 || *nAcc < 1 || *reps < 1 {
		fmt.Fprintln(os.Stderr, "restrack-fleetbench: -hosts, -accesses and -reps must be positive")
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "restrack-fleetbench: %v\n", err)
		return 1
	}
	if *dsn == "" {
		srv, err := pgtest.StartServer()
		if err != nil {
			return fail(fmt.Errorf("%w (install postgresql: scripts/setup-debian.sh, or give -dsn)", err))
		}
		defer srv.Close()
		*dsn = srv.DSN()
	}
	work, err := os.MkdirTemp("", "restrack-fleetbench-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(work)
	ctx := context.Background()
	load, _ := exec.Command("uptime").Output()
	fmt.Printf("fleet benchmark: %d hosts × %d aggregated accesses = %d (machine shared; uptime: %s)\n",
		*nHosts, *nAcc, *nHosts**nAcc, strings.TrimSpace(string(load)))

	mounts := func() (fleet.Mounts, error) {
		return fleet.Mounts{{Root: "/", MountPoint: sharedMount, FSType: "nfs4", Source: sharedSource}}, nil
	}
	hosts := make([]host, *nHosts)
	var perHost []time.Duration
	var total time.Duration
	for i := range hosts {
		hosts[i] = genHost(i, *nAcc)
		dir := filepath.Join(work, hosts[i].name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fail(err)
		}
		p, err := fleet.NewPublisher(fleet.Config{DSN: *dsn, HostID: hosts[i].name, StoreDir: dir, Mounts: mounts})
		if err != nil {
			return fail(err)
		}
		tr := hosts[i].trace()
		t0 := time.Now()
		if _, err := p.Publish(ctx, tr); err != nil {
			return fail(err)
		}
		d := time.Since(t0)
		perHost = append(perHost, d)
		total += d
	}
	ph := summarize(perHost)
	perSec := func(d time.Duration) float64 { return float64(*nAcc) / d.Seconds() }
	fmt.Printf("publish: %d accesses in %.1f s: %.0f accesses/s overall (one publisher at a time)\n",
		*nHosts**nAcc, total.Seconds(), float64(*nHosts**nAcc)/total.Seconds())
	fmt.Printf("  per host (%d accesses, %d processes, its files): mean %.3f s (%.0f accesses/s), median %.3f s (%.0f accesses/s)\n",
		*nAcc, hosts[0].procs, ph.mean.Seconds(), perSec(ph.mean), ph.median.Seconds(), perSec(ph.median))

	// The same fleet as one local store: every host's processes under
	// distinct pids, local files under a per-host prefix.
	storeDir := filepath.Join(work, "one-store")
	if err := buildStore(storeDir, hosts); err != nil {
		return fail(err)
	}
	ap := fmt.Sprintf("%s:%d", hosts[0].name, hosts[0].pid(0))
	var fleetTimes, localTimes []time.Duration
	var fleetAPs, localAPs int
	for r := 0; r < *reps; r++ {
		t0 := time.Now()
		rules := planner.NewRules(true)
		ld, err := fleet.Load(ctx, *dsn, fleet.LoadOptions{AP: ap, Ignored: rules.Ignored})
		if err != nil {
			return fail(err)
		}
		pl, err := planner.Compute(ld.Trace, planner.Options{AP: ld.AP, Rules: rules})
		if err != nil {
			return fail(err)
		}
		fleetTimes = append(fleetTimes, time.Since(t0))
		fleetAPs = len(pl.APs)

		t0 = time.Now()
		s, err := store.Open(storeDir, store.Options{ReadOnly: true})
		if err != nil {
			return fail(err)
		}
		tr, err := s.Trace(ctx)
		s.Close()
		if err != nil {
			return fail(err)
		}
		key, err := planner.Resolve(tr, fmt.Sprint(hosts[0].pid(0)))
		if err != nil {
			return fail(err)
		}
		lp, err := planner.Compute(tr, planner.Options{AP: key})
		if err != nil {
			return fail(err)
		}
		localTimes = append(localTimes, time.Since(t0))
		localAPs = len(lp.APs)
	}
	fs2, ls := summarize(fleetTimes), summarize(localTimes)
	fmt.Printf("plan of %s (%d runs; reads, builds the trace, plans):\n", ap, *reps)
	fmt.Printf("  from the fleet database: mean %.3f s, median %.3f s (%d APs move)\n", fs2.mean.Seconds(), fs2.median.Seconds(), fleetAPs)
	fmt.Printf("  from one local store:    mean %.3f s, median %.3f s (%d APs move)\n", ls.mean.Seconds(), ls.median.Seconds(), localAPs)
	fmt.Printf("  fleet / local: %.2f× (mean), %.2f× (median)\n", fs2.mean.Seconds()/ls.mean.Seconds(), fs2.median.Seconds()/ls.median.Seconds())
	if fleetAPs != localAPs {
		return fail(fmt.Errorf("the fleet plan moves %d APs, the local one %d: they should be the same plan", fleetAPs, localAPs))
	}
	return 0
}

// buildStore writes every host's trace into one SQLite store: pids made
// unique across hosts, local paths under /HOST.
func buildStore(dir string, hosts []host) error {
	s, err := store.Open(dir, store.Options{DiscardEvents: true})
	if err != nil {
		return err
	}
	defer s.Close()
	var recs []ring.Record
	pos := uint64(0)
	flush := func() error {
		pos += uint64(len(recs))
		err := s.Commit(context.Background(), recs, store.Checkpoint{
			SourceInfo: store.SourceInfo{ID: 1, Kind: "ring", Path: "fleetbench"}, Position: pos})
		recs = recs[:0]
		return err
	}
	for hi, h := range hosts {
		pid := func(p int) int32 { return int32(hi*h.procs) + h.pid(p) }
		for p := 0; p < h.procs; p++ {
			ppid := int32(1)
			if p%procsPerApp != 0 {
				ppid = pid(p - p%procsPerApp)
			}
			recs = append(recs, ring.Record{Type: ring.TypeProc, Op: ring.OpProcStart, PID: pid(p), PPID: ppid,
				StartNs: uint64(p+1) * 1000, TimeNs: uint64(p+1) * 1000, Str1: []byte("/usr/local/bin/app"), Str2: []byte("/"),
				Str3: []byte("app")})
		}
		for _, a := range h.accesses {
			acc := uint8(ring.AccessRead)
			if a.write {
				acc = ring.AccessWrite
			}
			recs = append(recs, ring.Record{Type: ring.TypeEvent, Op: ring.OpOpenat, Access: acc, PID: pid(a.proc), TID: pid(a.proc),
				StartNs: uint64(a.proc+1) * 1000, TimeNs: 5000, Result: 3, Str1: []byte(h.path(a, "/"+h.name))})
			if len(recs) >= 50_000 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}
