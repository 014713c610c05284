package planner

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
)

// UnknownPIDError: no traced process ever had the pid.
type UnknownPIDError struct {
	PID       int32
	Processes int // how many processes the trace holds, to tell "wrong pid" from "empty store"
}

func (e *UnknownPIDError) Error() string {
	if e.Processes == 0 {
		return fmt.Sprintf("no process with pid %d: the trace holds no process at all (did the traced command run under `restrack run`?)", e.PID)
	}
	return fmt.Sprintf("no process with pid %d in the trace (it holds %d processes; `restrack ps` lists them)", e.PID, e.Processes)
}

// AmbiguousPIDError: the pid was reused during the trace, so it names
// several processes; the user picks one with PID@START or PID@latest.
type AmbiguousPIDError struct {
	PID        int32
	Candidates []Process
}

func (e *AmbiguousPIDError) Error() string {
	return fmt.Sprintf("pid %d was reused: %d traced processes carried it; name one as %d@START_NS or %d@latest:%s",
		e.PID, len(e.Candidates), e.PID, e.PID, listIncarnations(e.Candidates))
}

func listIncarnations(cands []Process) string {
	var b strings.Builder
	for _, c := range cands {
		state := "no exit recorded"
		if c.Exited {
			state = "exited"
		}
		fmt.Fprintf(&b, "\n  %d@%d  %s (%s)", c.Key.PID, c.Key.StartNs, strings.TrimSpace(c.Exe+" "+strings.Join(c.Argv, " ")), state)
	}
	return b.String()
}

// SpecError: a process spec that is malformed, or a command name that
// names no traced process: the caller's mistake (a usage error), not the
// trace's.
type SpecError struct{ Msg string }

func (e *SpecError) Error() string { return e.Msg }

// Resolve turns a user's process spec into a process identity: "PID" when
// the pid names one process, "PID@START_NS" for one incarnation of a reused
// pid, "PID@latest" for its most recent one, or a command name (the base
// name of the executable or of argv[0]) that names one process — or one
// process with only same-named descendants (a shell and its subshells).
func Resolve(tr *Trace, spec string) (ProcKey, error) {
	spec = strings.TrimSpace(spec)
	pidPart, startPart, hasStart := strings.Cut(spec, "@")
	pid64, err := strconv.ParseInt(pidPart, 10, 32)
	if err != nil && !hasStart && isName(spec) {
		return resolveName(tr, spec)
	}
	if err != nil || pid64 <= 0 {
		return ProcKey{}, &SpecError{fmt.Sprintf("process %q: want PID, PID@START_NS, PID@latest or a command name", spec)}
	}
	if hasStart && startPart != "latest" {
		if _, err := strconv.ParseUint(startPart, 10, 64); err != nil {
			return ProcKey{}, &SpecError{fmt.Sprintf("process %q: START_NS must be a number or \"latest\"", spec)}
		}
	}
	pid := int32(pid64)
	var cands []Process
	seen := map[ProcKey]bool{}
	for _, p := range tr.Processes {
		if p.Key.PID == pid && !seen[p.Key] {
			seen[p.Key] = true
			cands = append(cands, p)
		}
	}
	// A process seen only through its accesses is still a process.
	for _, a := range tr.Accesses {
		if a.Proc.PID == pid && !seen[a.Proc] {
			seen[a.Proc] = true
			cands = append(cands, Process{Key: a.Proc})
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].Key.StartNs < cands[j].Key.StartNs })
	if len(cands) == 0 {
		return ProcKey{}, &UnknownPIDError{PID: pid, Processes: len(tr.Processes)}
	}
	if hasStart {
		if startPart == "latest" {
			return cands[len(cands)-1].Key, nil
		}
		start, _ := strconv.ParseUint(startPart, 10, 64) // checked above
		for _, c := range cands {
			if c.Key.StartNs == start {
				return c.Key, nil
			}
		}
		return ProcKey{}, fmt.Errorf("no process with pid %d started at %d; the trace has:%s", pid, start, listIncarnations(cands))
	}
	if len(cands) > 1 {
		return ProcKey{}, &AmbiguousPIDError{PID: pid, Candidates: cands}
	}
	return cands[0].Key, nil
}

// isName: a spec that can only be a command name (it does not start with
// a digit or a sign, so a mistyped pid is reported as one).
func isName(spec string) bool {
	return spec != "" && !strings.ContainsAny(spec[:1], "0123456789+-")
}

func commandNames(p *Process) []string {
	var names []string
	if p.Exe != "" {
		names = append(names, path.Base(p.Exe))
	}
	if len(p.Argv) > 0 && p.Argv[0] != "" {
		names = append(names, path.Base(p.Argv[0]))
	}
	return names
}

// resolveName finds the process a command name means: the only process of
// that name, or the topmost of a chain of same-named ones (bash running
// bash subshells).
func resolveName(tr *Trace, name string) (ProcKey, error) {
	var matches []Process
	isMatch := map[ProcKey]bool{}
	for _, p := range tr.Processes {
		for _, n := range commandNames(&p) {
			if n == name {
				matches = append(matches, p)
				isMatch[p.Key] = true
				break
			}
		}
	}
	var top []Process
	for _, p := range matches {
		if !isMatch[p.Parent] {
			top = append(top, p)
		}
	}
	switch len(top) {
	case 0:
		return ProcKey{}, &SpecError{fmt.Sprintf("no traced process is named %q (restrack ps lists the traced processes and their pids)", name)}
	case 1:
		return top[0].Key, nil
	}
	sort.Slice(top, func(i, j int) bool { return top[i].Key.StartNs < top[j].Key.StartNs })
	return ProcKey{}, &SpecError{fmt.Sprintf("%d traced processes are named %q; name one by its pid:%s", len(top), name, listIncarnations(top))}
}
