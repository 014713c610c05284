package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/fleet"
)

func init() {
	register("publish", "push a store's aggregated accesses to the fleet database (PostgreSQL)", func(args []string) int {
		return runPublish(args, os.Stdout, os.Stderr)
	})
}

// publishFlags are the flags run and publish share.
type publishFlags struct {
	dsn     string
	hostID  string
	timeout time.Duration
}

func (f *publishFlags) register(fs *flag.FlagSet, dsnUsage string) {
	fs.StringVar(&f.dsn, "publish", "", dsnUsage)
	fs.StringVar(&f.hostID, "host-id", "", "this host's `NAME` in the fleet database (default: /etc/machine-id)")
	fs.DurationVar(&f.timeout, "publish-timeout", time.Minute, "give up publishing after this long (the trace stays in the store)")
}

// publisher validates the flags; nil when nothing is to be published.
func (f *publishFlags) publisher(storeDir string) (*fleet.Publisher, error) {
	if f.dsn == "" {
		if f.hostID != "" {
			return nil, fmt.Errorf("--host-id names this host in the fleet database: it needs --publish DSN")
		}
		return nil, nil
	}
	host, err := fleet.HostID(f.hostID)
	if err != nil {
		return nil, err
	}
	return fleet.NewPublisher(fleet.Config{DSN: f.dsn, HostID: host, StoreDir: storeDir, Timeout: f.timeout})
}

// publishStore pushes everything the store holds that the fleet database
// does not, and says what it did.
func publishStore(p *fleet.Publisher, st *store.Store, timeout time.Duration, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tr, err := st.Trace(ctx)
	if err != nil {
		return err
	}
	res, err := p.Publish(ctx, tr)
	if err != nil {
		return fmt.Errorf("%w; %d rows wait in %s: `restrack publish --store %s --publish DSN --host-id %s` pushes them",
			err, res.Pending, st.Dir(), st.Dir(), p.Status().HostID)
	}
	fmt.Fprintf(stderr, "restrack: published %d changed rows to %s as host %s\n", res.Pushed, p.Status().Database, p.Status().HostID)
	return nil
}

func runPublish(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restrack publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	storeDir := fs.String("store", "./restrack-data", "store `DIR` to publish")
	var pf publishFlags
	pf.register(fs, "the PostgreSQL `DSN` to publish to (required)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: restrack publish [--store DIR] --publish DSN [--host-id NAME]\n\n"+
			"Pushes what the store holds and the fleet database does not yet (aggregated\n"+
			"accesses, processes, files; never raw events), then exits. docs/fleet.md.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if code, ok := parseNoArgs(fs, args); !ok {
		return code
	}
	if pf.dsn == "" {
		fmt.Fprintln(stderr, "restrack publish: --publish DSN is required")
		return 2
	}
	p, err := pf.publisher(*storeDir)
	if err != nil {
		fmt.Fprintf(stderr, "restrack publish: %v\n", err)
		return 2
	}
	st, err := store.Open(*storeDir, store.Options{ReadOnly: true})
	if err != nil {
		fmt.Fprintf(stderr, "restrack publish: %v\n", err)
		return 1
	}
	defer st.Close()
	if err := publishStore(p, st, pf.timeout, stderr); err != nil {
		fmt.Fprintf(stderr, "restrack publish: %v\n", err)
		return 1
	}
	return 0
}

// fleetStatus adds the publisher's state, when the store was ever
// published, to restrack status: the JSON object gains "fleet", the text
// its lines. The lag is how long the oldest unpublished change has waited.
func fleetStatus(storeDir string, v any, lines []kv) (any, []kv) {
	st, ok, err := fleet.ReadStatus(storeDir)
	if err != nil {
		return v, append(lines, kv{"fleet", err.Error()})
	}
	if !ok {
		return v, lines
	}
	b, err := json.Marshal(v)
	m := map[string]any{}
	if err == nil && json.Unmarshal(b, &m) == nil {
		m["fleet"] = st
		v = m
	}
	state := "up to date"
	switch {
	case st.Refused:
		state = "REFUSED: " + st.LastError
	case st.LastError != "":
		state = fmt.Sprintf("FAILING (%d rows wait, lag %s): %s", st.Pending, st.Lag(time.Now()).Round(time.Second), st.LastError)
	case st.Pending > 0:
		state = fmt.Sprintf("%d rows wait, lag %s", st.Pending, st.Lag(time.Now()).Round(time.Second))
	}
	last := "never"
	if !st.LastSuccess.IsZero() {
		last = st.LastSuccess.UTC().Format(time.RFC3339) + fmt.Sprintf(" (%s ago)", time.Since(st.LastSuccess).Round(time.Second))
	}
	return v, append(lines, kv{"fleet", fmt.Sprintf("host %s → %s: %s", st.HostID, st.Database, state)},
		kv{"  last published", last})
}
