// Package bench is restrack's overhead benchmark suite: it reproduces the
// paper's experiment (one application opening one file over and over,
// warm and cold) under every tracing mode side by side, and measures the
// collector's and the planner's scale figures. cmd/restrack-bench is its
// command-line front; docs/bench.md holds the recorded results.
//
// Ratios are only ever computed between modes measured in one run: the
// modes take turns round by round in a rotating order (Schedule), each turn
// running one repetition of every table, and each mode is compared with the
// untraced run of the same round; so drift in the machine's speed (other
// tenants, thermal, page cache) hits every mode alike instead of whichever
// happened to run last.
package bench
