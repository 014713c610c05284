package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/ring"
)

func init() {
	register("events", "print the stored events (JSON Lines with --json)", func(args []string) int {
		return runEvents(args, os.Stdout, os.Stderr)
	})
}

// eventJSON is one line of `restrack events --json` (design §11: a stable
// contract). Paths are JSON strings; a path that is not valid UTF-8 cannot
// be one losslessly, so it is also given byte-exact in base64 (path_b64,
// path2_b64), while path keeps a readable form with U+FFFD in place of
// the bad bytes. Newlines and other control bytes are ordinary JSON escapes.
type eventJSON struct {
	Op       string `json:"op"`
	Access   string `json:"access"`
	Path     string `json:"path"`
	PathB64  string `json:"path_b64,omitempty"`
	Path2    string `json:"path2,omitempty"`
	Path2B64 string `json:"path2_b64,omitempty"`
	Flags    uint32 `json:"flags"`
	Mode     uint32 `json:"mode"`
	Result   int32  `json:"result"`
	PID      int32  `json:"pid"`
	PPID     int32  `json:"ppid"`
	TID      int32  `json:"tid"`
	TimeNs   uint64 `json:"time_ns"`
	StartNs  uint64 `json:"start_ns"`
	Source   string `json:"source,omitempty"` // "ring", "fifo", "ebpf": who recorded it
	// Unresolved says why path is not absolute: "too_long" (deeper than
	// PATH_MAX), "sandboxed" (a seccomp filter forbade resolving it) or
	// "base_unknown"; empty when the path is whole.
	Unresolved string `json:"unresolved,omitempty"`
}

// unresolvedCause names why the shim could not make a path absolute.
func unresolvedCause(rflags uint16) string {
	switch {
	case rflags&ring.RFUnresolved == 0:
		return ""
	case rflags&ring.RFTooLong != 0:
		return "too_long"
	case rflags&ring.RFSandboxed != 0:
		return "sandboxed"
	}
	return "base_unknown"
}

func accessName(a uint8) string {
	switch a {
	case ring.AccessRead:
		return "read"
	case ring.AccessWrite:
		return "write"
	case ring.AccessLookup:
		return "lookup"
	}
	return "none"
}

func runEvents(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restrack events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	storeDir := fs.String("store", "./restrack-data", "store `DIR`")
	asJSON := fs.Bool("json", false, "JSON Lines, one event per line (the stable format, docs/store.md)")
	pid := fs.Int("pid", 0, "only events of process `N`")
	glob := fs.String("path", "", "only events whose path or second path matches `GLOB` (* also matches /)")
	all := fs.Bool("all", false, "also context-only events (fork, chdir: access \"none\")")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: restrack events [flags]\n\nPrints the stored raw events in the order they were collected.\n\n")
		fs.PrintDefaults()
	}
	if code, ok := parseNoArgs(fs, args); !ok {
		return code
	}
	if *pid < 0 || *pid > 1<<31-1 {
		fmt.Fprintf(stderr, "restrack events: --pid %d is not a process id\n", *pid)
		return 2
	}
	st, err := store.Open(*storeDir, store.Options{ReadOnly: true})
	if err != nil {
		fmt.Fprintf(stderr, "restrack events: %v\n", err)
		return 1
	}
	defer st.Close()

	out := bufio.NewWriterSize(stdout, 256<<10)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	prog := newProgress(stderr, "events")
	var line []byte
	err = st.Events(context.Background(), store.EventFilter{PID: int32(*pid), PathGlob: *glob, All: *all}, func(e *store.Event) error {
		prog.tick()
		if *asJSON {
			j := eventJSON{Op: e.Op.String(), Access: accessName(e.Access), Path: e.Path, Path2: e.Path2,
				Flags: e.Flags, Mode: e.Mode, Result: e.Result, PID: e.PID, PPID: e.PPID, TID: e.TID,
				TimeNs: e.TimeNs, StartNs: e.StartNs, Source: e.Source, Unresolved: unresolvedCause(e.RFlags)}
			if !utf8.ValidString(e.Path) {
				j.PathB64 = base64.StdEncoding.EncodeToString([]byte(e.Path))
			}
			if !utf8.ValidString(e.Path2) {
				j.Path2B64 = base64.StdEncoding.EncodeToString([]byte(e.Path2))
			}
			return enc.Encode(&j)
		}
		line = line[:0]
		line = strconv.AppendUint(line, e.TimeNs, 10)
		line = fmt.Appendf(line, " %d/%d %-10s %-5s %4d ", e.PID, e.TID, e.Op, accessName(e.Access), e.Result)
		line = appendPath(line, e.Path)
		if cause := unresolvedCause(e.RFlags); cause != "" {
			line = append(line, " (unresolved: "+cause+")"...)
		}
		if e.Path2 != "" {
			line = append(line, " -> "...)
			line = appendPath(line, e.Path2)
		}
		line = append(line, '\n')
		_, err := out.Write(line)
		return err
	})
	prog.done()
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		fmt.Fprintf(stderr, "restrack events: %v\n", err)
		return 1
	}
	return 0
}

// appendPath writes a path as is when it is plain printable UTF-8, else Go-
// quoted so that a newline or a bad byte cannot fake another line.
func appendPath(b []byte, p string) []byte {
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError || r == '"' {
			return strconv.AppendQuote(b, p)
		}
	}
	return append(b, p...)
}

// progress prints "N events…" on stderr during a long export, only when
// stderr is a terminal, and only after a second (short exports stay quiet).
type progress struct {
	w     io.Writer
	what  string
	on    bool
	n     uint64
	start time.Time
	next  time.Time
	shown bool
}

func newProgress(w io.Writer, what string) *progress {
	now := time.Now()
	return &progress{w: w, what: what, on: isTerminal(w), start: now, next: now.Add(time.Second)}
}

func (p *progress) tick() {
	p.n++
	if !p.on || p.n%4096 != 0 {
		return
	}
	if now := time.Now(); now.After(p.next) {
		fmt.Fprintf(p.w, "\r%d %s… (%.0f/s)", p.n, p.what, float64(p.n)/now.Sub(p.start).Seconds())
		p.next = now.Add(250 * time.Millisecond)
		p.shown = true
	}
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprintf(p.w, "\r%d %s.            \n", p.n, p.what)
	}
}
