package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/restrack/restrack/collector/store"
)

func init() {
	register("sql", "bring the store's SQL tables (files, accesses) up to date, then run sqlite3 on it", func(args []string) int {
		return runSQL(args, os.Stdin, os.Stdout, os.Stderr)
	})
}

// runSQL materializes the tables sqlite3 users read (docs/store.md: the
// collector keeps paths and aggregates in logs and never writes them) and
// hands the rest of the command line to sqlite3 -readonly.
func runSQL(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restrack sql", flag.ContinueOnError)
	fs.SetOutput(stderr)
	storeDir := fs.String("store", "./restrack-data", "store `DIR`")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: restrack sql [--store DIR] [SQLITE3-ARGS…]\n\n"+
			"Copies the paths and aggregates committed since the last run into the tables files and\n"+
			"accesses (view v_accesses), then runs sqlite3 -readonly on the store with the arguments\n"+
			"given (none: only the copy). Needs the store's lock: stop a collector writing it first.\n\n")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if _, err := os.Stat(filepath.Join(*storeDir, store.DBName)); err != nil {
		fmt.Fprintf(stderr, "restrack sql: no store in %s (%v)\n", *storeDir, err)
		return 1
	}
	st, err := store.Open(*storeDir, store.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "restrack sql: %v\n", err)
		return 1
	}
	start := time.Now()
	ms, err := st.Materialize(context.Background())
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "restrack sql: %v\n", err)
		return 1
	}
	if ms.Files > 0 || ms.Accesses > 0 {
		fmt.Fprintf(stderr, "restrack sql: %d new paths and %d aggregates written to the SQL tables in %s\n",
			ms.Files, ms.Accesses, time.Since(start).Round(time.Millisecond))
	}
	db := filepath.Join(*storeDir, store.DBName)
	if fs.NArg() == 0 {
		fmt.Fprintf(stderr, "restrack sql: up to date; query it with: sqlite3 -readonly %s\n", db)
		return 0
	}
	cmd := exec.Command("sqlite3", append([]string{"-readonly", db}, fs.Args()...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		fmt.Fprintf(stderr, "restrack sql: %v (the tables are up to date; install sqlite3 or use another SQLite client)\n", err)
		return 1
	}
	return 0
}
