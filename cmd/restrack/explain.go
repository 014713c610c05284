package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/restrack/restrack/planner"
	"github.com/restrack/restrack/planner/serve"
)

func init() {
	register("explain", "why a process or file is in an AP's migration plan: the dependency chain", func(args []string) int {
		return runExplain(args, os.Stdout, os.Stderr)
	})
}

func runExplain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restrack explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var pf planFlags
	pf.register(fs)
	file := fs.String("file", "", "explain what the plan does with `PATH`")
	pid := fs.String("pid", "", "explain what the plan does with process `PID` (or PID@START_NS)")
	asJSON := fs.Bool("json", false, "one JSON object: {\"lines\": [the chain, one sentence each]}")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: restrack explain [--store DIR] --ap PID (--file PATH | --pid PID)\n\n"+
			"Prints the chain of dependencies that put a file or a process in the plan for\n"+
			"AP PID (or why it stays behind). Takes the same flags as restrack plan.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if code, ok := parseNoArgs(fs, args); !ok {
		return code
	}
	if (*file == "") == (*pid == "") {
		fmt.Fprintln(stderr, "restrack explain: give exactly one of --file PATH and --pid PID")
		return 2
	}
	var lines []string
	if pf.socket != "" {
		lines, err := remoteExplain(&pf, *file, *pid)
		if err != nil {
			fmt.Fprintf(stderr, "restrack explain: %v\n", err)
			return errorStatus(err)
		}
		return printExplain(stdout, stderr, lines, *asJSON, pf.text)
	}
	tr, pl, err := pf.plan()
	if err != nil {
		fmt.Fprintf(stderr, "restrack explain: %v\n", err)
		return errorStatus(err)
	}
	if *file != "" {
		// The trace holds absolute paths; accept one relative to here.
		path := *file
		if !filepath.IsAbs(path) {
			if abs, aerr := filepath.Abs(path); aerr == nil {
				path = abs
			}
		}
		if pf.names != nil {
			path = pf.names.File(*file)
		}
		lines, err = pl.ExplainFile(path)
	} else {
		var k planner.ProcKey
		if k, err = pf.resolve(tr, *pid); err == nil {
			lines, err = pl.ExplainProcess(k)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "restrack explain: %v\n", err)
		return 1
	}
	return printExplain(stdout, stderr, lines, *asJSON, pf.text)
}

// printExplain prints the chain: as {"lines": […]} (the socket's answer)
// with --json; else one sentence a line for a script (grep, a pipe), and
// wrapped for a person, on a terminal or when COLUMNS says how wide.
func printExplain(stdout, stderr io.Writer, lines []string, asJSON bool, text func(string) string) int {
	for i := range lines {
		lines[i] = text(lines[i])
	}
	if asJSON {
		if lines == nil {
			lines = []string{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(serve.ExplainResult{Lines: lines}); err != nil {
			fmt.Fprintf(stderr, "restrack explain: %v\n", err)
			return 1
		}
		return 0
	}
	wrap := isTerminal(stdout) || os.Getenv("COLUMNS") != ""
	width := termWidth(stdout)
	for _, l := range lines {
		if wrap {
			l = strings.TrimSuffix(planner.WrapText(l, width, "    "), "\n")
		}
		fmt.Fprintln(stdout, l)
	}
	return 0
}
