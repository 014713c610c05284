package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/restrack/restrack/collector"
	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/internal/usock"
)

func init() {
	register("status", "the collector's counters, including dropped", func(args []string) int {
		return runStatus(args, os.Stdout, os.Stderr)
	})
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restrack status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	storeDir := fs.String("store", "./restrack-data", "store `DIR`: asks the collector serving it (DIR/collector.sock), else reads the store")
	socket := fs.String("socket", "", "ask the collector listening on `PATH`")
	asJSON := fs.Bool("json", false, "one JSON object")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: restrack status [--store DIR | --socket PATH] [--json]\n\n")
		fs.PrintDefaults()
	}
	if code, ok := parseNoArgs(fs, args); !ok {
		return code
	}
	storeSet := false
	fs.Visit(func(f *flag.Flag) { storeSet = storeSet || f.Name == "store" })
	if storeSet && *socket != "" {
		fmt.Fprintf(stderr, "restrack status: give --store or --socket, not both\n")
		return 2
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sock := *socket
	if sock == "" {
		sock = filepath.Join(*storeDir, "collector.sock")
	}
	var live collector.Status
	err := usock.Query(ctx, sock, "status", nil, &live)
	switch {
	case err == nil:
		dir := *storeDir
		if live.Store != nil {
			dir = live.Store.Dir
		}
		v, lines := fleetStatus(dir, live, statusLines(live))
		return printStatus(stdout, stderr, *asJSON, v, lines)
	case *socket != "":
		fmt.Fprintf(stderr, "restrack status: %v\n", err)
		return 1
	}
	// No collector serves the store: report what it holds.
	st, err := store.Open(*storeDir, store.Options{ReadOnly: true})
	if err != nil {
		fmt.Fprintf(stderr, "restrack status: %v\n", err)
		if errors.Is(err, store.ErrNoStore) {
			return 1
		}
		return 1
	}
	defer st.Close()
	stats, err := st.Stats(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "restrack status: %v\n", err)
		return 1
	}
	v, lines := fleetStatus(*storeDir, stats, storeLines(stats, "no collector running; from the store"))
	return printStatus(stdout, stderr, *asJSON, v, lines)
}

type kv struct {
	k string
	v any
}

func statusLines(s collector.Status) []kv {
	lines := []kv{
		{"collector", fmt.Sprintf("pid %d, up %s, draining %s %s every %s", s.PID,
			(time.Duration(s.UptimeSeconds) * time.Second).String(), s.Source, s.Path, s.DrainInterval)},
		{"records", s.Records}, {"bytes", s.Bytes}, {"drains", s.Drains}, {"commit errors", s.CommitErrors},
		{"ring used", fmt.Sprintf("%d of %d bytes", s.RingUsedBytes, s.RingSizeBytes)},
		{"full waits", s.FullWaits},
		{"dropped", s.Dropped},
		{"  ring full", s.DroppedFull}, {"  too big", s.DroppedTooBig},
		{"  abandoned", s.Abandoned}, {"  corrupted", s.Corrupted},
		{"shim errors", s.ProducerErrors},
		{"  path too long", s.UnresolvedTooLong}, {"  sandboxed", s.UnresolvedSandboxed},
		{"  base unknown", s.UnresolvedBaseUnknown},
	}
	if s.Store != nil {
		lines = append(lines, storeLines(*s.Store, "")[1:]...)
	}
	return lines
}

func storeLines(s store.Stats, note string) []kv {
	lines := []kv{{"collector", note},
		{"store", s.Dir}, {"stored records", s.Records}, {"processes", s.Processes}, {"files", s.Files},
		{"accesses", fmt.Sprintf("%d in the SQL table (+%d logged since: restrack sql)", s.Accesses, s.AccessDeltas)}, {"raw events kept", s.EventsRetained}}
	if note != "" {
		lines = append(lines, kv{"dropped", s.Dropped}, kv{"  ring full", s.DroppedFull}, kv{"  too big", s.DroppedTooBig},
			kv{"  abandoned", s.Abandoned}, kv{"  corrupted", s.Corrupted})
	}
	return lines
}

func printStatus(stdout, stderr io.Writer, asJSON bool, v any, lines []kv) int {
	if asJSON {
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(v); err != nil {
			fmt.Fprintf(stderr, "restrack status: %v\n", err)
			return 1
		}
		return 0
	}
	for _, l := range lines {
		fmt.Fprintf(stdout, "%-16s %v\n", l.k+":", l.v)
	}
	return 0
}
