package planner

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
