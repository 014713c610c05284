package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/ring"
	"github.com/restrack/restrack/trace"
)

func init() {
	register("events", "print the stored events (JSON Lines with --json)", func(args []string) int {
		return runEvents(args, os.Stdout, os.Stderr)
	})
}

// eventJSON is one line of `restrack events --json` (design §11: a stable
// contract). Paths are JSON strings; a path that is not valid UTF-8 cannot
// be one losslessly, so it is also given byte-exact in base64
// (path_base64, path2_base64: the names plans use; path_b64 and path2_b64
// are the same, kept for scripts written before), while path keeps a
// readable form with U+FFFD in place of the bad bytes. Newlines and other
// control bytes are ordinary JSON escapes.
type eventJSON struct {
	Op          string `json:"op"`
	Access      string `json:"access"`
	Path        string `json:"path"`
	PathBase64  string `json:"path_base64,omitempty"`
	PathB64     string `json:"path_b64,omitempty"`
	Path2       string `json:"path2,omitempty"`
	Path2Base64 string `json:"path2_base64,omitempty"`
	Path2B64    string `json:"path2_b64,omitempty"`
	Flags       uint32 `json:"flags"`
	Mode        uint32 `json:"mode"`
	Result      int32  `json:"result"`
	Errno       string `json:"errno,omitempty"` // the name of -result when the call failed: "ENOENT"
	PID         int32  `json:"pid"`
	PPID        int32  `json:"ppid"`
	TID         int32  `json:"tid"`
	TimeNs      uint64 `json:"time_ns"` // CLOCK_MONOTONIC
	StartNs     uint64 `json:"start_ns"`
	Source      string `json:"source,omitempty"` // "ring", "fifo", "ebpf": who recorded it
	Seq         int64  `json:"seq"`              // commit order; --follow resumes after it
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

// errnoName names a failed call's error: ENOENT for -2; "" for success.
func errnoName(result int32) string {
	if result >= 0 {
		return ""
	}
	if n := unix.ErrnoName(syscall.Errno(-result)); n != "" {
		return n
	}
	return fmt.Sprintf("errno %d", -result)
}

// eventMatch is what `events` filters beyond what the store selects.
type eventMatch struct {
	start  uint64 // with --pid PID@START_NS
	tid    int32
	ops    map[ring.Op]bool
	access string
	failed bool
	under  string // path prefix, a directory
	since  uint64
	until  uint64
	// uidProcs, with --uid, holds the processes whose records came through
	// that uid's ring (the uid the collector verified, never a claim).
	uidProcs map[trace.ProcKey]bool
}

func (m *eventMatch) match(e *store.Event) bool {
	switch {
	case m.start != 0 && e.StartNs != m.start,
		m.tid != 0 && e.TID != m.tid,
		m.ops != nil && !m.ops[e.Op],
		m.access != "" && accessName(e.Access) != m.access,
		m.failed && e.Result >= 0,
		m.since != 0 && e.TimeNs < m.since,
		m.until != 0 && e.TimeNs > m.until,
		m.uidProcs != nil && !m.uidProcs[trace.ProcKey{PID: e.PID, StartNs: e.StartNs}]:
		return false
	}
	return m.under == "" || under(e.Path, m.under) || under(e.Path2, m.under)
}

func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// parseWhen reads --since/--until: a wall-clock time (RFC 3339, or
// HH:MM[:SS[.fff]] today), a duration ago ("5m"), or raw CLOCK_MONOTONIC
// ns; it returns monotonic ns.
func parseWhen(s string, clk wallClock, now time.Time) (uint64, error) {
	if ns, err := strconv.ParseUint(s, 10, 64); err == nil {
		return ns, nil
	}
	var t time.Time
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		t = now.Add(-d)
	} else if tt, err := time.Parse(time.RFC3339Nano, s); err == nil {
		t = tt
	} else {
		for _, layout := range []string{"15:04:05.999999999", "15:04:05", "15:04"} {
			if tt, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
				y, mo, d := now.Date()
				t = time.Date(y, mo, d, tt.Hour(), tt.Minute(), tt.Second(), tt.Nanosecond(), now.Location())
				break
			}
		}
	}
	if t.IsZero() {
		return 0, fmt.Errorf("%q: want a time (15:04:05, RFC 3339), a duration ago (5m) or CLOCK_MONOTONIC ns", s)
	}
	if !clk.ok {
		return 0, fmt.Errorf("%q: the monotonic clock cannot be read: give CLOCK_MONOTONIC ns", s)
	}
	ns := t.UnixNano() - clk.offset
	if ns < 0 {
		return 1, nil // before boot: everything
	}
	return uint64(ns), nil
}

func runEvents(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restrack events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	storeDir := fs.String("store", "./restrack-data", "store `DIR`")
	asJSON := fs.Bool("json", false, "JSON Lines, one event per line (the stable format, docs/store.md)")
	pidSpec := fs.String("pid", "", "only events of process `PID` (any incarnation) or PID@START_NS (one)")
	tid := fs.Int("tid", 0, "only events of thread `TID`")
	glob := fs.String("path", "", "only events whose path or second path matches `GLOB` (* also matches /)")
	underDir := fs.String("under", "", "only events whose path or second path is `DIR` or below it")
	ops := fs.String("op", "", "only these ops, comma-separated `LIST` (openat,rename,…)")
	access := fs.String("access", "", "only `read`, write, lookup (stat-family) or none (context events such as fork, chdir)")
	failed := fs.Bool("failed", false, "only failed calls (result < 0)")
	uid := fs.Int64("uid", -1, "only events of processes whose ring belonged to `UID` (the uid the collector verified)")
	since := fs.String("since", "", "only events at or after `TIME`: 15:04:05, RFC 3339, 5m (ago) or monotonic ns")
	until := fs.String("until", "", "only events at or before `TIME` (same forms as --since)")
	timeFmt := fs.String("time", "wall", "text times as `wall` (local clock), rel (since the first shown) or mono (raw ns); JSON keeps time_ns")
	follow := fs.Bool("follow", false, "keep printing new events as a collector stores them, until interrupted")
	interval := fs.Duration("follow-interval", 500*time.Millisecond, "how often --follow looks for new events")
	all := fs.Bool("all", false, "also context-only events (fork, chdir: access \"none\")")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: restrack events [--store DIR] [--json] [filters]\n\n"+
			"Prints the stored raw events in the order they were collected: time, pid/tid,\n"+
			"op, access, result (an errno name when the call failed) and path.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if code, ok := parseNoArgs(fs, args); !ok {
		return code
	}
	usage := func(f string, a ...any) int {
		fmt.Fprintf(stderr, "restrack events: "+f+"\n", a...)
		return 2
	}
	clk := newWallClock()
	tf, err := parseTimeFormat(*timeFmt)
	if err != nil {
		return usage("%v", err)
	}
	m := eventMatch{tid: int32(*tid), failed: *failed, under: *underDir}
	var pid int64
	if *pidSpec != "" {
		p, start, hasStart := strings.Cut(*pidSpec, "@")
		pid, err = strconv.ParseInt(p, 10, 32)
		if err != nil || pid <= 0 {
			return usage("--pid %s is not a process id: want PID or PID@START_NS (restrack ps lists them)", *pidSpec)
		}
		if hasStart {
			if m.start, err = strconv.ParseUint(start, 10, 64); err != nil || m.start == 0 {
				return usage("--pid %s: START_NS must be a number (restrack ps shows PID@START_NS)", *pidSpec)
			}
		}
	}
	if *tid < 0 {
		return usage("--tid %d is not a thread id", *tid)
	}
	if *ops != "" {
		m.ops = map[ring.Op]bool{}
		for _, name := range strings.Split(*ops, ",") {
			op, ok := ring.OpByName(strings.TrimSpace(name))
			if !ok {
				return usage("--op: unknown op %q (restrack events --json shows the ops recorded)", name)
			}
			m.ops[op] = true
		}
	}
	switch *access {
	case "", "read", "write", "lookup":
	case "none":
		*all = true
	default:
		return usage("--access %q: want read, write, lookup or none", *access)
	}
	m.access = *access
	now := time.Now()
	if *since != "" {
		if m.since, err = parseWhen(*since, clk, now); err != nil {
			return usage("--since %v", err)
		}
	}
	if *until != "" {
		if m.until, err = parseWhen(*until, clk, now); err != nil {
			return usage("--until %v", err)
		}
	}
	if *underDir != "" && !strings.HasPrefix(*underDir, "/") {
		if abs, err := filepath.Abs(*underDir); err == nil {
			m.under = abs
		}
	}
	if *interval <= 0 {
		return usage("--follow-interval must be positive, got %v", *interval)
	}
	if *uid < -1 || *uid > math.MaxUint32 {
		return usage("--uid %d is not a uid", *uid)
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
	var base uint64
	filter := store.EventFilter{PID: int32(pid), PathGlob: *glob, All: *all}
	print := func(e *store.Event) error {
		filter.AfterSeq = e.Seq
		prog.tick()
		if !m.match(e) {
			return nil
		}
		if *asJSON {
			j := eventJSON{Op: e.Op.String(), Access: accessName(e.Access), Path: e.Path, Path2: e.Path2,
				Flags: e.Flags, Mode: e.Mode, Result: e.Result, Errno: errnoName(e.Result), PID: e.PID, PPID: e.PPID, TID: e.TID,
				TimeNs: e.TimeNs, StartNs: e.StartNs, Source: e.Source, Seq: e.Seq, Unresolved: unresolvedCause(e.RFlags)}
			if !utf8.ValidString(e.Path) {
				j.PathBase64 = base64.StdEncoding.EncodeToString([]byte(e.Path))
				j.PathB64 = j.PathBase64
			}
			if !utf8.ValidString(e.Path2) {
				j.Path2Base64 = base64.StdEncoding.EncodeToString([]byte(e.Path2))
				j.Path2B64 = j.Path2Base64
			}
			return enc.Encode(&j)
		}
		if base == 0 {
			base = e.TimeNs
		}
		result := strconv.Itoa(int(e.Result))
		if e.Result < 0 {
			result = errnoName(e.Result)
		}
		line = line[:0]
		line = fmt.Appendf(line, "%s %d/%d %-10s %-5s %6s ", tf.format(clk, e.TimeNs, base), e.PID, e.TID, e.Op, accessName(e.Access), result)
		line = appendPath(line, e.Path)
		if e.Path2 != "" {
			line = append(line, " -> "...)
			line = appendPath(line, e.Path2)
		}
		if cause := unresolvedCause(e.RFlags); cause != "" {
			line = append(line, " (unresolved: "+cause+")"...)
		}
		line = append(line, '\n')
		_, err := out.Write(line)
		return err
	}
	ctx := context.Background()
	if *follow {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	for {
		if *uid >= 0 {
			// Reloaded each pass: a follower meets new processes.
			if m.uidProcs, err = procsOfUID(ctx, st, uint32(*uid)); err != nil {
				break
			}
		}
		err = st.Events(ctx, filter, print)
		prog.done()
		if ferr := out.Flush(); err == nil {
			err = ferr
		}
		if err != nil || !*follow {
			break
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(*interval):
		}
	}
	if err != nil {
		if *follow && ctx.Err() != nil {
			return 0
		}
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

// procsOfUID lists the processes whose records came through uid's ring.
func procsOfUID(ctx context.Context, st *store.Store, uid uint32) (map[trace.ProcKey]bool, error) {
	tr, err := st.Trace(ctx)
	if err != nil {
		return nil, err
	}
	procs := map[trace.ProcKey]bool{}
	for i := range tr.Processes {
		if p := &tr.Processes[i]; p.UIDKnown && p.UID == uid {
			procs[p.Key] = true
		}
	}
	return procs, nil
}
