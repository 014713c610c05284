//go:build race

package ring

// raceEnabled: the race detector slows the Go consumer several times over,
// and the stress tests scale their volume down to match.
const raceEnabled = true
