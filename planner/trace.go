package planner

import "github.com/restrack/restrack/trace"

// The planner's input types live in the leaf package trace, which the store
// produces without importing the planner; these aliases keep the planner's
// names.
type (
	ProcKey = trace.ProcKey
	Process = trace.Process
	Access  = trace.Access
	Trace   = trace.Trace
)
