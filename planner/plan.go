package planner

import (
	"encoding/base64"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// Options choose what to move and how to read the trace.
type Options struct {
	AP          ProcKey // the process the user asked to move (see Resolve)
	ProcessOnly bool    // move that process alone, not its descendants
	Rules       *Rules  // nil: NewRules(true), the defaults
	ShowFailed  bool    // list the failed calls of moving processes
}

// Plan is the migration plan. Its JSON form is the stable contract of
// design §11: move_processes, move_files, copy_files (a file is in one of the
// two only), ignored_files, dropped_events, incomplete; the rest is extra.
type Plan struct {
	AP            ProcRef       `json:"ap"`
	ProcessOnly   bool          `json:"process_only"`
	APs           []AP          `json:"aps"`
	MoveProcesses []MoveProcess `json:"move_processes"`
	MoveFiles     []MoveFile    `json:"move_files"`
	CopyFiles     []CopyFile    `json:"copy_files"`
	IgnoredFiles  []string      `json:"ignored_files"`
	// RecreateFiles are the IPC objects (sockets, shared memory, message
	// queues, semaphores) of the moving APs: never in move_files or
	// copy_files, since their process makes them again at the target.
	RecreateFiles []RecreateFile `json:"recreate_files"`
	// LiveAPs have a process running (something to stop and start);
	// ExitedAPs are history: their files move, nothing runs. Root pids.
	LiveAPs   []int32 `json:"live_aps"`
	ExitedAPs []int32 `json:"exited_aps"`
	// HostChecked: Enrich checked liveness, kinds and sizes on this host;
	// false means they come from the trace alone.
	HostChecked bool         `json:"host_checked"`
	IgnoreRules []string     `json:"ignore_rules"`
	HostSockets []HostSocket `json:"host_sockets"`
	// ListenEndpoints are the ports the moving APs serve, with the clients
	// seen; ExternalEndpoints the addresses they reach that no traced
	// process serves (design §16).
	ListenEndpoints   []ListenEndpoint   `json:"listen_endpoints"`
	ExternalEndpoints []ExternalEndpoint `json:"external_endpoints"`
	Failed            []FailedAccess     `json:"failed,omitempty"`
	DroppedEvents     uint64             `json:"dropped_events"`
	// UnresolvedFiles are paths a moving process used that the shim could
	// not make absolute (deeper than PATH_MAX, base unknown, or under a
	// seccomp filter): the plan cannot say where they are, so it is
	// incomplete.
	UnresolvedFiles []string `json:"unresolved_files,omitempty"`
	Incomplete      bool     `json:"incomplete"`

	trace *Trace
	g     *graph
	net   *netGraph
	units []unit
	unit  []int32 // unit of each process
	order []int32 // moving units in the order they joined (requested first)
	first []int32 // per file: the first moving unit that touched it, or -1
}

// ProcRef names one process.
type ProcRef struct {
	PID     int32  `json:"pid"`
	StartNs uint64 `json:"start_ns"`
	Exe     string `json:"exe"`
	Command string `json:"command"`
}

// AP is one moving application: a process subtree named by its root pid.
type AP struct {
	Root        int32   `json:"root_pid"`
	RootStartNs uint64  `json:"root_start_ns"`
	Exe         string  `json:"exe"`
	Command     string  `json:"command"` // the root's short command line
	Requested   bool    `json:"requested"`
	Processes   []int32 `json:"processes"`
	Reason      string  `json:"reason"`
	Cause       *Cause  `json:"cause,omitempty"` // nil for the requested AP
	// Label is the program the AP runs now: its root's last exec, or once
	// Enrich has looked, the command line of its topmost live process
	// (LabelPID) — the one to stop and start.
	Label    string  `json:"label"`
	LabelPID int32   `json:"label_pid"`
	Live     bool    `json:"live"`
	LivePIDs []int32 `json:"live_pids"`
}

// Cause is one link of an explanation chain: this AP moves because its
// process Proc accessed Path, which process ByProc of the already moving AP
// ByAP also accessed, and at least one of the two wrote it (Model 2).
type Cause struct {
	Path       string  `json:"path"`
	Proc       ProcKey `json:"proc"`
	ProcWrites bool    `json:"proc_writes"`
	ByAP       int32   `json:"by_ap"`
	ByProc     ProcKey `json:"by_proc"`
	ByWrites   bool    `json:"by_writes"`
	// Via is "port" when the tie is a network endpoint, not a file: Path
	// is then the endpoint the AP serves (Served says how) and Connected
	// the address ByProc connected to.
	Via       string `json:"via,omitempty"`
	Served    string `json:"served,omitempty"`
	Connected string `json:"connected,omitempty"`
	byUnit    int32
}

// MoveProcess is one moving process.
type MoveProcess struct {
	PID     int32    `json:"pid"`
	StartNs uint64   `json:"start_ns"`
	PPID    int32    `json:"ppid"`
	Exe     string   `json:"exe"`
	Argv    []string `json:"argv,omitempty"`
	AP      int32    `json:"ap"`
	Exited  bool     `json:"exited"`
	// Live: the process runs (Enrich: /proc/PID exists with the recorded
	// start time; before that: the trace saw no exit).
	Live   bool   `json:"live"`
	Reason string `json:"reason"`
}

// MoveFile moves with the plan and nothing is left behind.
type MoveFile struct {
	Path       string  `json:"path"`
	PathBase64 string  `json:"path_base64,omitempty"` // set when Path is not valid UTF-8 (JSON would mangle it)
	Reason     string  `json:"reason"`
	Written    bool    `json:"written"`
	APs        []int32 `json:"aps"`     // root pids of the moving APs that use it
	Writers    []int32 `json:"writers"` // root pids of the moving APs that write it
	FileState
}

// FileState is what a plan knows of a file's object: its kind always
// (inferred from the trace until Enrich looks), and where Enrich found it
// still existing, its size.
type FileState struct {
	Kind   string `json:"kind"`
	Exists *bool  `json:"exists,omitempty"` // nil until Enrich looked
	Size   *int64 `json:"size,omitempty"`   // bytes, when it exists
}

// CopyFile moves, and a copy stays for the APs that remain (Model 1).
type CopyFile struct {
	Path       string  `json:"path"`
	PathBase64 string  `json:"path_base64,omitempty"`
	ForPIDs    []int32 `json:"for_pids"` // root pids of the staying APs that read it
	Reason     string  `json:"reason"`
	APs        []int32 `json:"aps"`
	FileState
}

// HostSocket is an AF_UNIX socket the moving APs connect to that the host
// provides: no traced process bound it (a host daemon did), or it lies
// under a host daemons' directory (/run…). It ties nobody to anybody; the
// target host must offer the same service.
type HostSocket struct {
	Path       string  `json:"path"`
	PathBase64 string  `json:"path_base64,omitempty"`
	BoundBy    []int32 `json:"bound_by"` // root pids of the traced APs that bound it (usually none)
	Reason     string  `json:"reason"`
	APs        []int32 `json:"aps"` // root pids of the moving APs that use it
}

// FailedAccess is a call that never succeeded: it creates no dependency.
type FailedAccess struct {
	PID      int32  `json:"pid"`
	StartNs  uint64 `json:"start_ns"`
	Path     string `json:"path"`
	Op       string `json:"op"`
	Write    bool   `json:"write"`
	Failures uint64 `json:"failures"`
}

// unit is an AP: the requested one, a partner subtree, or a lone ancestor.
type unit struct {
	root    int32
	members []int32
	moving  bool
	cause   *Cause
	lone    bool // an ancestor of the requested AP: it moves without its subtree
}

// Compute plans the move of opts.AP. It is linear in the trace: every
// process is visited a bounded number of times, every access edge is scanned
// once from its process's side and at most twice from its file's side.
func Compute(tr *Trace, opts Options) (*Plan, error) {
	rules := opts.Rules
	if rules == nil {
		rules = NewRules(true)
	}
	g := buildGraph(tr, rules)
	ap, ok := g.byKey[opts.AP]
	if !ok {
		if len(g.byPID[opts.AP.PID]) > 0 {
			return nil, fmt.Errorf("no process with pid %d started at %d in the trace (use Resolve to pick one)", opts.AP.PID, opts.AP.StartNs)
		}
		return nil, &UnknownPIDError{PID: opts.AP.PID, Processes: len(tr.Processes)}
	}
	pl := &Plan{
		AP:            ProcRef{PID: opts.AP.PID, StartNs: opts.AP.StartNs, Exe: g.exe(ap), Command: g.name(ap)},
		ProcessOnly:   opts.ProcessOnly,
		IgnoreRules:   append([]string{}, rules.Sources...),
		DroppedEvents: tr.DroppedEvents,
		Incomplete:    tr.DroppedEvents > 0,
		trace:         tr,
		g:             g,
		net:           g.buildNet(tr),
	}
	pl.partition(ap, opts.ProcessOnly)
	pl.close()
	pl.assemble(tr, opts.ShowFailed)
	pl.assembleNet()
	return pl, nil
}

// partition splits the processes into APs once and for all. The moving set
// starts as the requested subtree; every other process belongs to the
// subtree of its highest ancestor whose subtree holds no moving process.
// The requested root's ancestors hold it, so each of them is an AP alone.
// Pulling in a partner AP never changes that partition: a partner's root is
// the child of a requested-root ancestor (or a tree root), so the set of
// "ancestors of a moving process" stays what it was at the start.
func (pl *Plan) partition(ap int32, processOnly bool) {
	g := pl.g
	n := len(g.procs)
	pl.unit = make([]int32, n)
	for i := range pl.unit {
		pl.unit[i] = -1
	}
	// Unit 0: the requested AP. The walk tolerates a parent cycle in a
	// corrupt trace by never visiting a process twice.
	req := unit{root: ap, moving: true}
	pl.unit[ap] = 0
	req.members = append(req.members, ap)
	if !processOnly {
		for q := 0; q < len(req.members); q++ {
			p := req.members[q]
			for _, c := range g.kids[g.kidOff[p]:g.kidOff[p+1]] {
				if pl.unit[c] < 0 {
					pl.unit[c] = 0
					req.members = append(req.members, c)
				}
			}
		}
	}
	pl.units = append(pl.units, req)
	pl.order = append(pl.order, 0)

	// The requested root's ancestors each form an AP alone.
	for p, steps := g.procs[ap].parent, 0; p >= 0 && pl.unit[p] < 0 && steps < n; p, steps = g.procs[p].parent, steps+1 {
		pl.unit[p] = int32(len(pl.units))
		pl.units = append(pl.units, unit{root: p, members: []int32{p}, lone: true})
	}

	// Every other process belongs to the subtree of its highest ancestor
	// that is neither moving nor an ancestor of the requested root. Climb
	// from each unassigned process until an assigned one or the top; the
	// whole climbed path shares one AP, so each process is climbed once.
	mark := make([]int32, n) // climb stamp, to stop on a parent cycle in a corrupt trace
	var path []int32
	for i := range g.procs {
		if pl.unit[i] >= 0 {
			continue
		}
		path = append(path[:0], int32(i))
		mark[i] = int32(i) + 1
		top, u := int32(i), int32(-1)
		for {
			par := g.procs[top].parent
			if par < 0 || mark[par] == int32(i)+1 {
				break
			}
			if pu := pl.unit[par]; pu >= 0 {
				if pu != 0 && !pl.units[pu].lone {
					u = pu // reached a partner AP from below: same subtree
				}
				break
			}
			top = par
			mark[par] = int32(i) + 1
			path = append(path, par)
		}
		if u < 0 {
			u = int32(len(pl.units))
			pl.units = append(pl.units, unit{root: top})
		}
		for _, p := range path {
			pl.unit[p] = u
			pl.units[u].members = append(pl.units[u].members, p)
		}
	}
}

// close applies Model 2 to a fixpoint, breadth first from the requested AP,
// recording for every AP it pulls in the access that pulled it.
func (pl *Plan) close() {
	g := pl.g
	const (
		floodedAll     = 1 // a moving process wrote the file: all its users were pulled
		floodedWriters = 2 // a moving process read it: all its writers were pulled
	)
	state := make([]uint8, len(g.files))
	pl.first = make([]int32, len(g.files))
	for i := range pl.first {
		pl.first[i] = -1
	}
	pull := func(by int32, byEdge *edge, e *edge) {
		u := pl.unit[e.proc]
		if pl.units[u].moving {
			return
		}
		pl.units[u].moving = true
		pl.units[u].cause = &Cause{
			Path: g.files[e.file].path, Proc: g.procs[e.proc].key, ProcWrites: e.write,
			ByAP: g.procs[pl.units[by].root].key.PID, ByProc: g.procs[byEdge.proc].key, ByWrites: byEdge.write,
			byUnit: by,
		}
		pl.order = append(pl.order, u)
	}
	for q := 0; q < len(pl.order); q++ {
		u := pl.order[q]
		for _, p := range pl.units[u].members {
			pl.pullPorts(u, p)
			adj := g.procAdj[g.procOff[p]:g.procOff[p+1]]
			for i := range adj {
				e := &adj[i]
				f := e.file
				if g.files[f].ignored || g.files[f].hostSocket {
					continue
				}
				if pl.first[f] < 0 {
					pl.first[f] = u
				}
				switch {
				case e.write && !g.files[f].socket && state[f]&floodedAll == 0:
					state[f] |= floodedAll | floodedWriters
					users := g.fileAdj[g.fileOff[f]:g.fileOff[f+1]]
					for j := range users {
						pull(u, e, &users[j])
					}
				case (!e.write || g.files[f].socket) && state[f]&floodedWriters == 0:
					state[f] |= floodedWriters
					users := g.fileAdj[g.fileOff[f]:g.fileOff[f+1]]
					for j := range users {
						if users[j].write {
							pull(u, e, &users[j])
						}
					}
				}
			}
		}
	}
}

// assemble turns the closed graph into the plan's lists, sorted so the
// output is deterministic.
func (pl *Plan) assemble(tr *Trace, showFailed bool) {
	g := pl.g
	pl.APs = []AP{}
	pl.MoveProcesses = []MoveProcess{}
	pl.MoveFiles = []MoveFile{}
	pl.CopyFiles = []CopyFile{}
	pl.IgnoredFiles = []string{}
	pl.HostSockets = []HostSocket{}
	pl.RecreateFiles = []RecreateFile{}

	for _, u := range pl.order {
		un := &pl.units[u]
		a := AP{
			Root: g.procs[un.root].key.PID, RootStartNs: g.procs[un.root].key.StartNs,
			Exe: g.exe(un.root), Command: g.name(un.root), Requested: u == 0, Reason: pl.apReason(u), Cause: un.cause,
			Label: g.name(un.root), LabelPID: g.procs[un.root].key.PID,
			Processes: make([]int32, 0, len(un.members)),
		}
		for _, p := range un.members {
			a.Processes = append(a.Processes, g.procs[p].key.PID)
			pn := &g.procs[p]
			mp := MoveProcess{PID: pn.key.PID, StartNs: pn.key.StartNs, Exe: g.exe(p), AP: a.Root, Reason: pl.procReason(p)}
			if pn.p != nil {
				mp.PPID, mp.Argv, mp.Exited = pn.p.PPID, pn.p.Argv, pn.p.Exited
			}
			mp.Live = !mp.Exited
			pl.MoveProcesses = append(pl.MoveProcesses, mp)
		}
		sort.Slice(a.Processes, func(i, j int) bool { return a.Processes[i] < a.Processes[j] })
		pl.APs = append(pl.APs, a)
	}
	sort.Slice(pl.MoveProcesses, func(i, j int) bool {
		a, b := pl.MoveProcesses[i], pl.MoveProcesses[j]
		return a.PID < b.PID || a.PID == b.PID && a.StartNs < b.StartNs
	})

	// Files: those a moving process used. Ignored ones and the host's
	// sockets are listed apart.
	ignored, hostSocks := map[int32]bool{}, map[int32]bool{}
	for _, u := range pl.order {
		for _, p := range pl.units[u].members {
			for _, e := range g.procAdj[g.procOff[p]:g.procOff[p+1]] {
				if f := e.file; g.files[f].ignored {
					ignored[f] = true
				} else if g.files[f].hostSocket {
					hostSocks[f] = true
				}
			}
		}
	}
	for f := range ignored {
		pl.IgnoredFiles = append(pl.IgnoredFiles, g.files[f].path)
	}
	sort.Strings(pl.IgnoredFiles)
	for f := range hostSocks {
		pl.HostSockets = append(pl.HostSockets, pl.hostSocket(f))
	}
	sort.Slice(pl.HostSockets, func(i, j int) bool { return pl.HostSockets[i].Path < pl.HostSockets[j].Path })

	for f := range g.files {
		if pl.first[f] < 0 {
			continue
		}
		movingAPs, stayingAPs, written := pl.fileUsers(int32(f))
		path := g.files[f].path
		var b64 string
		if !utf8.ValidString(path) {
			b64 = base64.StdEncoding.EncodeToString([]byte(path))
		}
		kind := hintKinds[g.files[f].hint]
		if IsRecreated(kind) {
			reason := recreateReason(kind, movingAPs)
			if g.files[f].socket && len(stayingAPs) > 0 {
				reason += fmt.Sprintf("; its clients %s stay and lose it (an AF_UNIX socket does not cross hosts)", apList(stayingAPs))
			}
			pl.RecreateFiles = append(pl.RecreateFiles, RecreateFile{Path: path, PathBase64: b64, Kind: kind, APs: movingAPs,
				Makers: pl.fileMakers(int32(f)), Reason: reason})
			continue
		}
		if len(stayingAPs) == 0 {
			pl.MoveFiles = append(pl.MoveFiles, MoveFile{Path: path, PathBase64: b64, Written: written, APs: movingAPs,
				Writers: pl.fileWriters(int32(f)), Reason: moveFileReason(movingAPs, written), FileState: FileState{Kind: kind}})
			continue
		}
		if g.files[f].socket {
			// The closure brought every client's server, so the staying
			// users are clients of a moving server: a socket is not copied.
			pl.MoveFiles = append(pl.MoveFiles, MoveFile{Path: path, PathBase64: b64, Written: written, APs: movingAPs,
				Reason: fmt.Sprintf("socket served by %s; its clients %s stay and lose it (an AF_UNIX socket does not cross hosts)",
					apList(movingAPs), apList(stayingAPs))})
			continue
		}
		// The closure guarantees no staying AP shares a written file.
		pl.CopyFiles = append(pl.CopyFiles, CopyFile{Path: path, PathBase64: b64, ForPIDs: stayingAPs, APs: movingAPs,
			Reason:    fmt.Sprintf("read-only sharing (Model 1): moves with %s, a copy stays for %s", apList(movingAPs), apList(stayingAPs)),
			FileState: FileState{Kind: kind}})
	}
	for f := range g.files {
		if pl.first[f] >= 0 && g.files[f].unresolved {
			pl.UnresolvedFiles = append(pl.UnresolvedFiles, g.files[f].path)
		}
	}
	sort.Strings(pl.UnresolvedFiles)
	pl.Incomplete = pl.Incomplete || len(pl.UnresolvedFiles) > 0
	pl.settle()
	sort.Slice(pl.MoveFiles, func(i, j int) bool { return pl.MoveFiles[i].Path < pl.MoveFiles[j].Path })
	sort.Slice(pl.CopyFiles, func(i, j int) bool { return pl.CopyFiles[i].Path < pl.CopyFiles[j].Path })
	sort.Slice(pl.RecreateFiles, func(i, j int) bool { return pl.RecreateFiles[i].Path < pl.RecreateFiles[j].Path })

	if showFailed {
		pl.Failed = []FailedAccess{}
		for _, ai := range g.failed {
			a := &tr.Accesses[ai]
			p, ok := g.byKey[a.Proc]
			if !ok || !pl.units[pl.unit[p]].moving {
				continue
			}
			pl.Failed = append(pl.Failed, FailedAccess{PID: a.Proc.PID, StartNs: a.Proc.StartNs, Path: a.Path, Op: a.Op,
				Write: a.Write, Failures: a.Failures})
		}
		sort.Slice(pl.Failed, func(i, j int) bool {
			a, b := pl.Failed[i], pl.Failed[j]
			if a.Path != b.Path {
				return a.Path < b.Path
			}
			return a.PID < b.PID || a.PID == b.PID && a.Op < b.Op
		})
	}
}

// hostSocket describes a socket the host provides.
func (pl *Plan) hostSocket(f int32) HostSocket {
	g := pl.g
	path := g.files[f].path
	hs := HostSocket{Path: path, BoundBy: []int32{}, APs: []int32{}}
	if !utf8.ValidString(path) {
		hs.PathBase64 = base64.StdEncoding.EncodeToString([]byte(path))
	}
	for _, e := range g.fileAdj[g.fileOff[f]:g.fileOff[f+1]] {
		un := &pl.units[pl.unit[e.proc]]
		root := g.procs[un.root].key.PID
		if un.moving {
			hs.APs = append(hs.APs, root)
		}
		if e.write && g.files[f].bound {
			hs.BoundBy = append(hs.BoundBy, root)
		}
	}
	slices.Sort(hs.APs)
	slices.Sort(hs.BoundBy)
	hs.APs, hs.BoundBy = slices.Compact(hs.APs), slices.Compact(hs.BoundBy)
	if len(hs.BoundBy) == 0 {
		hs.Reason = "no traced process bound it: a host daemon serves it, the target host must too; it ties its clients to nobody"
	} else {
		hs.Reason = fmt.Sprintf("under a host daemons' directory (%s), so the host's although %s bound it; --keep %s ties its clients to it",
			strings.Join(DefaultHostSockets, ", "), apList(hs.BoundBy), path)
	}
	return hs
}

// fileUsers: root pids of the moving and of the staying APs that use f,
// and whether anyone writes it.
func (pl *Plan) fileUsers(f int32) (moving, staying []int32, written bool) {
	g := pl.g
	moving, staying = []int32{}, []int32{}
	for _, e := range g.fileAdj[g.fileOff[f]:g.fileOff[f+1]] {
		written = written || e.write
		un := &pl.units[pl.unit[e.proc]]
		root := g.procs[un.root].key.PID
		if un.moving {
			moving = append(moving, root)
		} else {
			staying = append(staying, root)
		}
	}
	slices.Sort(moving)
	slices.Sort(staying)
	return slices.Compact(moving), slices.Compact(staying), written
}

// fileWriters: root pids of the moving APs that write f, so an action can
// order them (a writer starts before its readers, and stops after them).
func (pl *Plan) fileWriters(f int32) []int32 {
	g := pl.g
	out := []int32{}
	for _, e := range g.fileAdj[g.fileOff[f]:g.fileOff[f+1]] {
		if un := &pl.units[pl.unit[e.proc]]; e.write && un.moving {
			out = append(out, g.procs[un.root].key.PID)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// fileMakers: pids of the moving processes that write (create) f.
func (pl *Plan) fileMakers(f int32) []int32 {
	g := pl.g
	out := []int32{}
	for _, e := range g.fileAdj[g.fileOff[f]:g.fileOff[f+1]] {
		if e.makes && pl.units[pl.unit[e.proc]].moving {
			out = append(out, g.procs[e.proc].key.PID)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func apList(roots []int32) string {
	parts := make([]string, len(roots))
	for i, r := range roots {
		parts[i] = fmt.Sprintf("AP %d", r)
	}
	switch len(parts) {
	case 1:
		return parts[0]
	case 2:
		return parts[0] + " and " + parts[1]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

func moveFileReason(moving []int32, written bool) string {
	switch {
	case len(moving) == 1 && written:
		return fmt.Sprintf("used only by %s, which writes it", apList(moving))
	case len(moving) == 1:
		return fmt.Sprintf("read only by %s", apList(moving))
	case written:
		return fmt.Sprintf("write-shared by %s (Model 2): they all move", apList(moving))
	}
	return fmt.Sprintf("read by %s, which all move", apList(moving))
}

func verb(write bool) string {
	if write {
		return "writes"
	}
	return "reads"
}

// apReason is one sentence: why this AP moves, naming the AP it depends on.
func (pl *Plan) apReason(u int32) string {
	g := pl.g
	un := &pl.units[u]
	root := g.procs[un.root].key
	if u == 0 {
		if pl.ProcessOnly {
			return fmt.Sprintf("AP %d is the process you asked to move (--process-only)", root.PID)
		}
		return fmt.Sprintf("AP %d is the AP you asked to move", root.PID)
	}
	c := un.cause
	if c.Via == "port" {
		return pl.portReason(root, c)
	}
	subject := "it"
	if c.Proc != root {
		subject = fmt.Sprintf("its process %d (%s)", c.Proc.PID, g.name(g.byKey[c.Proc]))
	}
	by := fmt.Sprintf("AP %d (moving)", c.ByAP)
	if c.ByProc != g.procs[pl.units[c.byUnit].root].key {
		by = fmt.Sprintf("process %d (%s) of AP %d (moving)", c.ByProc.PID, g.name(g.byKey[c.ByProc]), c.ByAP)
	}
	return fmt.Sprintf("AP %d moves because %s %s %s, which %s %s", root.PID, subject, verb(c.ProcWrites), quotePath(c.Path), by, verb(c.ByWrites))
}

func (pl *Plan) procReason(p int32) string {
	g := pl.g
	u := pl.unit[p]
	un := &pl.units[u]
	rootPID := g.procs[un.root].key.PID
	switch {
	case u == 0 && p == un.root:
		return "the process you asked to move"
	case u == 0:
		return fmt.Sprintf("descendant of %d, in the AP you asked to move", rootPID)
	case p == un.root:
		return "root of " + pl.apReason(u)
	}
	return fmt.Sprintf("in AP %d: %s", rootPID, pl.apReason(u))
}

// quotePath prints a path as is unless it would break a line or a
// terminal: newlines, control bytes and invalid UTF-8 get Go quoting.
func quotePath(p string) string {
	if !utf8.ValidString(p) || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Sprintf("%q", p)
	}
	return p
}
