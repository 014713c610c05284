package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/restrack/restrack/action"
	"github.com/restrack/restrack/action/migrate"
	"github.com/restrack/restrack/planner"
)

func init() {
	register("migrate", "move an AP's plan to a target root or host: stop, rsync, start (--emit: the script)", func(args []string) int {
		return runMigrate(args, os.Stdout, os.Stderr)
	})
}

func runMigrate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restrack migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var pf planFlags
	pf.register(fs)
	to := fs.String("to", "", "where the APs move: a directory `TARGET` (a root they run chrooted in) or [user@]host:root over ssh (required)")
	emit := fs.Bool("emit", false, "print the migration as a commented bash script instead of running it")
	restart := fs.String("restart", "live", "what starts at the target: `live` (the APs running now), all (exited ones too), none")
	timeout := fs.Duration("stop-timeout", 10*time.Second, "how long an AP has to exit after SIGTERM before SIGKILL")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: restrack migrate [--store DIR] --ap PID --to TARGET [--emit] [flags]\n\n"+
			"Cold migration of AP PID's plan: stops the live moving APs (dependents first),\n"+
			"copies their files with rsync, and starts them at TARGET with their recorded\n"+
			"argv, cwd and uid/gid (chrooted into TARGET when it is a local directory).\n"+
			"--emit prints the same sequence as a bash script to review and run.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if code, ok := parseNoArgs(fs, args); !ok {
		return code
	}
	target, err := migrate.ParseTarget(*to)
	if err != nil {
		fmt.Fprintf(stderr, "restrack migrate: %v\n", err)
		return 2
	}
	tr, pl, err := pf.plan()
	if err != nil {
		fmt.Fprintf(stderr, "restrack migrate: %v\n", err)
		return errorStatus(err) // 2 for a usage error: a missing or malformed --ap
	}
	pl.Enrich(planner.LocalHost{})
	if pl.Incomplete {
		fmt.Fprintf(stderr, "restrack migrate: warning: the trace lost %d events: a dependency may be missing\n", pl.DroppedEvents)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	script, err := migrate.Build(migrate.Options{Plan: pl, Trace: tr, Target: target, Restart: *restart, StopTimeout: *timeout,
		CRIU: migrate.CheckCRIU(ctx), IDs: action.IDs})
	if err != nil {
		fmt.Fprintf(stderr, "restrack migrate: %v\n", err)
		return 2
	}
	if *emit {
		if err := script.Write(stdout); err != nil {
			fmt.Fprintf(stderr, "restrack migrate: %v\n", err)
			return 1
		}
		return 0
	}
	// Stopping restrack's own shell would stop the migration half way.
	self := action.SelfAndAncestors()
	for _, p := range pl.MoveProcesses {
		if p.Live && self[p.PID] {
			fmt.Fprintf(stderr, "restrack migrate: process %d moves and is restrack itself or one of its ancestors: stopping it would stop the migration half way; run restrack from outside the AP, or review and run --emit's script\n", p.PID)
			return 1
		}
	}
	if err := script.Run(ctx, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "restrack migrate: %v\n", err)
		return 1
	}
	return 0
}
