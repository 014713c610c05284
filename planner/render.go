package planner

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the plan as one indented JSON object (design §11).
func (pl *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(pl)
}

// WriteTable writes the plan for a person: what moves and why, what is
// copied for whom, and what was ignored.
func (pl *Plan) WriteTable(w io.Writer) error {
	bw := &errWriter{w: w}
	scope := "with its descendants"
	if pl.ProcessOnly {
		scope = "alone (--process-only)"
	}
	bw.printf("Migration plan for AP %d (%s), %s\n", pl.AP.PID, pl.AP.Command, scope)
	if pl.DroppedEvents > 0 {
		bw.printf("WARNING: incomplete: %d events were lost while tracing; a dependency may be missing.\n", pl.DroppedEvents)
	}
	if n := len(pl.UnresolvedFiles); n > 0 {
		bw.printf("WARNING: incomplete: %s could not be made absolute while tracing (deeper than PATH_MAX, or its base was unreadable); they are listed as recorded: %s\n",
			count(n, "path", "paths"), strings.Join(quoteAll(pl.UnresolvedFiles), ", "))
	}
	bw.printf("Summary: moving %s (%s), %s outright and %s with a copy left behind.\n",
		count(len(pl.APs), "AP", "APs"), count(len(pl.MoveProcesses), "process", "processes"),
		count(len(pl.MoveFiles), "file", "files"), count(len(pl.CopyFiles), "file", "files"))

	bw.printf("\nAPs that move (%d): an AP is a process and its descendants, named by its root pid\n", len(pl.APs))
	pl.writeAPs(bw, true)
	pl.writeAPs(bw, false)

	// One row per AP and program, so a shell loop's hundred `sleep`s read
	// as one line; --json lists every process.
	bw.printf("\nProcesses that move (%d), by AP and program (--json lists each one)\n", len(pl.MoveProcesses))
	tw := tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  AP\tCOUNT\tPIDS\tCOMMAND\n")
	for _, grp := range pl.processGroups() {
		count := strconv.Itoa(len(grp.pids))
		if grp.exited > 0 {
			count += fmt.Sprintf(" (%d exited)", grp.exited)
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", grp.ap, count, pidSample(grp.pids, 5), grp.command)
	}
	tw.Flush()

	bw.printf("\nFiles that move (%d)\n", len(pl.MoveFiles))
	tw = tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
	if len(pl.MoveFiles) > 0 {
		fmt.Fprintf(tw, "  PATH\tKIND\tSIZE\tWHY\n")
	}
	for _, f := range pl.MoveFiles {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", quotePath(f.Path), f.Kind, f.sizeText(), f.Reason)
	}
	tw.Flush()

	bw.printf("\nFiles that move with a copy left behind (%d): only read by everyone sharing them (Model 1)\n", len(pl.CopyFiles))
	tw = tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
	if len(pl.CopyFiles) > 0 {
		fmt.Fprintf(tw, "  PATH\tKIND\tSIZE\tCOPY STAYS FOR APs\n")
	}
	for _, f := range pl.CopyFiles {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", quotePath(f.Path), f.Kind, f.sizeText(), joinPIDs(f.ForPIDs))
	}
	tw.Flush()

	if len(pl.RecreateFiles) > 0 {
		bw.printf("\nIPC objects (%d): never copied, their process makes them again at the target\n", len(pl.RecreateFiles))
		tw = tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  PATH\tKIND\tAPs\n")
		for _, f := range pl.RecreateFiles {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", quotePath(f.Path), f.Kind, joinPIDs(f.APs))
		}
		tw.Flush()
	}

	if pl.Failed != nil {
		bw.printf("\nFailed calls of moving processes (%d): they create no dependency\n", len(pl.Failed))
		tw = tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
		if len(pl.Failed) > 0 {
			fmt.Fprintf(tw, "  PID\tOP\tFAILURES\tPATH\n")
		}
		for _, f := range pl.Failed {
			fmt.Fprintf(tw, "  %d\t%s\t%d\t%s\n", f.PID, f.Op, f.Failures, quotePath(f.Path))
		}
		tw.Flush()
	}

	pl.writeEndpointTables(bw)

	if len(pl.HostSockets) > 0 {
		bw.printf("\nSockets the host provides (%d): host daemons' AF_UNIX sockets; the target host must offer them, they tie nobody\n", len(pl.HostSockets))
		for _, h := range pl.HostSockets {
			bw.printf("  %s\n", quotePath(h.Path))
		}
	}

	bw.printf("\nIgnored paths the moving processes used (%d): host-provided, not moved (rules: %s)\n",
		len(pl.IgnoredFiles), strings.Join(pl.IgnoreRules, ", "))
	for _, p := range pl.IgnoredFiles {
		bw.printf("  %s\n", quotePath(p))
	}
	bw.printf("\nWhy is something here? restrack explain --ap %d --pid PID | --file PATH\n", pl.AP.PID)
	return bw.err
}

// writeAPs lists the live moving APs (something to stop and start) or the
// exited ones (history: their files move, nothing runs).
func (pl *Plan) writeAPs(bw *errWriter, live bool) {
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
		bw.printf("  Live (%d, %s): stop here, start at the target\n", len(aps), source)
	} else {
		bw.printf("  Exited (%d): history, their files move but nothing runs\n", len(aps))
	}
	tw := tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  AP\tPROCESSES\tCOMMAND\tWHY\n")
	for _, a := range aps {
		label := a.Label
		if a.LabelPID != a.Root {
			label += fmt.Sprintf(" (pid %d; root %s exited)", a.LabelPID, a.Command)
		}
		fmt.Fprintf(tw, "  %d\t%d\t%s\t%s\n", a.Root, len(a.Processes), label, a.Reason)
	}
	tw.Flush()
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

// WriteDOT writes a Graphviz picture of the plan: the moving APs and every
// file they use (ignored ones aside), the staying APs that share those files,
// and an edge per AP and file (AP → file writes, file → AP reads). What moves
// is filled and grouped in one cluster.
func (pl *Plan) WriteDOT(w io.Writer) error {
	g := pl.g
	bw := &errWriter{w: w}
	bw.printf("digraph restrack_plan {\n")
	bw.printf("  graph [rankdir=LR, fontname=\"Helvetica\", label=%s, labelloc=t];\n",
		dotQuote(fmt.Sprintf("restrack plan: move AP %d (%s)%s", pl.AP.PID, pl.AP.Command, incompleteNote(pl))))
	bw.printf("  node [fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n")

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
	type apEdge struct {
		unit, file int32
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
			rw[apEdge{u, fr.id}] |= bit
			if !pl.units[u].moving && !seenUnit[u] {
				seenUnit[u] = true
				staying = append(staying, u)
			}
		}
	}
	sort.Slice(staying, func(i, j int) bool { return pl.units[staying[i]].root < pl.units[staying[j]].root })

	apNode := func(indent string, u int32, attrs string) {
		un := &pl.units[u]
		root := g.procs[un.root].key.PID
		label := fmt.Sprintf("AP %d\n%s\n%d process%s", root, g.name(un.root), len(un.members), map[bool]string{true: "es"}[len(un.members) != 1])
		if u == 0 {
			label += "\n(requested)"
		}
		bw.printf("%sap%d [shape=box, style=\"rounded,filled\", %s, label=%s];\n", indent, u, attrs, dotQuote(label))
	}
	bw.printf("  subgraph cluster_moving {\n    label=\"moves\"; style=filled; color=\"#fde2c8\"; fontcolor=\"#8a3b00\";\n")
	for _, u := range pl.order {
		attrs := "fillcolor=\"#f4a261\""
		if u == 0 {
			attrs = "fillcolor=\"#e76f51\", penwidth=2"
		}
		apNode("    ", u, attrs)
	}
	for _, fr := range files {
		if !fr.copy {
			bw.printf("    f%d [shape=note, style=filled, fillcolor=\"#ffd6a5\", label=%s];\n", fr.id, dotQuote(g.files[fr.id].path))
		}
	}
	bw.printf("  }\n")
	for _, fr := range files {
		if fr.copy {
			bw.printf("  f%d [shape=note, style=\"filled,dashed\", fillcolor=\"#e9f5db\", label=%s];\n", fr.id, dotQuote(g.files[fr.id].path+"\n(moves, copy stays)"))
		}
	}
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
		return g.files[a.file].path < g.files[b.file].path
	})
	for _, k := range keys {
		if rw[k]&2 != 0 {
			bw.printf("  ap%d -> f%d [label=\"writes\", color=\"#c0392b\", penwidth=1.5];\n", k.unit, k.file)
		}
		if rw[k]&1 != 0 {
			bw.printf("  f%d -> ap%d [label=\"reads\", color=\"#2e6f9e\"];\n", k.file, k.unit)
		}
	}
	pl.writeEndpointDOT(bw)
	if n := len(pl.HostSockets); n > 0 {
		bw.printf("  host_sockets [shape=plaintext, fontcolor=\"#777777\", label=%s];\n",
			dotQuote(fmt.Sprintf("%d host daemons' sockets used (restrack plan lists them)", n)))
	}
	if n := len(pl.IgnoredFiles); n > 0 {
		bw.printf("  ignored [shape=plaintext, fontcolor=\"#777777\", label=%s];\n",
			dotQuote(fmt.Sprintf("%d host-provided paths ignored (restrack plan lists them)", n)))
	}
	bw.printf("}\n")
	return bw.err
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
	ap      int32
	exe     string
	command string
	pids    []int32
	exited  int
}

// processGroups groups the moving processes by AP (in the order the APs
// joined the plan) and executable (in order of first pid).
func (pl *Plan) processGroups() []processGroup {
	type key struct {
		ap  int32
		exe string
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
		k := key{p.AP, p.Exe}
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, processGroup{ap: p.AP, exe: p.Exe, command: shortCommand(&Process{Exe: p.Exe, Argv: p.Argv})})
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
