package collector

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/ring"
)

// DefaultDrainInterval is how long records may wait in the ring before a
// drain when producers stay below the high-water mark (above it, their
// doorbell wakes the collector at once). Every drain that reads something
// is a store commit, whose fixed cost (a transaction, its WAL frames and
// file writes) is paid per drain, not per record: under `restrack run` of
// a loop of opens, draining every 10 ms cost 1.3 us of CPU per event
// against 0.6 us every 200 ms (docs/bench.md). 100 ms keeps status and
// `events --follow` current to a human's eye.
const DefaultDrainInterval = 100 * time.Millisecond

// commitRetries is how many times a failing commit is retried (one drain
// interval apart) before the collector gives up; the records stay in the
// ring, unreleased, for the next collector.
const commitRetries = 50

// Config tunes a Collector.
type Config struct {
	DrainInterval time.Duration // 0 = DefaultDrainInterval
	// Logf reports recoverable trouble (a failed commit being retried).
	// nil = standard error.
	Logf func(format string, args ...any)
}

// Collector moves records from a source into a store.
type Collector struct {
	src   Source
	st    *store.Store
	cfg   Config
	start time.Time

	// Counters of this collector's life, read concurrently by status and
	// metrics.
	records, bytes, drains, commits atomic.Uint64
	abandoned, corrupted            atomic.Uint64
	unresolved                      unresolvedCounts
	programs                        programs
	commitErrors                    atomic.Uint64
	lastBatch                       atomic.Uint64
	lastDrainNs                     atomic.Int64

	// lastFull and lastTooBig are the producer-side drop counts last
	// committed; a change alone is worth a (record-less) commit so the
	// store knows about it.
	lastFull, lastTooBig atomic.Uint64

	// foldPending: commits since the store last said it had nothing left
	// to fold (collector goroutine only).
	foldPending bool

	obsMu    sync.Mutex
	observer func(records int, drain, commit time.Duration)
}

// New makes a collector; Run starts it.
func New(src Source, st *store.Store, cfg Config) *Collector {
	if cfg.DrainInterval <= 0 {
		cfg.DrainInterval = DefaultDrainInterval
	}
	if cfg.Logf == nil {
		cfg.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "collector: "+format+"\n", args...) }
	}
	return &Collector{src: src, st: st, cfg: cfg, start: time.Now()}
}

// Source is the collector's source.
func (c *Collector) Source() Source { return c.src }

// Store is the collector's store.
func (c *Collector) Store() *store.Store { return c.st }

// Run resumes the source at the store's position, then drains until ctx is
// cancelled; it then drains once more (what was published before the
// cancellation is saved) and returns. It returns an error only when the
// store cannot take the records: they are left in the source.
func (c *Collector) Run(ctx context.Context) error {
	info := c.src.Info()
	pos, ok, err := c.st.Resume(context.Background(), info.ID)
	if err != nil {
		return err
	}
	if ok {
		if err := c.src.Resume(pos); err != nil {
			return err
		}
	}
	// A cancellation must not wait out the drain interval: a source that
	// can cut its Wait short is woken (again every millisecond, in case
	// the wake fell just before the Wait began) until Run returns.
	if w, ok := c.src.(interface{ Wake() }); ok {
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			select {
			case <-stop:
				return
			case <-ctx.Done():
			}
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				w.Wake()
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		defer func() { close(stop); <-done }()
	}
	for {
		progressed, err := c.DrainOnce()
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			// Final drain: whatever was published up to now.
			for progressed {
				if progressed, err = c.DrainOnce(); err != nil {
					return err
				}
			}
			return nil
		}
		if !progressed && c.foldPending {
			// The source is empty: fold one slice of the store's deltas
			// now, while no record waits for the writer, then look again.
			more, err := c.st.FoldSome(context.Background(), 0)
			if err != nil {
				c.cfg.Logf("%v: will retry", err)
			}
			c.foldPending = more && err == nil
			continue
		}
		if progressed {
			c.foldPending = true
		}
		if !progressed && c.src.Counters().UsedBytes > 0 {
			// Records are reserved but not yet published (or their
			// producer died): the ring may sit above the high-water mark,
			// where Wait returns at once. Sleep instead of spinning.
			sleepCtx(ctx, c.cfg.DrainInterval)
			continue
		}
		c.src.Wait(c.cfg.DrainInterval)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// DrainOnce drains and commits what the source has ready: again and again
// while a chunk comes back full, once when it says it took everything. It
// reports whether anything was read. Exported for tests and benchmarks that
// drive a collector without its loop.
func (c *Collector) DrainOnce() (bool, error) {
	progressed := false
	for {
		t0 := time.Now()
		ch, err := c.src.Next()
		if err != nil {
			return progressed, err
		}
		lost := c.src.Counters()
		changed := lost.DroppedFull != c.lastFull.Load() || lost.DroppedTooBig != c.lastTooBig.Load()
		if !ch.Progressed() && !changed {
			return progressed, nil
		}
		t1 := time.Now()
		if err := c.commit(ch, lost); err != nil {
			return progressed, err
		}
		c.src.Ack(ch)
		t2 := time.Now()
		c.lastFull.Store(lost.DroppedFull)
		c.lastTooBig.Store(lost.DroppedTooBig)
		c.drains.Add(1)
		c.records.Add(uint64(len(ch.Records)))
		c.bytes.Add(ch.Bytes)
		c.abandoned.Add(ch.Abandoned)
		c.corrupted.Add(ch.Corrupted)
		c.notePerRecord(ch.Records)
		c.lastBatch.Store(uint64(len(ch.Records)))
		c.lastDrainNs.Store(t2.UnixNano())
		c.obsMu.Lock()
		if c.observer != nil {
			c.observer(len(ch.Records), t1.Sub(t0), t2.Sub(t1))
		}
		c.obsMu.Unlock()
		if !ch.Progressed() {
			return progressed, nil
		}
		progressed = true
		if ch.Drained {
			// Whatever arrived during this commit waits for the next
			// interval: draining it at once made a steady producer's
			// collector commit a few hundred records at a time, back to
			// back (7,000 commits for 1 M opens), each paying a commit's
			// fixed cost.
			return progressed, nil
		}
	}
}

// commit stores one chunk, retrying a failing store (a full disk may be
// freed) before giving up. The chunk's records stay valid meanwhile: the
// source is not read again until the chunk is committed.
func (c *Collector) commit(ch *Chunk, lost SourceCounters) error {
	cp := store.Checkpoint{
		SourceInfo: c.src.Info(), Position: ch.End, Bytes: ch.Bytes,
		Abandoned: ch.Abandoned, Corrupted: ch.Corrupted,
		DroppedFull: lost.DroppedFull, DroppedTooBig: lost.DroppedTooBig,
	}
	var err error
	for try := 0; try < commitRetries; try++ {
		if err = c.st.Commit(context.Background(), ch.Records, cp); err == nil {
			c.commits.Add(1)
			return nil
		}
		c.commitErrors.Add(1)
		if try == 0 {
			c.cfg.Logf("%v: retrying; records stay in the ring meanwhile", err)
		}
		time.Sleep(c.cfg.DrainInterval * 10)
	}
	return fmt.Errorf("give up committing %d records: %w", len(ch.Records), err)
}

// Status is what `restrack status` shows of a running collector.
type Status struct {
	PID           int     `json:"pid"`
	Source        string  `json:"source"`
	Path          string  `json:"path"`
	SourceID      string  `json:"source_id"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	DrainInterval string  `json:"drain_interval"`

	// This collector's life.
	Records          uint64 `json:"records"`
	Bytes            uint64 `json:"bytes"`
	Drains           uint64 `json:"drains"`
	Commits          uint64 `json:"commits"`
	CommitErrors     uint64 `json:"commit_errors"`
	LastBatchRecords uint64 `json:"last_batch_records"`

	// The source's counters (cumulative since the ring was created).
	RingSizeBytes uint64 `json:"ring_size_bytes"`
	RingUsedBytes uint64 `json:"ring_used_bytes"`
	FullWaits     uint64 `json:"full_waits"`
	DroppedFull   uint64 `json:"dropped_full"`
	DroppedTooBig uint64 `json:"dropped_toobig"`
	Abandoned     uint64 `json:"abandoned"`
	Corrupted     uint64 `json:"corrupted"`
	Dropped       uint64 `json:"dropped"` // every record lost, whatever the cause, in the whole store

	// ProducerErrors counts the shim's own failures (a path it could not
	// make absolute, a process record it had to skip), from the ring
	// header; the Unresolved* counts are the records this collector read
	// whose path stayed relative, by cause.
	ProducerErrors        uint64 `json:"producer_errors"`
	UnresolvedTooLong     uint64 `json:"unresolved_too_long"`
	UnresolvedSandboxed   uint64 `json:"unresolved_sandboxed"`
	UnresolvedBaseUnknown uint64 `json:"unresolved_base_unknown"`

	Store *store.Stats `json:"store,omitempty"`
}

// Status snapshots the collector's counters and its store's.
func (c *Collector) Status(ctx context.Context) Status {
	info := c.src.Info()
	sc := c.src.Counters()
	s := Status{
		PID: os.Getpid(), Source: info.Kind, Path: info.Path, SourceID: fmt.Sprintf("%016x", info.ID),
		UptimeSeconds: time.Since(c.start).Seconds(), DrainInterval: c.cfg.DrainInterval.String(),
		Records: c.records.Load(), Bytes: c.bytes.Load(), Drains: c.drains.Load(), Commits: c.commits.Load(),
		CommitErrors: c.commitErrors.Load(), LastBatchRecords: c.lastBatch.Load(),
		RingSizeBytes: sc.SizeBytes, RingUsedBytes: sc.UsedBytes, FullWaits: sc.FullWaits,
		DroppedFull: sc.DroppedFull, DroppedTooBig: sc.DroppedTooBig,
		Abandoned: c.abandoned.Load(), Corrupted: c.corrupted.Load(),
		ProducerErrors:    sc.ProducerErrors,
		UnresolvedTooLong: c.unresolved.tooLong.Load(), UnresolvedSandboxed: c.unresolved.sandboxed.Load(),
		UnresolvedBaseUnknown: c.unresolved.other.Load(),
	}
	// The store's totals cover every source and every earlier collector;
	// the producers may have dropped more since the last commit.
	if st, err := c.st.Stats(ctx); err == nil {
		s.Store = &st
		s.Dropped = st.Dropped + since(sc.DroppedFull, c.lastFull.Load()) + since(sc.DroppedTooBig, c.lastTooBig.Load())
	} else {
		s.Dropped = sc.DroppedFull + sc.DroppedTooBig + s.Abandoned + s.Corrupted
	}
	return s
}

// since is how much a cumulative counter grew past its last committed
// value (0 when the value belongs to another source, as with a source
// multiplexing several).
func since(now, committed uint64) uint64 {
	if now < committed {
		return 0
	}
	return now - committed
}

// unresolvedCounts: records whose path (or second path) the shim could not
// make absolute, by the cause its flags name.
type unresolvedCounts struct {
	tooLong, sandboxed, other atomic.Uint64
}

// notePerRecord counts what the status reports per record (paths the shim
// could not resolve) and notes the programs executed: one pass over the
// batch, which behind a backlog no longer fits in the cache.
func (c *Collector) notePerRecord(recs []ring.Record) {
	var tooLong, sandboxed, other uint64
	for i := range recs {
		r := &recs[i]
		if r.Type != ring.TypeEvent {
			continue
		}
		if f := r.RFlags; f&(ring.RFUnresolved|ring.RFPath2Unresolved) != 0 {
			switch {
			case f&ring.RFTooLong != 0:
				tooLong++
			case f&ring.RFSandboxed != 0:
				sandboxed++
			default:
				other++
			}
		}
		if isExecOp(r.Op) && len(r.Str1) > 0 {
			c.programs.note(r)
		}
	}
	c.unresolved.tooLong.Add(tooLong)
	c.unresolved.sandboxed.Add(sandboxed)
	c.unresolved.other.Add(other)
}

// Program is a program the trace executed or spawned: what a process
// passed to an exec-family call or posix_spawn, by the first process that
// did.
type Program struct {
	PID  int32
	Path string
}

// maxPrograms bounds the distinct programs a collector remembers; more are
// counted, not kept.
const maxPrograms = 4096

// programs remembers the distinct programs the records executed, for
// `restrack run` to say which of them no preloaded shim can trace (static,
// set-id, Go): reading the whole trace back for that cost a tenth of the
// run's collector CPU on a 1.5 M-file scan.
type programs struct {
	mu    sync.Mutex
	seen  map[string]bool
	list  []Program
	extra uint64 // exec records of programs past the first maxPrograms
}

func isExecOp(op ring.Op) bool { return op >= ring.OpExecve && op <= ring.OpPosixSpawnp }

// note remembers the program of r, an exec-family or posix_spawn event.
func (p *programs) note(r *ring.Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen[string(r.Str1)] { // no allocation for the lookup
		return
	}
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	if len(p.list) < maxPrograms {
		path := string(r.Str1)
		p.seen[path] = true
		p.list = append(p.list, Program{PID: r.PID, Path: path})
	} else {
		p.extra++
	}
}

// Programs lists the distinct programs the records so far executed or
// spawned (the first 4096; more counts the exec records of the others).
func (c *Collector) Programs() (list []Program, more uint64) {
	c.programs.mu.Lock()
	defer c.programs.mu.Unlock()
	return slices.Clone(c.programs.list), c.programs.extra
}
