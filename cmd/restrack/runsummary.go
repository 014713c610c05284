package main

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/restrack/restrack/collector"
)

// runSummary is what restrack run says when it ends: on stderr, one line
// (and a warning with the remedy for each problem), or with --json one
// JSON object as the last line of stderr — stdout is CMD's.
type runSummary struct {
	RootPID    int      `json:"root_pid"`
	Command    []string `json:"command"`
	ExitStatus int      `json:"exit_status"`
	Store      string   `json:"store"`
	Records    uint64   `json:"records_stored"`
	Lost       uint64   `json:"records_lost"`
	LostFull   uint64   `json:"lost_ring_full"`
	LostTooBig uint64   `json:"lost_too_big"`
	Abandoned  uint64   `json:"lost_abandoned"`
	Corrupted  uint64   `json:"lost_corrupted"`
	// Descendants still running when restrack run returned (--no-wait, or
	// waiting interrupted): their further calls are not traced.
	DescendantsLeft int `json:"descendants_left"`
	// Untraced lists programs the trace shows were executed but that the
	// shim cannot follow (static, Go, setuid).
	Untraced []untracedExec `json:"untraced_programs"`
	Warnings []string       `json:"warnings"`
	// FailedOnLoss: --fail-on-loss turned a lossy run into exit status 125.
	FailedOnLoss bool `json:"failed_on_loss,omitempty"`
}

type untracedExec struct {
	PID    int32  `json:"pid"` // the process that executed it; 0 for CMD itself
	Path   string `json:"path"`
	Reason string `json:"reason"` // "static", "go", "setuid"
}

// programKind tells why the shim cannot trace a program, or "" when it
// can (or when the file is gone or not ELF: an interpreter's script is
// traced through its interpreter).
func programKind(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	// The loader runs a program that changes its uid or gid in secure
	// mode: it drops LD_PRELOAD, so the program and everything it starts
	// go untraced.
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if fi.Mode()&os.ModeSetuid != 0 && int(st.Uid) != os.Geteuid() ||
			fi.Mode()&os.ModeSetgid != 0 && int(st.Gid) != os.Getegid() {
			return "setuid"
		}
	}
	f, err := elf.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	// Go programs make their system calls without libc, dynamic or not.
	if f.Section(".go.buildinfo") != nil {
		return "go"
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return ""
		}
	}
	if f.Type == elf.ET_EXEC || f.Type == elf.ET_DYN {
		return "static"
	}
	return ""
}

var untracedWhy = map[string]string{
	"static": "a statically linked program: no dynamic loader, so no LD_PRELOAD shim",
	"go":     "a Go program: it calls the kernel without libc, past the shim",
	"setuid": "a set-uid/set-gid program: the loader drops LD_PRELOAD, so it and its whole subtree go untraced",
}

// findUntraced lists the programs of this run the shim could not follow:
// CMD itself, and every program a traced process executed (the exec
// accesses in the trace). Each path is checked once.
func findUntraced(cmdPath string, progs []collector.Program) []untracedExec {
	var out []untracedExec
	seen := map[string]bool{}
	check := func(pid int32, path string) {
		if seen[path] {
			return
		}
		seen[path] = true
		if k := programKind(path); k != "" {
			out = append(out, untracedExec{PID: pid, Path: path, Reason: k})
		}
	}
	check(0, cmdPath)
	for _, p := range progs {
		check(p.PID, p.Path)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

// warnings turns the summary into sentences that say what to do.
func (s *runSummary) warnings(ringSize uint64) []string {
	var w []string
	if s.Lost > 0 {
		var causes []string
		if s.LostFull > 0 {
			causes = append(causes, fmt.Sprintf("%d while the ring was full", s.LostFull))
		}
		if s.LostTooBig > 0 {
			causes = append(causes, fmt.Sprintf("%d too big for the ring", s.LostTooBig))
		}
		if s.Abandoned > 0 {
			causes = append(causes, fmt.Sprintf("%d abandoned by a dying process", s.Abandoned))
		}
		if s.Corrupted > 0 {
			causes = append(causes, fmt.Sprintf("%d corrupted", s.Corrupted))
		}
		w = append(w, fmt.Sprintf("%d records were lost (%s): the trace is incomplete and a plan may miss a dependency; "+
			"run again with a bigger ring (--ring-size %d) or a shorter --drain-interval", s.Lost, strings.Join(causes, ", "), ringSize*4))
	}
	cmdUntraced := false
	for _, u := range s.Untraced {
		who := fmt.Sprintf("process %d ran %s", u.PID, u.Path)
		if u.PID == 0 {
			who = "the command " + u.Path + " is"
			cmdUntraced = true
		} else {
			who += ","
		}
		remedy := "trace it from the kernel with --mode ebpf (root)"
		if u.Reason == "setuid" {
			remedy = "run it as its owner, or trace it with --mode ebpf (root)"
		}
		w = append(w, fmt.Sprintf("%s %s: %s", who, untracedWhy[u.Reason], remedy))
	}
	if s.Records == 0 && !cmdUntraced {
		w = append(w, "nothing was traced: CMD may have cleared LD_PRELOAD, or be a static or Go program; "+
			"check with RESTRACK_DEBUG=1, or trace from the kernel with --mode ebpf (root)")
	}
	if s.DescendantsLeft > 0 {
		w = append(w, fmt.Sprintf("%d descendants were still running when restrack returned: what they do from now on is not traced "+
			"(without --no-wait restrack waits for them, like strace -f)", s.DescendantsLeft))
	}
	return w
}

// print writes the summary: warnings first, the one summary line last.
func (s *runSummary) print(w io.Writer, asJSON bool) {
	if asJSON {
		b, _ := json.Marshal(s)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	for _, m := range s.Warnings {
		fmt.Fprintf(w, "restrack run: WARNING: %s\n", m)
	}
	fmt.Fprintf(w, "restrack run: traced pid %d (%s): %d records stored in %s, %d lost; next: restrack ps --store %s\n",
		s.RootPID, commandName(s.Command), s.Records, s.Store, s.Lost, shellQuote(s.Store))
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./+:@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// finalStatus is restrack run's exit status. It stays CMD's (design §11:
// scripts rely on it); --fail-on-loss makes a successful CMD whose trace
// is wrong — records lost, or nothing traced — exit 125, restrack's own
// failure status, which CMD's statuses rarely use (env(1), docker).
func (s *runSummary) finalStatus(failOnLoss bool) int {
	if failOnLoss && s.ExitStatus == 0 && (s.Lost > 0 || s.Records == 0) {
		s.FailedOnLoss = true
		return exitRunFailed
	}
	return s.ExitStatus
}

// waitDescendants waits, once CMD has exited, until none of its
// descendants is left (they are restrack's children: subreaper). A signal
// is passed on to them; a second INT, TERM, QUIT or HUP stops the wait.
// It returns how many were still running when it stopped.
func waitDescendants(sigs <-chan os.Signal, ttyForeground bool, stderr io.Writer) int {
	done := make(chan struct{})
	go func() {
		reapChildren()
		close(done)
	}()
	select {
	case <-done:
		return 0
	case <-time.After(200 * time.Millisecond):
	}
	pids, _ := childPIDs()
	fmt.Fprintf(stderr, "restrack run: the command exited; waiting for %d descendants still running (pids %s; --no-wait does not wait; a second Ctrl-C stops waiting)\n",
		len(pids), joinInts(pids, 8))
	stops := 0
	for {
		select {
		case <-done:
			return 0
		case s := <-sigs:
			if !ttyForeground || (s != syscall.SIGINT && s != syscall.SIGQUIT) {
				pids, _ := childPIDs()
				for _, pid := range pids {
					_ = syscall.Kill(pid, s.(syscall.Signal))
				}
			}
			switch s {
			case syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGHUP:
				if stops++; stops >= 2 {
					pids, _ := childPIDs()
					return len(pids)
				}
			}
		}
	}
}

func joinInts(v []int, max int) string {
	var parts []string
	for i, n := range v {
		if i == max {
			parts = append(parts, fmt.Sprintf("+%d more", len(v)-max))
			break
		}
		parts = append(parts, strconv.Itoa(n))
	}
	return strings.Join(parts, ", ")
}

// commandName is CMD's program name, for the summary line (the whole
// command line is in --json).
func commandName(argv []string) string {
	if len(argv) == 0 {
		return "?"
	}
	return string(appendPath(nil, filepath.Base(argv[0])))
}
