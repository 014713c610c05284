package planner

import (
	"sort"
	"strconv"
)

// PSEntry is one traced process as `restrack ps` lists it: enough to pick
// the --ap of a plan, in tree order.
type PSEntry struct {
	PID     int32  `json:"pid"`
	StartNs uint64 `json:"start_ns"`
	PPID    int32  `json:"ppid"`
	// AP is what to pass to --ap for this process: the pid, or
	// PID@START_NS when the pid was reused during the trace.
	AP string `json:"ap"`
	// ParentStartNs tells which incarnation of a reused PPID is the parent;
	// zero when the parent was not traced (the process is a tree root).
	ParentStartNs uint64 `json:"parent_start_ns,omitempty"`
	// TreeRoot is the pid of the top traced ancestor; APRoot is true for
	// that ancestor itself (what restrack run started, or a service the
	// daemon's shim saw first).
	TreeRoot int32    `json:"tree_root_pid"`
	APRoot   bool     `json:"ap_root"`
	Depth    int      `json:"depth"`
	Exe      string   `json:"exe"`
	Argv     []string `json:"argv"`
	Cwd      string   `json:"cwd,omitempty"`
	// FirstNs and LastNs are its first and last record (CLOCK_MONOTONIC);
	// when Exited, LastNs is its exit.
	FirstNs     uint64 `json:"first_ns"`
	LastNs      uint64 `json:"last_ns"`
	Exited      bool   `json:"exited"`
	Events      uint64 `json:"events"` // calls on paths, successful or not
	Writes      uint64 `json:"writes"` // of which write-class
	Failures    uint64 `json:"failures"`
	Descendants int    `json:"descendants"`
}

// ProcessTree lists the trace's processes depth first, each tree from its
// root, children in start order: the order of `restrack ps`.
func ProcessTree(tr *Trace) []PSEntry {
	type counts struct{ events, writes, failures uint64 }
	per := map[ProcKey]*counts{}
	for _, a := range tr.Accesses {
		c := per[a.Proc]
		if c == nil {
			c = &counts{}
			per[a.Proc] = c
		}
		c.events += a.Count + a.Failures
		c.failures += a.Failures
		if a.Write {
			c.writes += a.Count + a.Failures
		}
	}
	procs := map[ProcKey]*Process{}
	pids := map[int32]int{}
	for i := range tr.Processes {
		p := &tr.Processes[i]
		if _, dup := procs[p.Key]; dup {
			continue
		}
		procs[p.Key] = p
		pids[p.Key.PID]++
	}
	children := map[ProcKey][]*Process{}
	var roots []*Process
	for _, p := range procs {
		if _, ok := procs[p.Parent]; ok && p.Parent != (ProcKey{}) {
			children[p.Parent] = append(children[p.Parent], p)
		} else {
			roots = append(roots, p)
		}
	}
	byStart := func(ps []*Process) {
		sort.Slice(ps, func(i, j int) bool {
			if ps[i].Key.StartNs != ps[j].Key.StartNs {
				return ps[i].Key.StartNs < ps[j].Key.StartNs
			}
			return ps[i].Key.PID < ps[j].Key.PID
		})
	}
	byStart(roots)
	out := make([]PSEntry, 0, len(procs))
	seen := map[ProcKey]bool{}
	var walk func(p *Process, root int32, depth int) int
	walk = func(p *Process, root int32, depth int) int {
		seen[p.Key] = true
		i := len(out)
		e := PSEntry{PID: p.Key.PID, StartNs: p.Key.StartNs, PPID: p.PPID, TreeRoot: root, APRoot: depth == 0, Depth: depth,
			Exe: p.Exe, Argv: p.Argv, Cwd: p.Cwd, FirstNs: p.FirstNs, LastNs: p.LastNs, Exited: p.Exited}
		if depth > 0 {
			e.ParentStartNs = p.Parent.StartNs
		}
		e.AP = Spec(p.Key, pids[p.Key.PID] > 1)
		if c := per[p.Key]; c != nil {
			e.Events, e.Writes, e.Failures = c.events, c.writes, c.failures
		}
		out = append(out, e)
		kids := children[p.Key]
		byStart(kids)
		n := 0
		for _, k := range kids {
			if !seen[k.Key] {
				n += 1 + walk(k, root, depth+1)
			}
		}
		out[i].Descendants = n
		return n
	}
	for _, r := range roots {
		walk(r, r.Key.PID, 0)
	}
	// Parents are resolved to an earlier start, so there is no cycle; but
	// a store is input, and no process may go unlisted.
	var rest []*Process
	for _, p := range procs {
		if !seen[p.Key] {
			rest = append(rest, p)
		}
	}
	byStart(rest)
	for _, r := range rest {
		if !seen[r.Key] {
			walk(r, r.Key.PID, 0)
		}
	}
	return out
}

// Spec is how to name k on the command line: its pid, with @START_NS when
// the pid alone is ambiguous.
func Spec(k ProcKey, reused bool) string {
	if reused {
		return strconv.Itoa(int(k.PID)) + "@" + strconv.FormatUint(k.StartNs, 10)
	}
	return strconv.Itoa(int(k.PID))
}

// ShortCommand is a process's command line for a table: paths shortened
// to their base name, cut at a few dozen characters (--json has argv).
func ShortCommand(exe string, argv []string) string {
	return shortCommand(&Process{Exe: exe, Argv: argv})
}
