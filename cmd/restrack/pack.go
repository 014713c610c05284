package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/restrack/restrack/action/pack"
	"github.com/restrack/restrack/planner"
)

func init() {
	register("pack", "write an AP's plan into one archive: its files and a manifest", func(args []string) int {
		return runPack(args, os.Stdout, os.Stderr)
	})
}

func runPack(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restrack pack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var pf planFlags
	pf.register(fs)
	out := fs.String("o", "", "write the archive to `FILE` (tar compressed with zstd; required)")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object on stdout")
	noFreeze := fs.Bool("no-freeze", false, "read the files while the live moving processes keep running\n(changes are detected, read again and reported)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: restrack pack [--store DIR] --ap PID -o FILE [--json] [flags]\n\n"+
			"Writes every file of AP PID's migration plan into one archive, with manifest.json:\n"+
			"the plan, each moving process's exe, argv, cwd and ids, each file's checksum.\n"+
			"Files the moving APs write are read while their live processes are frozen.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if code, ok := parseNoArgs(fs, args); !ok {
		return code
	}
	if *out == "" {
		fmt.Fprintln(stderr, "restrack pack: -o FILE is required: where to write the archive")
		return 2
	}
	tr, pl, err := pf.plan()
	if err != nil {
		fmt.Fprintf(stderr, "restrack pack: %v\n", err)
		return errorStatus(err) // 2 for a usage error: a missing or malformed --ap
	}
	pl.Enrich(planner.LocalHost{})
	if pl.Incomplete {
		fmt.Fprintf(stderr, "restrack pack: warning: the trace lost %d events: a file the AP needs may be missing from the archive\n", pl.DroppedEvents)
	}

	// The archive is written beside its final name and renamed at the
	// end: an interrupted pack never leaves a plausible-looking archive.
	tmp, err := os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".partial-*")
	if err != nil {
		fmt.Fprintf(stderr, "restrack pack: %v\n", err)
		return 1
	}
	defer os.Remove(tmp.Name())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var progress io.Writer
	if isTerminal(stderr) {
		progress = stderr
	}
	sum, err := pack.Pack(ctx, pack.Options{Plan: pl, Trace: tr, Out: tmp, Log: stderr, Progress: progress, NoFreeze: *noFreeze})
	if err == nil {
		err = tmp.Close()
	} else {
		tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), *out)
	}
	if err != nil {
		fmt.Fprintf(stderr, "restrack pack: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			return 1
		}
	} else {
		frozen := "no live process writes the files: nothing to freeze"
		if sum.Frozen != "" {
			frozen = fmt.Sprintf("read while %d live processes were frozen (%s)", len(sum.FrozenPIDs), sum.Frozen)
		} else if *noFreeze {
			frozen = "read live (--no-freeze)"
		}
		fmt.Fprintf(stdout, "%s: %d entries (%d files, %d directories, %d symlinks, %d hard links, %d FIFOs), %d copies (Model 1: the originals stay), %d IPC objects listed to recreate\n",
			*out, sum.Files, sum.Regular, sum.Directories, sum.Symlinks, sum.HardLinks, sum.FIFOs, sum.Copies, sum.Recreated)
		fmt.Fprintf(stdout, "read %s, archive %s, in %.2fs; %s\n", pack.Human(sum.ReadBytes), pack.Human(sum.ArchiveBytes), sum.Seconds, frozen)
		if len(sum.Missing) > 0 {
			fmt.Fprintf(stdout, "%d paths of the plan no longer exist and were not stored: %s\n", len(sum.Missing), strings.Join(quoteAll(sum.Missing, 5), ", "))
		}
	}
	if len(sum.Changed) > 0 {
		fmt.Fprintf(stderr, "restrack pack: %d files kept changing while they were read; their content may be torn: %s\n",
			len(sum.Changed), strings.Join(quoteAll(sum.Changed, 5), ", "))
		return 1
	}
	return 0
}

func quoteAll(paths []string, max int) []string {
	var out []string
	for i, p := range paths {
		if i == max {
			out = append(out, fmt.Sprintf("and %d more", len(paths)-max))
			break
		}
		out = append(out, fmt.Sprintf("%q", p)[1:len(fmt.Sprintf("%q", p))-1])
	}
	return out
}
