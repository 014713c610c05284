package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/internal/usock"
	"github.com/restrack/restrack/ring"
)

// DaemonConfig is everything the long-running collector needs.
type DaemonConfig struct {
	// Rendezvous is the socket where traced processes of every uid get
	// their uid's ring (docs/collector.md, "Rendezvous"); "" = none.
	Rendezvous    string
	RingDir       string        // the per-uid rings of the rendezvous
	Ring          string        // an explicit ring file (RESTRACK_RING); created if missing, resumed if present; "" = none
	RingSize      uint64        // data size of a ring this daemon creates
	DrainInterval time.Duration // 0 = DefaultDrainInterval
	Store         string        // store directory
	StoreOptions  store.Options
	Socket        string // unix socket for status and plan queries; "" = none
	MetricsAddr   string // host:port serving /metrics; "" = none
	Logf          func(format string, args ...any)
	// Handlers are extra socket commands (planner/serve's "plan" and
	// "explain"), made from the store the daemon writes.
	Handlers map[string]func(*store.Store) usock.Handler
	// Ready, when set, is called once the collector is draining.
	Ready func(*Collector)
	// Metrics are extra metrics served beside the collector's (the fleet
	// publisher's).
	Metrics []prometheus.Collector
}

// OpenOrCreateRing opens the ring at path, creating it (owner-only) with
// size bytes of slots when it does not exist. An existing ring of another
// ABI or a file that is not a ring is an error and is left in place: it may
// hold records of a running workload.
func OpenOrCreateRing(path string, size uint64) (*RingSource, bool, error) {
	created := false
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := ring.Create(path, ring.Config{DataSize: size}); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, false, err
		} else if err == nil {
			created = true
		}
	}
	src, err := OpenRing(path, ring.Options{})
	if err != nil {
		return nil, false, explainRingError(path, err)
	}
	return src, created, nil
}

func explainRingError(path string, err error) error {
	var abi *ring.ABIError
	switch {
	case errors.As(err, &abi):
		return err // already says what to do
	case errors.Is(err, ring.ErrBadMagic):
		return fmt.Errorf("%w: %s is not a restrack ring; not touching it: remove it or choose another -ring path", err, path)
	}
	var se *ring.SizeError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: %s is not a usable restrack ring; not touching it: remove it or choose another -ring path", err, path)
	}
	return err
}

// addExplicitRing drains a ring named by path (the shim's RESTRACK_RING)
// beside the rendezvous rings; its records are attributed to the file's
// owner, the only uid that can open it.
func addExplicitRing(ms *MultiSource, path string, size uint64) error {
	rs, _, err := OpenOrCreateRing(path, size)
	if err != nil {
		return err
	}
	rs.Close()
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	owner := uint32(os.Geteuid())
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		owner = st.Uid
	}
	return ms.AddRing(owner, path)
}

// RunDaemon runs a collector with its socket and metrics until ctx is done,
// then drains a last time and closes everything. The ring stays: producers
// keep it mapped, and the next collector resumes from it.
func RunDaemon(ctx context.Context, cfg DaemonConfig) (err error) {
	st, err := store.Open(cfg.Store, cfg.StoreOptions)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); err == nil {
			err = cerr
		}
	}()
	if cfg.Logf == nil {
		cfg.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "collector: "+format+"\n", args...) }
	}
	sctx, stopServers := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		stopServers()
		wg.Wait()
	}()

	var src Source
	var rv *Rendezvous
	if cfg.Rendezvous != "" {
		ms := NewMultiSource(func(id uint64) (uint64, bool, error) { return st.Resume(context.Background(), id) }, cfg.Logf)
		defer ms.Close()
		src = ms
		if cfg.Ring != "" {
			if err := addExplicitRing(ms, cfg.Ring, cfg.RingSize); err != nil {
				return err
			}
		}
		if rv, err = ListenRendezvous(RendezvousConfig{Socket: cfg.Rendezvous, RingDir: cfg.RingDir,
			RingSize: cfg.RingSize, Logf: cfg.Logf, NewRing: ms.AddRing}); err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = rv.Serve(sctx)
			for _, w := range rv.UntracedWarnings() {
				cfg.Logf("%s", w)
			}
		}()
	} else {
		if cfg.Ring == "" {
			return errors.New("nothing to drain: give a rendezvous socket or a ring")
		}
		rs, created, err := OpenOrCreateRing(cfg.Ring, cfg.RingSize)
		if err != nil {
			return err
		}
		defer rs.Close()
		src = rs
		if !created && cfg.RingSize != 0 && rs.Counters().SizeBytes != cfg.RingSize {
			cfg.Logf("ring %s exists with %d bytes of slots; using it as it is (-ring-size %d applies to a new ring)",
				cfg.Ring, rs.Counters().SizeBytes, cfg.RingSize)
		}
	}
	c := New(src, st, Config{DrainInterval: cfg.DrainInterval, Logf: cfg.Logf})
	if cfg.Socket != "" {
		srv, err := usock.Listen(cfg.Socket)
		if err != nil {
			return err
		}
		srv.Handle("status", func(ctx context.Context, _ json.RawMessage) (any, error) { return c.Status(ctx), nil })
		if rv != nil {
			srv.Handle("rendezvous", func(context.Context, json.RawMessage) (any, error) { return rv.Stats(), nil })
		}
		for name, mk := range cfg.Handlers {
			srv.Handle(name, mk(st))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(sctx); err != nil {
				c.cfg.Logf("%v", err)
			}
		}()
	}
	if cfg.MetricsAddr != "" {
		reg := c.Registry()
		reg.MustRegister(cfg.Metrics...)
		errc := make(chan error, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- ServeMetrics(sctx, cfg.MetricsAddr, reg)
		}()
		// A taken port shows at once; report it rather than run half-blind.
		select {
		case err := <-errc:
			if err != nil {
				return err
			}
		case <-time.After(50 * time.Millisecond):
		}
	}
	if cfg.Ready != nil {
		cfg.Ready(c)
	}
	return c.Run(ctx)
}
