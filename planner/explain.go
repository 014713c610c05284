package planner

import (
	"fmt"
	"slices"
)

// Chain is the explanation of one moving AP, root pid first: one sentence per
// link, from the AP back to the one the user asked to move. Every link names
// the file and the already-moving AP that pulled the next one in.
func (pl *Plan) chain(u int32) []string {
	var lines []string
	for steps := 0; steps <= len(pl.units); steps++ {
		lines = append(lines, pl.apReason(u)+".")
		if u == 0 {
			break
		}
		u = pl.units[u].cause.byUnit
	}
	return lines
}

// ExplainProcess says why process k moves, as a chain of sentences ending at
// the requested AP, or why it stays. An unknown process is an error.
func (pl *Plan) ExplainProcess(k ProcKey) ([]string, error) {
	g := pl.g
	p, ok := g.byKey[k]
	if !ok {
		return nil, fmt.Errorf("no process with pid %d started at %d in the trace", k.PID, k.StartNs)
	}
	u := pl.unit[p]
	un := &pl.units[u]
	root := g.procs[un.root].key.PID
	who := fmt.Sprintf("process %d (%s)", k.PID, g.name(p))
	if !un.moving {
		lines := []string{fmt.Sprintf("%s stays: its AP %d shares no written file with a moving AP.", who, root)}
		if reads := pl.copiesFor(u); len(reads) > 0 {
			lines = append(lines, fmt.Sprintf("AP %d reads files that move with a copy left for it (Model 1): %s.", root, joinPaths(reads, 5)))
		}
		return lines, nil
	}
	var first string
	switch {
	case u == 0 && p == un.root:
		first = fmt.Sprintf("%s moves: it is the process you asked to move.", who)
	case u == 0:
		first = fmt.Sprintf("%s moves: it descends from %d, the AP you asked to move.", who, root)
	case un.lone:
		first = fmt.Sprintf("%s moves alone as AP %d: it is an ancestor of the AP you asked to move, so its subtree does not come with it.", who, root)
	case p == un.root:
		first = fmt.Sprintf("%s moves: it is the root of AP %d.", who, root)
	default:
		first = fmt.Sprintf("%s moves: it belongs to AP %d (the subtree of %d %s).", who, root, root, g.name(un.root))
	}
	return append([]string{first}, pl.chain(u)...), nil
}

// ExplainFile says what the plan does with path and why: moved (with the
// chain of every moving AP that uses it), copied, ignored, or untouched.
func (pl *Plan) ExplainFile(path string) ([]string, error) {
	g := pl.g
	f, ok := g.file(path)
	if !ok {
		for _, ai := range g.failed {
			if pl.trace.Accesses[ai].Path == path {
				return []string{fmt.Sprintf("%s is in no plan: every call on it failed, and a failed call creates no dependency (--show-failed lists them).", quotePath(path))}, nil
			}
		}
		return nil, fmt.Errorf("no traced process used %s", quotePath(path))
	}
	qp := quotePath(path)
	if g.files[f].ignored {
		return []string{fmt.Sprintf("%s is ignored: the ignore rules (%v) say the host provides it, so it creates no dependency.", qp, pl.IgnoreRules)}, nil
	}
	if g.files[f].hostSocket {
		return []string{fmt.Sprintf("%s is a socket the host provides: %s.", qp, pl.hostSocket(f).Reason)}, nil
	}
	moving, staying, written := pl.fileUsers(f)
	if pl.first[f] < 0 {
		return []string{fmt.Sprintf("%s stays: no moving process uses it (it is used by %s).", qp, apList(staying))}, nil
	}
	var lines []string
	if len(staying) == 0 {
		lines = append(lines, fmt.Sprintf("%s moves: %s.", qp, moveFileReason(moving, written)))
	} else {
		lines = append(lines, fmt.Sprintf("%s moves and a copy stays for %s: every AP that shares it only reads it (Model 1).", qp, apList(staying)))
	}
	// The chain of each moving AP that uses the file, without repeating
	// the links they share.
	seen := map[string]bool{}
	var users []int32
	for _, e := range g.fileAdj[g.fileOff[f]:g.fileOff[f+1]] {
		if u := pl.unit[e.proc]; pl.units[u].moving && !slices.Contains(users, u) {
			users = append(users, u)
		}
	}
	for _, u := range users {
		for _, l := range pl.chain(u) {
			if !seen[l] {
				seen[l] = true
				lines = append(lines, l)
			}
		}
	}
	return lines, nil
}

// copiesFor lists the copied files a staying AP reads.
func (pl *Plan) copiesFor(u int32) []string {
	var out []string
	root := pl.g.procs[pl.units[u].root].key.PID
	for _, c := range pl.CopyFiles {
		if slices.Contains(c.ForPIDs, root) {
			out = append(out, c.Path)
		}
	}
	return out
}

func joinPaths(ps []string, max int) string {
	s := ""
	for i, p := range ps {
		if i == max {
			return s + fmt.Sprintf(" and %d more", len(ps)-max)
		}
		if i > 0 {
			s += ", "
		}
		s += quotePath(p)
	}
	return s
}
