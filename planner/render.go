package planner

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// WriteJSON writes the plan as one indented JSON object (design §11).
func (pl *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(pl)
}

// WriteTable writes the plan for a person with no width limit: one row a
// line (what a program that post-processes the table wants).
func (pl *Plan) WriteTable(w io.Writer) error { return pl.WriteTableWidth(w, 0) }

// WriteTableWidth writes the plan for a person — what moves and why, what
// is copied for whom, and what was ignored — in lines of at most width
// columns (0: no limit): long paths lose their middle, reasons go on
// their own lines and wrap. --json has every path whole.
func (pl *Plan) WriteTableWidth(w io.Writer, width int) error {
	if width <= 0 {
		width = math.MaxInt32
	}
	width = max(width, 60)
	bw := &errWriter{w: w}
	para := func(format string, args ...any) {
		bw.printf("%s", wrapText(fmt.Sprintf(format, args...), width, "    "))
	}
	scope := "with its descendants"
	if pl.ProcessOnly {
		scope = "alone (--process-only)"
	}
	para("Migration plan for AP %d (%s), %s", pl.AP.PID, pl.AP.Command, scope)
	if pl.DroppedEvents > 0 {
		para("WARNING: incomplete: %d events were lost while tracing; a dependency may be missing.", pl.DroppedEvents)
	}
	if n := len(pl.UnresolvedFiles); n > 0 {
		para("WARNING: incomplete: %s could not be made absolute while tracing (deeper than PATH_MAX, or its base was unreadable); they are listed as recorded: %s",
			count(n, "path", "paths"), strings.Join(quoteAll(pl.UnresolvedFiles), ", "))
	}
	para("Summary: moving %s (%s), %s outright and %s with a copy left behind.",
		count(len(pl.APs), "AP", "APs"), count(len(pl.MoveProcesses), "process", "processes"),
		count(len(pl.MoveFiles), "file", "files"), count(len(pl.CopyFiles), "file", "files"))

	bw.printf("\n")
	para("APs that move (%d): an AP is a process and its descendants, named by its root pid", len(pl.APs))
	pl.writeAPs(bw, true, width)
	pl.writeAPs(bw, false, width)

	// One row per AP and program, so a shell loop's hundred `sleep`s read
	// as one line; --json lists every process.
	bw.printf("\n")
	para("Processes that move (%d), by AP and program (--json lists each one)", len(pl.MoveProcesses))
	t := newTextTable("  ", -1, "AP", "COUNT", "PIDS", "COMMAND")
	for _, grp := range pl.processGroups() {
		count := strconv.Itoa(len(grp.pids))
		if grp.exited > 0 {
			count += fmt.Sprintf(" (%d exited)", grp.exited)
		}
		if grp.live && pl.HostChecked {
			count += " (running)"
		}
		t.row(strconv.Itoa(int(grp.ap)), count, pidSample(grp.pids, 3), grp.command)
	}
	t.write(bw, width)

	bw.printf("\n")
	para("Files that move (%d)", len(pl.MoveFiles))
	if len(pl.MoveFiles) > 0 {
		t = newTextTable("  ", 0, "PATH", "KIND", "SIZE", "WHY")
		t.stack = true
		for _, f := range pl.MoveFiles {
			t.row(quotePath(f.Path), f.Kind, f.sizeText(), f.Reason)
		}
		t.write(bw, width)
	}

	bw.printf("\n")
	para("Files that move with a copy left behind (%d): only read by everyone sharing them (Model 1)", len(pl.CopyFiles))
	if len(pl.CopyFiles) > 0 {
		t = newTextTable("  ", 0, "PATH", "KIND", "SIZE", "COPY STAYS FOR APs")
		for _, f := range pl.CopyFiles {
			t.row(quotePath(f.Path), f.Kind, f.sizeText(), joinPIDs(f.ForPIDs))
		}
		t.write(bw, width)
	}

	if len(pl.RecreateFiles) > 0 {
		bw.printf("\n")
		para("IPC objects (%d): never copied, their process makes them again at the target", len(pl.RecreateFiles))
		t = newTextTable("  ", 0, "PATH", "KIND", "APs")
		for _, f := range pl.RecreateFiles {
			t.row(quotePath(f.Path), f.Kind, joinPIDs(f.APs))
		}
		t.write(bw, width)
	}

	if pl.Failed != nil {
		bw.printf("\n")
		para("Failed calls of moving processes (%d): they create no dependency", len(pl.Failed))
		if len(pl.Failed) > 0 {
			t = newTextTable("  ", 3, "PID", "OP", "FAILURES", "PATH")
			for _, f := range pl.Failed {
				t.row(strconv.Itoa(int(f.PID)), f.Op, strconv.FormatUint(f.Failures, 10), quotePath(f.Path))
			}
			t.write(bw, width)
		}
	}

	pl.writeEndpointTables(bw, width)

	if len(pl.HostSockets) > 0 {
		bw.printf("\n")
		para("Sockets the host provides (%d): host daemons' AF_UNIX sockets; the target host must offer them, they tie nobody", len(pl.HostSockets))
		for _, h := range pl.HostSockets {
			bw.printf("  %s\n", elideMiddle(quotePath(h.Path), width-2))
		}
	}

	bw.printf("\n")
	para("Ignored paths the moving processes used (%d): host-provided, not moved (rules: %s)",
		len(pl.IgnoredFiles), strings.Join(pl.IgnoreRules, ", "))
	for _, p := range pl.IgnoredFiles {
		bw.printf("  %s\n", elideMiddle(quotePath(p), width-2))
	}
	bw.printf("\n")
	para("Why is something here? restrack explain --ap %d --pid PID | --file PATH", pl.AP.PID)
	return bw.err
}

// writeAPs lists the live moving APs (something to stop and start) or the
// exited ones (history: their files move, nothing runs).
func (pl *Plan) writeAPs(bw *errWriter, live bool, width int) {
	var aps []AP
	for _, a := range pl.APs {
		if a.Live == live {
			aps = append(aps, a)
		}
	}
	if len(aps) == 0 {
		return
	}
	source := "the trace saw no exit"
	if pl.HostChecked {
		source = "running now"
	}
	if live {
		bw.printf("%s", wrapText(fmt.Sprintf("  Live (%d, %s): stop here, start at the target", len(aps), source), width, "    "))
	} else {
		bw.printf("%s", wrapText(fmt.Sprintf("  Exited (%d): history, their files move but nothing runs", len(aps)), width, "    "))
	}
	t := newTextTable("  ", 2, "AP", "PROCESSES", "COMMAND", "WHY")
	t.stack = true
	for _, a := range aps {
		label := a.Label
		if a.LabelPID != a.Root {
			label += fmt.Sprintf(" (pid %d; root %s exited)", a.LabelPID, a.Command)
		}
		t.row(strconv.Itoa(int(a.Root)), strconv.Itoa(len(a.Processes)), label, a.Reason)
	}
	t.write(bw, width)
}

func (st FileState) sizeText() string {
	switch {
	case st.Size != nil:
		return strconv.FormatInt(*st.Size, 10)
	case st.Exists != nil && !*st.Exists:
		return "gone"
	}
	return "-"
}

// dotMaxFiles is how many file nodes a picture draws before it groups
// files by directory: past a few hundred nodes Graphviz takes minutes and
// the picture is unreadable anyway.
const dotMaxFiles = 60

// WriteDOT writes a Graphviz picture of the plan: the moving APs and every
// file they use (ignored ones aside), the staying APs that share those
// files, and an edge per AP and file (AP → file writes, file → AP reads).
// What moves — APs, files, and files that leave a copy behind — is grouped
// in one cluster; a legend explains the shapes. Past dotMaxFiles files,
// files are drawn one node per directory (as shallow as needed), and the
// title says so.
func (pl *Plan) WriteDOT(w io.Writer) error { return pl.writeDOT(w, dotMaxFiles) }

func (pl *Plan) writeDOT(w io.Writer, maxFiles int) error {
	g := pl.g
	bw := &errWriter{w: w}

	// Files in the plan, with their ids; and every AP that uses one.
	type fileRef struct {
		id   int32
		copy bool
	}
	var files []fileRef
	for f := range g.files {
		if pl.first[f] >= 0 {
			_, staying, _ := pl.fileUsers(int32(f))
			files = append(files, fileRef{int32(f), len(staying) > 0})
		}
	}
	sort.Slice(files, func(i, j int) bool { return g.files[files[i].id].path < g.files[files[j].id].path })

	// Nodes: one per file, or per directory and kind when there are too
	// many files.
	type node struct {
		label string
		copy  bool
		n     int
	}
	var nodes []node
	nodeOf := make(map[int32]int, len(files))
	grouped := len(files) > maxFiles
	if !grouped {
		for _, fr := range files {
			nodeOf[fr.id] = len(nodes)
			nodes = append(nodes, node{label: g.files[fr.id].path, copy: fr.copy, n: 1})
		}
	} else {
		type gkey struct {
			dir  string
			copy bool
		}
		depth := 0
		for _, fr := range files {
			depth = max(depth, strings.Count(g.files[fr.id].path, "/")-1)
		}
		var keys map[gkey]int
		for ; depth >= 0; depth-- {
			keys = map[gkey]int{}
			for _, fr := range files {
				keys[gkey{dirPrefix(g.files[fr.id].path, depth), fr.copy}]++
			}
			if len(keys) <= maxFiles {
				break
			}
		}
		if depth < 0 {
			depth = 0
		}
		at := map[gkey]int{}
		for _, fr := range files {
			k := gkey{dirPrefix(g.files[fr.id].path, depth), fr.copy}
			i, ok := at[k]
			if !ok {
				i = len(nodes)
				at[k] = i
				nodes = append(nodes, node{label: k.dir, copy: k.copy})
			}
			nodes[i].n++
			nodeOf[fr.id] = i
		}
	}

	type apEdge struct {
		unit int32
		node int
	}
	rw := map[apEdge]uint8{} // 1 reads, 2 writes
	var staying []int32
	seenUnit := map[int32]bool{}
	for _, fr := range files {
		for _, e := range g.fileAdj[g.fileOff[fr.id]:g.fileOff[fr.id+1]] {
			u := pl.unit[e.proc]
			bit := uint8(1)
			if e.write {
				bit = 2
			}
			rw[apEdge{u, nodeOf[fr.id]}] |= bit
			if !pl.units[u].moving && !seenUnit[u] {
				seenUnit[u] = true
				staying = append(staying, u)
			}
		}
	}
	sort.Slice(staying, func(i, j int) bool { return pl.units[staying[i]].root < pl.units[staying[j]].root })

	title := fmt.Sprintf("restrack plan: move AP %d (%s)%s", pl.AP.PID, pl.AP.Command, incompleteNote(pl))
	if grouped {
		title += fmt.Sprintf("\n%d files drawn as %d directories (over %d files); restrack plan --json lists each file", len(files), len(nodes), maxFiles)
	}
	bw.printf("digraph restrack_plan {\n")
	bw.printf("  graph [rankdir=LR, fontname=\"Helvetica\", label=%s, labelloc=t];\n", dotQuote(title))
	bw.printf("  node [fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n")

	apNode := func(indent string, u int32, attrs string) {
		un := &pl.units[u]
		root := g.procs[un.root].key.PID
		label := fmt.Sprintf("AP %d\n%s\n%d process%s", root, g.name(un.root), len(un.members), map[bool]string{true: "es"}[len(un.members) != 1])
		if u == 0 {
			label += "\n(requested)"
		}
		bw.printf("%sap%d [shape=box, style=\"rounded,filled\", %s, label=%s];\n", indent, u, attrs, dotQuote(label))
	}
	fileLabel := func(nd node) string {
		l := nd.label
		if grouped {
			l = fmt.Sprintf("%s/\n%s", strings.TrimSuffix(nd.label, "/"), count(nd.n, "file", "files"))
		}
		if nd.copy {
			l += "\n(moves, copy stays)"
		}
		return l
	}
	bw.printf("  subgraph cluster_moving {\n    label=\"moves\"; style=filled; color=\"#fde2c8\"; fontcolor=\"#8a3b00\";\n")
	for _, u := range pl.order {
		attrs := "fillcolor=\"#f4a261\""
		if u == 0 {
			attrs = "fillcolor=\"#e76f51\", penwidth=2"
		}
		apNode("    ", u, attrs)
	}
	for i, nd := range nodes {
		if nd.copy {
			bw.printf("    f%d [shape=note, style=\"filled,dashed\", fillcolor=\"#e9f5db\", label=%s];\n", i, dotQuote(fileLabel(nd)))
		} else {
			bw.printf("    f%d [shape=note, style=filled, fillcolor=\"#ffd6a5\", label=%s];\n", i, dotQuote(fileLabel(nd)))
		}
	}
	bw.printf("  }\n")
	for _, u := range staying {
		apNode("  ", u, "fillcolor=\"#e0e0e0\"")
	}
	keys := make([]apEdge, 0, len(rw))
	for k := range rw {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.unit != b.unit {
			return a.unit < b.unit
		}
		return a.node < b.node
	})
	for _, k := range keys {
		if rw[k]&2 != 0 {
			bw.printf("  ap%d -> f%d [label=\"writes\", color=\"#c0392b\", penwidth=1.5];\n", k.unit, k.node)
		}
		if rw[k]&1 != 0 {
			bw.printf("  f%d -> ap%d [label=\"reads\", color=\"#2e6f9e\"];\n", k.node, k.unit)
		}
	}
	pl.writeEndpointDOT(bw)
	var notes []string
	if n := len(pl.HostSockets); n > 0 {
		notes = append(notes, fmt.Sprintf("%d host daemons' sockets used (restrack plan lists them)", n))
	}
	if n := len(pl.IgnoredFiles); n > 0 {
		notes = append(notes, fmt.Sprintf("%d host-provided paths ignored (restrack plan lists them)", n))
	}
	writeLegend(bw, notes)
	bw.printf("}\n")
	return bw.err
}

// writeLegend draws what the shapes and colours mean, and the notes.
func writeLegend(bw *errWriter, notes []string) {
	bw.printf("  subgraph cluster_legend {\n    label=\"legend\"; style=rounded; color=\"#999999\"; fontcolor=\"#555555\"; fontsize=10;\n")
	bw.printf("    legend_req [shape=box, style=\"rounded,filled\", fillcolor=\"#e76f51\", penwidth=2, label=\"AP you asked to move\"];\n")
	bw.printf("    legend_mov [shape=box, style=\"rounded,filled\", fillcolor=\"#f4a261\", label=\"AP that moves with it\"];\n")
	bw.printf("    legend_stay [shape=box, style=\"rounded,filled\", fillcolor=\"#e0e0e0\", label=\"AP that stays\"];\n")
	bw.printf("    legend_file [shape=note, style=filled, fillcolor=\"#ffd6a5\", label=\"file that moves\"];\n")
	bw.printf("    legend_copy [shape=note, style=\"filled,dashed\", fillcolor=\"#e9f5db\", label=\"file that moves,\\na copy stays\"];\n")
	bw.printf("    legend_mov -> legend_file [label=\"writes\", color=\"#c0392b\", penwidth=1.5];\n")
	bw.printf("    legend_copy -> legend_stay [label=\"reads\", color=\"#2e6f9e\"];\n")
	for i, n := range notes {
		bw.printf("    legend_note%d [shape=plaintext, fontcolor=\"#777777\", label=%s];\n", i, dotQuote(n))
	}
	bw.printf("  }\n")
}

// dirPrefix is the directory of path cut to its first depth elements:
// "/a/b/c/f", 2 → "/a/b"; depth 0 → "/".
func dirPrefix(path string, depth int) string {
	dir := path[:max(strings.LastIndexByte(path, '/'), 0)]
	if dir == "" {
		return "/"
	}
	parts := strings.Split(dir, "/") // "", "a", "b", …
	if depth+1 < len(parts) {
		parts = parts[:depth+1]
	}
	if len(parts) == 1 {
		return "/"
	}
	return strings.Join(parts, "/")
}

// dotQuote makes a DOT double-quoted string: quotes and backslashes are
// escaped, and a newline becomes DOT's centred line break. Bytes DOT cannot
// take (control characters, invalid UTF-8) are shown Go-quoted instead.
func dotQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, line := range strings.Split(s, "\n") {
		if b.Len() > 1 {
			b.WriteString(`\n`)
		}
		if q := quotePath(line); q != line {
			line = q
		}
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(line))
	}
	b.WriteByte('"')
	return b.String()
}

type processGroup struct {
	live    bool
	ap      int32
	exe     string
	command string
	pids    []int32
	exited  int
}

// processGroups groups the moving processes by AP (in the order the APs
// joined the plan) and executable (in order of first pid).
func (pl *Plan) processGroups() []processGroup {
	// Live processes group apart from exited ones of the same program: a
	// server's row must not carry the command line of an early `postgres -V`.
	type key struct {
		ap   int32
		exe  string
		live bool
	}
	rank := map[int32]int{}
	for i, a := range pl.APs {
		if _, ok := rank[a.Root]; !ok {
			rank[a.Root] = i
		}
	}
	var out []processGroup
	at := map[key]int{}
	for _, p := range pl.MoveProcesses { // sorted by pid
		k := key{p.AP, p.Exe, p.Live}
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, processGroup{ap: p.AP, exe: p.Exe, live: p.Live, command: shortCommand(&Process{Exe: p.Exe, Argv: p.Argv})})
		}
		out[i].pids = append(out[i].pids, p.PID)
		if p.Exited {
			out[i].exited++
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return rank[out[i].ap] < rank[out[j].ap] })
	return out
}

func pidSample(pids []int32, max int) string {
	if len(pids) <= max+1 {
		return joinPIDs(pids)
	}
	return fmt.Sprintf("%s +%d more", joinPIDs(pids[:max]), len(pids)-max)
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func joinPIDs(pids []int32) string {
	parts := make([]string, len(pids))
	for i, p := range pids {
		parts[i] = strconv.Itoa(int(p))
	}
	return strings.Join(parts, ", ")
}

// errWriter keeps the first write error so rendering code stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) {
	fmt.Fprintf(e, format, args...)
}

func quoteAll(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = quotePath(p)
	}
	return out
}

// incompleteNote is the graph title's warning, naming each cause.
func incompleteNote(pl *Plan) string {
	var why []string
	if pl.DroppedEvents > 0 {
		why = append(why, fmt.Sprintf("%d events lost", pl.DroppedEvents))
	}
	if n := len(pl.UnresolvedFiles); n > 0 {
		why = append(why, count(n, "path", "paths")+" unresolved")
	}
	if len(why) == 0 {
		return ""
	}
	return " — INCOMPLETE: " + strings.Join(why, ", ")
}
