package planner

import "strings"

// isEndpoint: a network endpoint recorded as an event path
// ("tcp://127.0.0.1:5432", docs/ring-abi.md), not a file.
func isEndpoint(path string) bool {
	return len(path) > 0 && path[0] != '/' && strings.Contains(path, "://")
}
