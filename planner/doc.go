// Package planner builds the process↔file dependency graph of a trace and
// computes the migration plan for an application: which processes and files
// move with it, and which files are copied (Model 1: read-only sharing) or
// drag their partner application along (Model 2: any writer), to a fixpoint.
package planner
