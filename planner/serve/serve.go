// Package serve answers plan and explain requests on the collector's socket
// (design §4), from the store the daemon is writing, so an orchestrator can
// ask for a migration plan without stopping the trace.
//
// It lives apart from package planner because it needs the store, which is
// upstream of the planner; it plugs into the collector's socket through
// internal/usock without importing the collector.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/internal/usock"
	"github.com/restrack/restrack/planner"
)

// Handlers are the socket commands "plan" and "explain", for
// collector.DaemonConfig.Handlers.
func Handlers() map[string]func(*store.Store) usock.Handler {
	return map[string]func(*store.Store) usock.Handler{"plan": Plan, "explain": Explain, "ps": PS}
}

// PlanArgs are the arguments of "plan", the socket twin of restrack plan's
// flags: {"ap": "4312"} at least.
type PlanArgs struct {
	AP               string   `json:"ap"` // PID, PID@START_NS or PID@latest
	ProcessOnly      bool     `json:"process_only,omitempty"`
	ShowFailed       bool     `json:"show_failed,omitempty"`
	NoDefaultIgnores bool     `json:"no_default_ignores,omitempty"`
	Ignore           []string `json:"ignore,omitempty"`
	Keep             []string `json:"keep,omitempty"`
	// IgnoreRules is the text of an ignore-rules file (--ignore-file:
	// one rule a line, !RULE keeps, # comments), read by the client.
	IgnoreRules string `json:"ignore_rules,omitempty"`
	// Format of "plan"'s answer: "json" or empty, the plan object (restrack
	// plan --json); "text" or "dot", a PlanText with what restrack plan
	// prints, Width columns wide for text (0: 80).
	Format string `json:"format,omitempty"`
	Width  int    `json:"width,omitempty"`
}

// PlanText is the answer of "plan" with format "text" or "dot".
type PlanText struct {
	Text string `json:"text"`
}

// ExplainArgs are the arguments of "explain": the plan's, and exactly one
// of File and PID.
type ExplainArgs struct {
	PlanArgs
	File string `json:"file,omitempty"`
	PID  string `json:"pid,omitempty"`
}

// ExplainResult is the answer of "explain": the chain, one sentence a line.
type ExplainResult struct {
	Lines []string `json:"lines"`
}

// PSResult is the answer of "ps" (restrack ps --json without wall-clock
// strings: the client converts, it knows its clock).
type PSResult struct {
	Processes     []planner.PSEntry `json:"processes"`
	DroppedEvents uint64            `json:"dropped_events"`
}

// PS answers "ps" (no args) with the traced processes in tree order.
func PS(st *store.Store) usock.Handler {
	return func(ctx context.Context, _ json.RawMessage) (any, error) {
		tr, err := st.Trace(ctx)
		if err != nil {
			return nil, err
		}
		return PSResult{Processes: planner.ProcessTree(tr), DroppedEvents: tr.DroppedEvents}, nil
	}
}

// Plan answers "plan" with the plan's JSON object (restrack plan --json).
func Plan(st *store.Store) usock.Handler {
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var args PlanArgs
		if err := decode(raw, &args); err != nil {
			return nil, err
		}
		_, pl, err := compute(ctx, st, args)
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		switch args.Format {
		case "", "json":
			return pl, nil
		case "text":
			if args.Width <= 0 {
				args.Width = 80
			}
			err = pl.WriteTableWidth(&b, args.Width)
		case "dot":
			err = pl.WriteDOT(&b)
		default:
			return nil, fmt.Errorf("\"format\" %q: want json, text or dot", args.Format)
		}
		return PlanText{Text: b.String()}, err
	}
}

// Explain answers "explain" with an ExplainResult.
func Explain(st *store.Store) usock.Handler {
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var args ExplainArgs
		if err := decode(raw, &args); err != nil {
			return nil, err
		}
		if (args.File == "") == (args.PID == "") {
			return nil, errors.New("explain: give exactly one of \"file\" and \"pid\"")
		}
		tr, pl, err := compute(ctx, st, args.PlanArgs)
		if err != nil {
			return nil, err
		}
		var lines []string
		if args.File != "" {
			lines, err = pl.ExplainFile(args.File)
		} else {
			var k planner.ProcKey
			if k, err = planner.Resolve(tr, args.PID); err == nil {
				lines, err = pl.ExplainProcess(k)
			}
		}
		if err != nil {
			return nil, err
		}
		return ExplainResult{Lines: lines}, nil
	}
}

func decode(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return errors.New("missing args: {\"ap\": \"PID\"} at least")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("bad args: %w", err)
	}
	return nil
}

func compute(ctx context.Context, st *store.Store, args PlanArgs) (*planner.Trace, *planner.Plan, error) {
	if args.AP == "" {
		return nil, nil, errors.New("\"ap\" is required: the pid whose AP should move")
	}
	rules := planner.NewRules(!args.NoDefaultIgnores)
	for _, p := range args.Ignore {
		if err := rules.Ignore(p); err != nil {
			return nil, nil, err
		}
	}
	for _, p := range args.Keep {
		if err := rules.Keep(p); err != nil {
			return nil, nil, err
		}
	}
	if args.IgnoreRules != "" {
		if err := rules.Load(strings.NewReader(args.IgnoreRules), "request's ignore rules"); err != nil {
			return nil, nil, err
		}
	}
	if len(args.Ignore) > 0 || len(args.Keep) > 0 {
		rules.Sources = append(rules.Sources, "request")
	}
	tr, err := st.Trace(ctx)
	if err != nil {
		return nil, nil, err
	}
	key, err := planner.Resolve(tr, args.AP)
	if err != nil {
		return nil, nil, err
	}
	pl, err := planner.Compute(tr, planner.Options{AP: key, ProcessOnly: args.ProcessOnly, Rules: rules, ShowFailed: args.ShowFailed})
	return tr, pl, err
}
