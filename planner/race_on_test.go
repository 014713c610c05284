//go:build race

package planner

// raceEnabled: the race detector is on (timing budgets do not apply).
const raceEnabled = true
