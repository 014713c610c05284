//go:build !linux

package planner

// Process cannot tell a process's start time without Linux's /proc here, and
// a pid alone may have been reused: every process is reported gone, so the
// plan says "exited" rather than guess "live" (docs/pack.md says so).
func (LocalHost) Process(pid int32) (HostProcess, bool) { return HostProcess{}, false }
