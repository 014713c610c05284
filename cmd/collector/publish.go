package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/fleet"
	"github.com/restrack/restrack/trace"
)

// newPublisher prepares -publish: nil when it is not asked for.
func newPublisher(dsn, hostFlag, storeDir string, interval time.Duration) (*fleet.Publisher, error) {
	if dsn == "" {
		if hostFlag != "" {
			return nil, errors.New("-host-id names this host in the fleet database: it needs -publish DSN")
		}
		return nil, nil
	}
	host, err := fleet.HostID(hostFlag)
	if err != nil {
		return nil, err
	}
	return fleet.NewPublisher(fleet.Config{DSN: dsn, HostID: host, StoreDir: storeDir, Interval: interval,
		Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, "collector: "+f+"\n", a...) }})
}

// runPublisher publishes in its own goroutine until ctx ends: it reads the
// store through its own read-only handle, so the drain never waits on it
// nor on the network. The returned function waits for it to stop.
func runPublisher(ctx context.Context, p *fleet.Publisher, storeDir string) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(ctx, func(ctx context.Context) (*trace.Trace, error) {
			s, err := store.Open(storeDir, store.Options{ReadOnly: true})
			if err != nil {
				return nil, err
			}
			defer s.Close()
			return s.Trace(ctx)
		})
	}()
	return func() { <-done }
}
