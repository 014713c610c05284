package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/internal/usock"
	"github.com/restrack/restrack/ring"
)

// DaemonConfig is everything the long-running collector needs.
type DaemonConfig struct {
	Ring          string        // ring file; created if missing, resumed if present
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
	src, created, err := OpenOrCreateRing(cfg.Ring, cfg.RingSize)
	if err != nil {
		return err
	}
	defer src.Close()
	c := New(src, st, Config{DrainInterval: cfg.DrainInterval, Logf: cfg.Logf})
	if !created && cfg.RingSize != 0 && src.Counters().SizeBytes != cfg.RingSize {
		c.cfg.Logf("ring %s exists with %d bytes of slots; using it as it is (-ring-size %d applies to a new ring)",
			cfg.Ring, src.Counters().SizeBytes, cfg.RingSize)
	}

	sctx, stopServers := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		stopServers()
		wg.Wait()
	}()
	if cfg.Socket != "" {
		srv, err := usock.Listen(cfg.Socket)
		if err != nil {
			return err
		}
		srv.Handle("status", func(ctx context.Context, _ json.RawMessage) (any, error) { return c.Status(ctx), nil })
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
