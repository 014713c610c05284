// Command collector is restrack's long-running daemon: it creates (or
// resumes) the shared-memory ring, drains it in bulk into the store, and
// serves status over a unix socket and Prometheus metrics. docs/collector.md
// describes the flags, the metrics and the socket protocol.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/restrack/restrack/collector"
	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/fleet"
	"github.com/restrack/restrack/internal/version"
	"github.com/restrack/restrack/planner/serve"
	"github.com/restrack/restrack/ring"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("collector", flag.ContinueOnError)
	defSocket := os.Getenv(collector.EnvSocket)
	if defSocket == "" {
		defSocket = collector.DefaultRendezvousSocket
	}
	rendezvous := fs.String("rendezvous", defSocket, "socket where traced processes of every uid get their uid's ring (default $"+collector.EnvSocket+", else the shim's well-known path); \"none\" disables")
	ringDir := fs.String("ring-dir", "/run/restrack/rings", "directory of the per-uid rings (created 0700; they outlive the collector and are resumed)")
	ringPath := fs.String("ring", "", "an explicit ring file as well, for processes started with RESTRACK_RING=PATH (created owner-only if missing, resumed if present)")
	ringSize := fs.Uint64("ring-size", ring.DefaultDataSize, "bytes of record slots in a new ring: a power of two, 64 KiB to 4 GiB")
	interval := fs.Duration("drain-interval", collector.DefaultDrainInterval, "drain at least this often (sooner past the ring's high-water mark)")
	storeDir := fs.String("store", "restrack-data", "store directory")
	socket := fs.String("socket", "", "unix socket for status and plan queries (default STORE/collector.sock; \"none\" disables)")
	metrics := fs.String("metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464); empty disables")
	publish := fs.String("publish", "", "publish this host's aggregated accesses to the PostgreSQL `DSN` (docs/fleet.md)")
	hostID := fs.String("host-id", "", "this host's `NAME` in the fleet database (default: /etc/machine-id)")
	publishEvery := fs.Duration("publish-interval", fleet.DefaultInterval, "publish at most this often")
	retain := fs.Int64("retain-events", store.DefaultRetainEvents, "raw events kept (newest); 0 keeps none, -1 all; aggregates are always kept")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: collector [flags]\n\nDrains the restrack ring into the store until SIGTERM or SIGINT.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // help is what was asked for
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "collector: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *showVersion {
		fmt.Printf("collector %s\n", version.String())
		return 0
	}
	if *interval <= 0 {
		fmt.Fprintf(os.Stderr, "collector: -drain-interval must be positive, got %v\n", *interval)
		return 2
	}
	if s := *ringSize; s < ring.MinDataSize || s > ring.MaxDataSize || s&(s-1) != 0 {
		fmt.Fprintf(os.Stderr, "collector: -ring-size %d is not a power of two between %d and %d\n", s, ring.MinDataSize, ring.MaxDataSize)
		return 2
	}
	if *rendezvous == "none" {
		*rendezvous = ""
	}
	if *rendezvous == "" && *ringPath == "" {
		fmt.Fprintf(os.Stderr, "collector: -rendezvous none needs -ring PATH: there would be nothing to drain\n")
		return 2
	}
	if *socket == "" {
		*socket = filepath.Join(*storeDir, "collector.sock")
	} else if *socket == "none" {
		*socket = ""
	}
	pub, err := newPublisher(*publish, *hostID, *storeDir, *publishEvery)
	if err != nil {
		fmt.Fprintf(os.Stderr, "collector: %v\n", err)
		return 2
	}
	opts := store.Options{RetainEvents: *retain}
	if *retain == 0 {
		opts.DiscardEvents = true
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var pubMetrics []prometheus.Collector
	var waitPublisher func()
	if pub != nil {
		pubMetrics = pub.Metrics()
	}
	err = collector.RunDaemon(ctx, collector.DaemonConfig{
		Rendezvous: *rendezvous, RingDir: *ringDir,
		Ring: *ringPath, RingSize: *ringSize, DrainInterval: *interval,
		Store: *storeDir, StoreOptions: opts, Socket: *socket, MetricsAddr: *metrics,
		Handlers: serve.Handlers(), // plan and explain, answered from the store being written
		Metrics:  pubMetrics,
		Ready: func(c *collector.Collector) {
			what := *ringPath
			if *rendezvous != "" {
				what = "the rings of every uid (rendezvous at " + *rendezvous + ")"
				if *ringPath != "" {
					what += " and " + *ringPath
				}
			}
			fmt.Fprintf(os.Stderr, "collector: draining %s into %s every %v\n", what, *storeDir, *interval)
			if pub != nil {
				fmt.Fprintf(os.Stderr, "collector: publishing to %s as host %s every %v\n", fleet.RedactDSN(*publish), pub.Status().HostID, *publishEvery)
				waitPublisher = runPublisher(ctx, pub, *storeDir)
			}
		},
	})
	stop()
	if waitPublisher != nil {
		waitPublisher()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "collector: %v\n", err)
		return 1
	}
	return 0
}
