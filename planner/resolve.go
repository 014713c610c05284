package planner

import (
	"fmt"
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
	return fmt.Sprintf("no process with pid %d in the trace (it holds %d processes; `restrack events --json` lists them)", e.PID, e.Processes)
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

// Resolve turns a user's process spec into a process identity: "PID" when
// the pid names one process, "PID@START_NS" for one incarnation of a reused
// pid, "PID@latest" for its most recent one.
func Resolve(tr *Trace, spec string) (ProcKey, error) {
	pidPart, startPart, hasStart := strings.Cut(strings.TrimSpace(spec), "@")
	pid64, err := strconv.ParseInt(pidPart, 10, 32)
	if err != nil || pid64 <= 0 {
		return ProcKey{}, fmt.Errorf("process %q: want PID, PID@START_NS or PID@latest", spec)
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
		start, err := strconv.ParseUint(startPart, 10, 64)
		if err != nil {
			return ProcKey{}, fmt.Errorf("process %q: START_NS must be a number or \"latest\"", spec)
		}
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
