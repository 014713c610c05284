package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/restrack/restrack/collector"
	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/planner"
)

// planArgs are the socket's "plan" request arguments, the JSON twin of
// `restrack plan`'s flags.
type planArgs struct {
	AP               string   `json:"ap"` // PID, PID@START_NS or PID@latest
	ProcessOnly      bool     `json:"process_only"`
	ShowFailed       bool     `json:"show_failed"`
	NoDefaultIgnores bool     `json:"no_default_ignores"`
	Ignore           []string `json:"ignore"`
	Keep             []string `json:"keep"`
}

// planHandler answers {"cmd":"plan","args":{"ap":"4312"}} with the plan's
// JSON (design §11) computed on everything committed so far. It reads the
// store through its own read-only handle: a long plan never holds the
// writer's connection, so draining goes on meanwhile.
func planHandler(storeDir string) func(*collector.Collector) collector.Handler {
	return func(*collector.Collector) collector.Handler {
		return func(ctx context.Context, raw json.RawMessage) (any, error) {
			var a planArgs
			if len(raw) > 0 {
				if err := json.Unmarshal(raw, &a); err != nil {
					return nil, fmt.Errorf("plan: bad args: %w", err)
				}
			}
			if a.AP == "" {
				return nil, errors.New(`plan: args.ap is required: {"cmd":"plan","args":{"ap":"PID"}}`)
			}
			rules := planner.NewRules(!a.NoDefaultIgnores)
			for _, p := range a.Ignore {
				if err := rules.Ignore(p); err != nil {
					return nil, fmt.Errorf("plan: %w", err)
				}
			}
			for _, p := range a.Keep {
				if err := rules.Keep(p); err != nil {
					return nil, fmt.Errorf("plan: %w", err)
				}
			}
			st, err := store.Open(storeDir, store.Options{ReadOnly: true})
			if err != nil {
				return nil, err
			}
			defer st.Close()
			tr, err := st.Trace(ctx)
			if err != nil {
				return nil, err
			}
			key, err := planner.Resolve(tr, a.AP)
			if err != nil {
				return nil, err
			}
			return planner.Compute(tr, planner.Options{AP: key, ProcessOnly: a.ProcessOnly, Rules: rules, ShowFailed: a.ShowFailed})
		}
	}
}
