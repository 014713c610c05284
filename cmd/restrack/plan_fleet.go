package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/restrack/restrack/fleet"
	"github.com/restrack/restrack/planner"
)

// fleetPlan computes the plan across hosts: the fleet trace is one trace
// with synthetic pids, so the planner runs unchanged; f.names turns its
// output back into HOST:PID.
func (f *planFlags) fleetPlan(rules *planner.Rules) (*planner.Trace, *planner.Plan, error) {
	if host, _, ok := strings.Cut(f.ap, ":"); !ok || host == "" {
		return nil, nil, usageError{fmt.Errorf("--ap %q: a fleet plan names its AP as HOST:PID (HOST as published with -host-id)", f.ap)}
	}
	ld, err := fleet.Load(context.Background(), f.fleet, fleet.LoadOptions{AP: f.ap, Ignored: rules.Ignored})
	if err != nil {
		return nil, nil, err
	}
	f.names = ld.Names
	pl, err := planner.Compute(ld.Trace, planner.Options{AP: ld.AP, ProcessOnly: f.processOnly, Rules: rules, ShowFailed: f.showFailed})
	return ld.Trace, pl, err
}

// output is where a plan is written: stdout itself, or for a fleet plan a
// buffer that finish rewrites into stdout (names, and for JSON the added
// host fields).
func (f *planFlags) output(stdout io.Writer, asJSON bool) (io.Writer, func() error) {
	if f.names == nil {
		return stdout, func() error { return nil }
	}
	var buf bytes.Buffer
	return &buf, func() error {
		if asJSON {
			return f.names.JSON(buf.Bytes(), stdout)
		}
		s := f.names.Table(buf.String())
		// The table's closing hint must name the fleet, or it would
		// explain from a local store.
		s = strings.ReplaceAll(s, "restrack explain --ap ", "restrack explain --fleet DSN --ap ")
		_, err := io.WriteString(stdout, s)
		return err
	}
}

// text is one line of output with fleet names.
func (f *planFlags) text(s string) string {
	if f.names == nil {
		return s
	}
	return f.names.Text(s)
}

// resolve names a process for explain --pid: HOST:PID in a fleet plan.
func (f *planFlags) resolve(tr *planner.Trace, spec string) (planner.ProcKey, error) {
	if f.names != nil {
		return f.names.Resolve(tr, spec)
	}
	return planner.Resolve(tr, spec)
}
