package planner

import (
	"path/filepath"
	"sort"
	"strings"

	"github.com/restrack/restrack/trace"
)

// graph is the bipartite process↔file graph of one trace, in compressed
// adjacency form (CSR) so that building it and walking it are both linear
// in the number of aggregated accesses, with a handful of allocations.
type graph struct {
	procs  []procNode
	byKey  map[ProcKey]int32
	byPID  map[int32][]int32 // every incarnation of a pid, in start order
	kids   []int32           // children of proc i: kids[kidOff[i]:kidOff[i+1]]
	kidOff []int32

	files  []fileNode
	byPath map[string]int32 // nil until needed when the trace numbers its files

	// Each access edge is stored twice, by process and by file, rather
	// than indexed: walking an adjacency list then reads memory in order,
	// which is what keeps large traces out of cache-miss territory.
	procAdj []edge // edges of proc i: procAdj[procOff[i]:procOff[i+1]]
	procOff []int32
	fileAdj []edge // edges of file f: fileAdj[fileOff[f]:fileOff[f+1]]
	fileOff []int32

	failed []int32 // indices into Trace.Accesses of calls that only failed

	endpointAcc []int32 // indices into Trace.Accesses of network endpoints
}

type procNode struct {
	p      *Process // nil for a process only seen in accesses
	key    ProcKey
	parent int32 // -1: none traced
}

type fileNode struct {
	path    string
	ignored bool
	// An AF_UNIX socket path (someone bound or connected to it): it ties a
	// client to the server that bound it, never clients to each other.
	socket bool
	bound  bool // a traced process bound it
	// hostSocket: a socket no traced process bound, or one under a host
	// daemons' directory — the host provides it, it ties nobody.
	hostSocket bool
	// unresolved: the shim could not make the path absolute (its base was
	// deeper than PATH_MAX, unknown, or unreadable under seccomp), so the
	// name says nothing about where the file is.
	unresolved bool
	hint       uint8 // what the ops and the path say the file is (actionable.go)
}

// edge is one aggregated access that succeeded at least once.
type edge struct {
	proc, file int32
	write      bool
	makes      bool // the access can create the object: a write, bind, mkfifo… (never connect)
}

// name is a short command line for sentences and labels: the argv with
// every absolute path cut to its last element ("bash workload.sh service
// demo", "tail -n 2 service.log"), so a script reads as the script rather
// than as its interpreter, and cut to a readable length.
func (g *graph) name(i int32) string {
	return shortCommand(g.procs[i].p)
}

func shortCommand(p *Process) string {
	if p == nil {
		return "?"
	}
	argv := p.Argv
	if len(argv) == 0 {
		if p.Exe == "" {
			return "?"
		}
		argv = []string{p.Exe}
	}
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if looksLikePath(a) {
			a = filepath.Base(a)
		}
		b.WriteString(a)
		if b.Len() > maxCommand {
			break
		}
	}
	s := strings.ToValidUTF8(b.String(), "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if r := []rune(s); len(r) > maxCommand {
		s = string(r[:maxCommand-1]) + "…"
	}
	return s
}

const maxCommand = 40

// looksLikePath: an argument worth cutting to its last element. Absolute
// and ./-relative paths are; so is a plain dir/file word, but not a sed
// expression or a URL, which merely contain slashes.
func looksLikePath(a string) bool {
	if strings.HasPrefix(a, "/") || strings.HasPrefix(a, "./") || strings.HasPrefix(a, "../") {
		return len(strings.TrimRight(a, "/")) > 0
	}
	if !strings.Contains(a, "/") {
		return false
	}
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-/+@", r)) {
			return false
		}
	}
	return true
}

func (g *graph) exe(i int32) string {
	if p := g.procs[i].p; p != nil {
		if p.Exe != "" {
			return p.Exe
		}
		if len(p.Argv) > 0 {
			return p.Argv[0]
		}
	}
	return ""
}

func buildGraph(tr *Trace, rules *Rules) *graph {
	g := &graph{
		procs: make([]procNode, 0, len(tr.Processes)),
		byKey: make(map[ProcKey]int32, len(tr.Processes)),
		byPID: make(map[int32][]int32, len(tr.Processes)),
	}
	for i := range tr.Processes {
		p := &tr.Processes[i]
		if _, dup := g.byKey[p.Key]; dup {
			continue // the store should not do this; the first record wins
		}
		g.addProc(p.Key, p)
	}

	var fileOf []int32 // Trace.Files index → file node, when the trace numbers its files
	if usesFileNumbers(tr) {
		fileOf = make([]int32, len(tr.Files))
		for i := range fileOf {
			fileOf[i] = -1
		}
	} else {
		// A trace has a few accesses per distinct path; sizing the map up
		// front saves the rehashing that otherwise dominates the build.
		g.byPath = make(map[string]int32, len(tr.Accesses)/4)
	}
	implied := impliedDirs(tr)
	edges := make([]edge, 0, len(tr.Accesses))
	lastKey, lastProc := ProcKey{}, int32(-1)
	for i := range tr.Accesses {
		a := &tr.Accesses[i]
		if isEndpoint(a.Path) {
			// Not a file (endpoints.go), but its process is a node.
			if _, ok := g.byKey[a.Proc]; !ok && a.Count > 0 {
				g.addProc(a.Proc, nil)
			}
			g.endpointAcc = append(g.endpointAcc, int32(i))
			continue
		}
		if isLookup(a.Op) && (rules.NoLookups || implied[a.Path]) {
			continue
		}
		if a.Count == 0 {
			if a.Failures > 0 {
				g.failed = append(g.failed, int32(i))
			}
			continue
		}
		// The store returns a process's accesses together, so the last
		// lookup usually answers the next one without hashing.
		pi, ok := lastProc, a.Proc == lastKey && lastProc >= 0
		if !ok {
			pi, ok = g.byKey[a.Proc]
		}
		if !ok {
			// Accesses of a process the trace has no record of still count:
			// losing them would hide a dependency.
			pi = g.addProc(a.Proc, nil)
		}
		lastKey, lastProc = a.Proc, pi
		var fi int32
		if fileOf != nil {
			// Dense file numbers from the store: an array lookup, no hashing.
			if fi = fileOf[a.File-1]; fi < 0 {
				fi = g.addFile(a.Path, rules)
				fileOf[a.File-1] = fi
			}
		} else if fi, ok = g.byPath[a.Path]; !ok {
			fi = g.addFile(a.Path, rules)
			g.byPath[a.Path] = fi
		}
		if h := opHint(a.Op); h > g.files[fi].hint {
			g.files[fi].hint = h
		}
		edges = append(edges, edge{proc: pi, file: fi, write: g.edgeWrites(fi, a), makes: a.Write || makesIPC(a.Op)})
	}
	for f := range g.files {
		if fn := &g.files[f]; fn.socket && !fn.ignored {
			fn.hostSocket = !fn.bound || rules.HostSocket(fn.path)
		}
	}

	g.resolveParents()
	g.kidOff, g.kids = csr(len(g.procs), func(yield func(from int32, item int32)) {
		for i := range g.procs {
			if p := g.procs[i].parent; p >= 0 {
				yield(p, int32(i))
			}
		}
	})
	g.procOff, g.procAdj = csr(len(g.procs), func(yield func(from int32, item edge)) {
		for _, e := range edges {
			yield(e.proc, e)
		}
	})
	g.fileOff, g.fileAdj = csr(len(g.files), func(yield func(from int32, item edge)) {
		for _, e := range edges {
			yield(e.file, e)
		}
	})
	return g
}

// usesFileNumbers: every access names its file by number, so the build
// can index instead of hash. One missing number and the paths are used, so
// two spellings of one file can never become two nodes.
func usesFileNumbers(tr *Trace) bool {
	if len(tr.Files) == 0 {
		return false
	}
	for i := range tr.Accesses {
		if f := tr.Accesses[i].File; f <= 0 || int(f) > len(tr.Files) {
			return false
		}
	}
	return true
}

func (g *graph) addFile(path string, rules *Rules) int32 {
	fi := int32(len(g.files))
	g.files = append(g.files, fileNode{path: path, ignored: rules.Ignored(path), unresolved: !strings.HasPrefix(path, "/"), hint: pathHint(path)})
	return fi
}

// file finds a path's node; the path index is built on first use when the
// build did not need one (explanations are rare, plans are not).
func (g *graph) file(path string) (int32, bool) {
	if g.byPath == nil {
		g.byPath = make(map[string]int32, len(g.files))
		for i := range g.files {
			g.byPath[g.files[i].path] = int32(i)
		}
	}
	f, ok := g.byPath[path]
	return f, ok
}

// edgeWrites is the access class of an edge. For an AF_UNIX socket the
// server that binds it writes and a client that connects reads, whatever
// the shim recorded: the closure then pulls a client's server (a reader
// pulls writers) but never one client through another.
func (g *graph) edgeWrites(f int32, a *Access) bool {
	switch a.Op {
	case "bind":
		g.files[f].socket, g.files[f].bound = true, true
		return true
	case "connect":
		g.files[f].socket = true
		return false
	}
	return a.Write || isIPC(a.Op)
}

// isIPC: these ops make a path an inter-process channel. Whoever else
// opens it talks to this process, so sharing it is write-sharing whatever
// the open flags. (A switch, not a map: it runs once per access.)
func isIPC(op string) bool {
	switch op {
	case "mkfifo", "mkfifoat", "mknod", "mknodat",
		"shm_open", "mq_open", "shm_unlink", "mq_unlink", "sem_open", "sem_unlink":
		return true
	}
	return false
}

// isLookup: stat-family ops (ring access class "lookup"). The store keeps
// a lookup as a read of its op, so the op names the class.
func isLookup(op string) bool {
	switch op {
	case "stat", "lstat", "fstatat", "stat64", "lstat64", "fstatat64",
		"__xstat", "__lxstat", "__fxstatat", "__xstat64", "__lxstat64", "__fxstatat64",
		"access", "faccessat", "statx", "readlink", "readlinkat":
		return true
	}
	return false
}

// makesIPC: these ops create the channel they name, whatever the flags.
func makesIPC(op string) bool {
	switch op {
	case "bind", "mkfifo", "mkfifoat", "mknod", "mknodat":
		return true
	}
	return false
}

func (g *graph) addProc(k ProcKey, p *Process) int32 {
	i := int32(len(g.procs))
	g.procs = append(g.procs, procNode{p: p, key: k, parent: -1})
	g.byKey[k] = i
	g.byPID[k.PID] = append(g.byPID[k.PID], i)
	return i
}

// resolveParents links each process to its traced parent. The store gives
// Parent; when it could not (a parent seen only through its accesses), the
// trace package's rule picks it among every incarnation of PPID.
func (g *graph) resolveParents() {
	for _, list := range g.byPID {
		sort.Slice(list, func(a, b int) bool { return g.procs[list[a]].key.StartNs < g.procs[list[b]].key.StartNs })
	}
	for i := range g.procs {
		pn := &g.procs[i]
		if pn.p == nil {
			continue
		}
		if pn.p.Parent != (ProcKey{}) {
			if j, ok := g.byKey[pn.p.Parent]; ok && j != int32(i) {
				pn.parent = j
			}
			continue
		}
		if pn.p.PPID == 0 {
			continue
		}
		cands := g.byPID[pn.p.PPID]
		if c := trace.ParentAmong(len(cands), func(c int) uint64 { return g.procs[cands[c]].key.StartNs },
			func(c int) bool { return cands[c] == int32(i) }, pn.key); c >= 0 {
			pn.parent = cands[c]
		}
	}
}

// csr builds a compressed adjacency list of n nodes, given a generator of
// (node, item) pairs that it calls twice: once to count, once to fill.
func csr[T any](n int, each func(yield func(from int32, item T))) (off []int32, items []T) {
	off = make([]int32, n+1)
	each(func(from int32, _ T) { off[from+1]++ })
	for i := 1; i <= n; i++ {
		off[i] += off[i-1]
	}
	items = make([]T, off[n])
	fill := make([]int32, n)
	copy(fill, off[:n])
	each(func(from int32, item T) {
		items[fill[from]] = item
		fill[from]++
	})
	return off, items
}

// impliedDirs lists the paths that were only ever looked up (stat-family)
// and are directories on the way to another traced path: /tmp, stat'ed by a
// shell's cd or by sqlite canonicalising its database's name. Their
// existence follows from the files beneath them, which the plan moves or
// leaves; listed on their own they would make "/tmp" a file that moves.
// A directory that was opened, listed or changed stays a file of the plan.
// nil when there is none (the common trace without lookups costs one pass
// over the accesses and no hashing).
func impliedDirs(tr *Trace) map[string]bool {
	var lookupOnly map[string]bool
	for i := range tr.Accesses {
		if a := &tr.Accesses[i]; a.Count > 0 && isLookup(a.Op) {
			if lookupOnly == nil {
				lookupOnly = map[string]bool{}
			}
			lookupOnly[a.Path] = true
		}
	}
	if lookupOnly == nil {
		return nil
	}
	for i := range tr.Accesses {
		if a := &tr.Accesses[i]; a.Count > 0 && !isLookup(a.Op) && lookupOnly[a.Path] {
			delete(lookupOnly, a.Path)
		}
	}
	implied := map[string]bool{}
	seen := map[string]bool{}
	for i := range tr.Accesses {
		path := tr.Accesses[i].Path
		if tr.Accesses[i].Count == 0 || seen[path] || isEndpoint(path) {
			continue
		}
		seen[path] = true
		for dir := path; ; {
			j := strings.LastIndexByte(dir, '/')
			if j <= 0 {
				break
			}
			dir = dir[:j]
			if lookupOnly[dir] {
				implied[dir] = true
			}
		}
	}
	return implied
}
