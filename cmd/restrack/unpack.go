package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/restrack/restrack/action/pack"
)

func init() {
	register("unpack", "restore a pack archive under a root directory, checking every file", func(args []string) int {
		return runUnpack(args, os.Stdout, os.Stderr)
	})
}

func runUnpack(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restrack unpack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", "", "restore every file at its absolute path under `DIR` (required; / restores in place)")
	dryRun := fs.Bool("dry-run", false, "verify the archive and list what would be done; write nothing")
	force := fs.Bool("force", false, "replace existing files that differ from the archive's")
	asJSON := fs.Bool("json", false, "print what was done as one JSON object")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: restrack unpack FILE --root DIR [--dry-run] [--force] [--json]\n\n"+
			"Verifies every checksum of a restrack pack archive, then restores each file at\n"+
			"its absolute path under DIR. A different existing file is a conflict: nothing is\n"+
			"written unless --force. Exit status 1 on conflicts or errors.\n\nflags:\n")
		fs.PrintDefaults()
	}
	// The archive may come before or after the flags.
	var file string
	rest := args
	for {
		if code, ok := parseFlags(fs, rest); !ok {
			return code
		}
		if fs.NArg() == 0 {
			break
		}
		if file != "" {
			fmt.Fprintf(stderr, "restrack unpack: one archive at a time, got %q and %q\n", file, fs.Arg(0))
			return 2
		}
		file, rest = fs.Arg(0), fs.Args()[1:]
	}
	if file == "" || *root == "" {
		fmt.Fprintln(stderr, "restrack unpack: an archive FILE and --root DIR are required")
		return 2
	}
	res, err := pack.Unpack(pack.UnpackOptions{Archive: file, Root: *root, DryRun: *dryRun, Force: *force, Log: stderr})
	if res != nil {
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(res)
		} else {
			writeUnpackTable(stdout, res)
		}
		for _, w := range res.Warnings {
			fmt.Fprintf(stderr, "restrack unpack: warning: %s\n", w)
		}
		for _, e := range res.Errors {
			fmt.Fprintf(stderr, "restrack unpack: %s\n", e)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "restrack unpack: %v\n", err)
		return 1
	}
	if *dryRun && len(res.Conflicts) > 0 {
		fmt.Fprintf(stderr, "restrack unpack: %d conflicts would stop a real run (--force replaces them)\n", len(res.Conflicts))
		return 1
	}
	return 0
}

func writeUnpackTable(w io.Writer, res *pack.UnpackResult) {
	verb := "restored"
	if res.DryRun {
		verb = "would restore (dry run)"
	}
	fmt.Fprintf(w, "%s under %s:\n", verb, res.Root)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  DO\tKIND\tPATH\tNOTE\n")
	for _, a := range res.Actions {
		note := a.Detail
		if a.Role == pack.RoleCopy {
			note = "copy (Model 1): the original stays at the source for AP " + joinPIDs32(a.ForPIDs)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", a.Do, a.Kind, strconv.Quote(a.Path)[1:len(strconv.Quote(a.Path))-1], note)
	}
	tw.Flush()
	counts := map[string]int{}
	for _, a := range res.Actions {
		counts[a.Do]++
	}
	fmt.Fprintf(w, "%d created, %d replaced, %d already there, %d conflicts, %d skipped, %d errors; %d copies whose originals stay at the source\n",
		counts["create"], counts["replace"], counts["same"], counts["conflict"], counts["skip"], counts["error"], res.Copies)
}

func joinPIDs32(v []int32) string {
	s := ""
	for i, x := range v {
		if i > 0 {
			s += ", "
		}
		s += strconv.Itoa(int(x))
	}
	return s
}
