package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/restrack/restrack/internal/usock"
	"github.com/restrack/restrack/planner/serve"
)

// A running collector answers plan, explain, ps and status on its socket
// from the store it is writing (docs/collector.md); --socket PATH asks it
// instead of opening the store.

// remoteTimeout bounds one question: a plan of a big store takes seconds.
const remoteTimeout = 2 * time.Minute

func askDaemon(socket, cmd string, args, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
	defer cancel()
	return usock.Query(ctx, socket, cmd, args, out)
}

// planArgs are the socket's twin of the plan flags. The ignore-rules file
// is read here: the daemon may run as another user, in another directory.
func (f *planFlags) planArgs() (serve.PlanArgs, error) {
	if f.ap == "" {
		return serve.PlanArgs{}, usageError{errors.New("--ap PID is required: the process whose AP should move (restrack ps --socket PATH lists the traced processes)")}
	}
	if f.fleet != "" {
		return serve.PlanArgs{}, usageError{errors.New("--socket and --fleet exclude each other")}
	}
	a := serve.PlanArgs{AP: f.ap, ProcessOnly: f.processOnly, ShowFailed: f.showFailed, NoDefaultIgnores: f.noDefaults,
		Ignore: f.ignore, Keep: f.keep}
	file := f.ignoreFile
	if file == "" {
		file = defaultIgnoreFile()
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return a, fmt.Errorf("ignore rules: %w", err)
		}
		a.IgnoreRules = string(b)
	}
	return a, nil
}

// remotePlan prints the plan a daemon computes, as restrack plan would.
func remotePlan(f *planFlags, asJSON, asDOT bool, stdout io.Writer) error {
	args, err := f.planArgs()
	if err != nil {
		return err
	}
	if asJSON {
		var raw json.RawMessage
		if err := askDaemon(f.socket, "plan", args, &raw); err != nil {
			return err
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	}
	args.Format, args.Width = "text", termWidth(stdout)
	if asDOT {
		args.Format = "dot"
	}
	var res serve.PlanText
	if err := askDaemon(f.socket, "plan", args, &res); err != nil {
		return err
	}
	_, err = io.WriteString(stdout, res.Text)
	return err
}

// remoteExplain asks a daemon for the chain behind a file or a process.
func remoteExplain(f *planFlags, file, pid string) ([]string, error) {
	args, err := f.planArgs()
	if err != nil {
		return nil, err
	}
	if file != "" && !filepath.IsAbs(file) {
		if abs, err := filepath.Abs(file); err == nil {
			file = abs
		}
	}
	var res serve.ExplainResult
	err = askDaemon(f.socket, "explain", serve.ExplainArgs{PlanArgs: args, File: file, PID: pid}, &res)
	return res.Lines, err
}
