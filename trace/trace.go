// Package trace is the trace model: process identities, what the trace
// knows of each process, and the per-(process, file, op) access aggregates.
// The store produces it and the planner consumes it; it imports nothing of
// restrack, so data flows one way (store → trace ← planner).
package trace

import "sort"

// ProcKey identifies a process: a reused pid is another process.
type ProcKey struct {
	PID     int32  `json:"pid"`
	StartNs uint64 `json:"start_ns"` // /proc/PID/stat starttime in ns since boot
}

// Process is what the trace knows of one process.
type Process struct {
	Key             ProcKey
	PPID            int32   // parent pid as the process saw it
	Parent          ProcKey // resolved parent identity; zero when the parent was not traced
	Exe             string
	Argv            []string
	Cwd             string
	FirstNs, LastNs uint64 // first and last event time (CLOCK_MONOTONIC)
	Exited          bool
	// UID is the uid the collector verified for the process's records
	// (peer credentials of the ring's owner), valid when UIDKnown: a record
	// read from a ring of unknown owner leaves it unknown rather than 0,
	// which would claim root.
	UID      uint32
	UIDKnown bool
}

// Access aggregates every operation one process made on one path with one
// op: the unit the planner reasons about (it never rescans raw events).
type Access struct {
	Proc  ProcKey
	Path  string // absolute; may hold any bytes but NUL
	Op    string // libc function, e.g. "openat", "rename"
	Write bool   // write class (O_WRONLY/O_RDWR/O_CREAT/O_TRUNC/O_APPEND or a changing op)
	// File, when non-zero, is 1 + the index of Path in Trace.Files: a store
	// that numbers its paths lets the planner skip hashing them (the
	// largest cost of planning a big trace). Zero: use Path.
	File     int32
	Count    uint64 // successful calls
	Failures uint64 // failed calls: they create no dependency
	FirstNs  uint64
	LastNs   uint64
}

// Trace is the planner's whole input, loaded from the store.
type Trace struct {
	Processes     []Process
	Accesses      []Access
	DroppedEvents uint64 // records lost (ring full, too big, abandoned, corrupted) in the window

	// Files optionally lists every distinct path once, for Access.File.
	// It is used only when every access sets File; Path must then equal
	// Files[File-1] (sharing the string costs nothing).
	Files []string
}

// ParentAmong picks a child's parent among the traced incarnations of its
// PPID, given in start order: the latest one that started no later than the
// child (a pid is not reused while its holder lives, so that incarnation is
// the one that forked; a parent cannot start after its child). It returns
// the index in incarnations, or -1 when none qualifies.
func ParentAmong(incarnations int, startNs func(i int) uint64, isChild func(i int) bool, child ProcKey) int {
	// Index of the first incarnation starting after the child.
	j := sort.Search(incarnations, func(i int) bool { return startNs(i) > child.StartNs })
	for j--; j >= 0; j-- {
		if !isChild(j) {
			return j
		}
	}
	return -1
}

// ResolveParents sets the Parent of every process whose Parent is zero and
// whose parent was traced, by the rule of ParentAmong.
func ResolveParents(ps []Process) {
	byPID := map[int32][]ProcKey{}
	for _, p := range ps {
		byPID[p.Key.PID] = append(byPID[p.Key.PID], p.Key)
	}
	for _, ks := range byPID {
		sort.Slice(ks, func(i, j int) bool { return ks[i].StartNs < ks[j].StartNs })
	}
	for i := range ps {
		if ps[i].Parent != (ProcKey{}) || ps[i].PPID == 0 {
			continue
		}
		ks := byPID[ps[i].PPID]
		child := ps[i].Key
		if j := ParentAmong(len(ks), func(j int) uint64 { return ks[j].StartNs },
			func(j int) bool { return ks[j] == child }, child); j >= 0 {
			ps[i].Parent = ks[j]
		}
	}
}
