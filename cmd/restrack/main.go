// Command restrack traces applications and plans their migration.
//
// Each subcommand lives in its own file and registers itself in init, so
// the subcommands stay independent: run.go, events.go, status.go, plan.go…
package main

import (
	"fmt"
	"os"
	"sort"

	"github.com/restrack/restrack/internal/version"
)

// subcommand is one `restrack NAME …` verb. run receives the arguments after
// NAME and returns the process exit status.
type subcommand struct {
	summary string
	run     func(args []string) int
}

var subcommands = map[string]subcommand{}

func register(name, summary string, run func(args []string) int) {
	subcommands[name] = subcommand{summary: summary, run: run}
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: restrack COMMAND [flags] [args]\n\ncommands:\n")
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, subcommands[n].summary)
	}
	fmt.Fprintf(os.Stderr, "\n'restrack COMMAND --help' describes a command's flags; 'restrack --version' prints the version.\n")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	if os.Args[1] == "--version" || os.Args[1] == "-version" || os.Args[1] == "version" {
		fmt.Printf("restrack %s\n", version.String())
		return
	}
	cmd, ok := subcommands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "restrack: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	os.Exit(cmd.run(os.Args[2:]))
}
