package fleet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/restrack/restrack/trace"
)

// Names maps a fleet trace's synthetic pids back to hosts and pids, and
// rewrites the planner's output with them.
//
// Synthetic pids are base + index, base = P·10⁸ with P in 11…20: ten-digit
// numbers starting with P, beyond any real pid (pid_max ≤ 2²²). P is chosen
// so that no path, command or host id in the trace holds a ten-digit run
// starting with P, so every such run in the planner's output is one of ours
// and the rewrite is exact.
type Names struct {
	base  int32
	procs []hostProc                   // by synthetic index
	files map[string]map[string]string // host → path → fleet file name
}

const synthSpan = 100_000_000

func (n *Names) synth(i int) int32 { return n.base + int32(i) }

// lookup returns the process behind a synthetic pid.
func (n *Names) lookup(pid int64) (hostProc, bool) {
	i := pid - int64(n.base)
	if n.base == 0 || i < 0 || i >= int64(len(n.procs)) {
		return hostProc{}, false
	}
	return n.procs[i], true
}

func (n *Names) pickBase(tr *trace.Trace) error {
	if len(n.procs) >= synthSpan {
		return fmt.Errorf("the fleet trace holds %d processes: more than a plan can name (%d)", len(n.procs), synthSpan)
	}
	taken := map[byte]bool{} // first digits of ten-digit runs found in the trace's strings
	scan := func(s string) {
		forDigitRuns(s, func(run string) string {
			if len(run) == 10 {
				p, _ := strconv.Atoi(run[:2])
				taken[byte(p)] = true
			}
			return run
		})
	}
	for i := range tr.Processes {
		p := &tr.Processes[i]
		scan(p.Exe)
		scan(p.Cwd)
		for _, a := range p.Argv {
			scan(a)
		}
	}
	for i := range tr.Accesses {
		scan(tr.Accesses[i].Path) // the fleet name: holds the host id too
	}
	for p := 11; p <= 20; p++ {
		if !taken[byte(p)] {
			n.base = int32(p) * synthSpan
			return nil
		}
	}
	return fmt.Errorf("cannot name the processes of this fleet plan: its paths hold ten-digit numbers starting with every prefix 11…20")
}

// forDigitRuns calls fn on every maximal run of ASCII digits in s and
// returns s with each run replaced by fn's result.
func forDigitRuns(s string, fn func(string) string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] < '0' || s[i] > '9' {
			j := i
			for j < len(s) && (s[j] < '0' || s[j] > '9') {
				j++
			}
			b.WriteString(s[i:j])
			i = j
			continue
		}
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		b.WriteString(fn(s[i:j]))
		i = j
	}
	return b.String()
}

// Text rewrites every synthetic pid in s as HOST:PID.
func (n *Names) Text(s string) string {
	return forDigitRuns(s, func(run string) string {
		if len(run) != 10 {
			return run
		}
		v, _ := strconv.ParseInt(run, 10, 64)
		if k, ok := n.lookup(v); ok {
			return k.host + ":" + strconv.Itoa(int(k.pid))
		}
		return run
	})
}

// Table is Text for column output: where a name is shorter or longer
// than the ten-digit pid it replaces, the next run of padding (two spaces
// or more) shrinks or grows to match, so tabwriter's columns stay aligned.
func (n *Names) Table(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, line := range lines {
		debt := 0
		var b strings.Builder
		for j := 0; j < len(line); {
			switch c := line[j]; {
			case c >= '0' && c <= '9':
				k := j
				for k < len(line) && line[k] >= '0' && line[k] <= '9' {
					k++
				}
				r := n.Text(line[j:k])
				debt += len(r) - (k - j)
				b.WriteString(r)
				j = k
			case c == ' ' && j+1 < len(line) && line[j+1] == ' ' && debt != 0:
				k := j
				for k < len(line) && line[k] == ' ' {
					k++
				}
				w := max(k-j-debt, 1)
				debt -= (k - j) - w
				b.WriteString(strings.Repeat(" ", w))
				j = k
			default:
				b.WriteByte(c)
				j++
			}
		}
		lines[i] = b.String()
	}
	return strings.Join(lines, "")
}

// Proc names a synthetic key as HOST:PID.
func (n *Names) Proc(k trace.ProcKey) string { return n.Text(strconv.Itoa(int(k.PID))) }

// Resolve turns "HOST:PID", "HOST:PID@START_NS" or "HOST:PID@latest" into
// a synthetic key of tr.
func (n *Names) Resolve(tr *trace.Trace, spec string) (trace.ProcKey, error) {
	host, rest, ok := strings.Cut(spec, ":")
	pidPart, startPart, hasStart := strings.Cut(rest, "@")
	pid, err := strconv.ParseInt(pidPart, 10, 32)
	if !ok || host == "" || err != nil || pid <= 0 {
		return trace.ProcKey{}, fmt.Errorf("process %q: in a fleet plan, want HOST:PID, HOST:PID@START_NS or HOST:PID@latest", spec)
	}
	var cands []int
	for i, k := range n.procs {
		if k.host == host && k.pid == int32(pid) {
			cands = append(cands, i)
		}
	}
	sort.Slice(cands, func(i, j int) bool { return n.procs[cands[i]].st < n.procs[cands[j]].st })
	var list strings.Builder
	for _, i := range cands {
		p := &tr.Processes[i]
		fmt.Fprintf(&list, "\n  %s:%d@%d  %s", host, pid, n.procs[i].st, strings.TrimSpace(p.Exe+" "+strings.Join(p.Argv, " ")))
	}
	switch {
	case len(cands) == 0:
		if _, ok := n.files[host]; !ok {
			return trace.ProcKey{}, fmt.Errorf("process %q: host %s is not in this plan (it shares no network file with the AP's host)", spec, host)
		}
		return trace.ProcKey{}, fmt.Errorf("no process with pid %d on host %s in the fleet database", pid, host)
	case hasStart && startPart == "latest":
		return tr.Processes[cands[len(cands)-1]].Key, nil
	case hasStart:
		st, err := strconv.ParseUint(startPart, 10, 64)
		if err != nil {
			return trace.ProcKey{}, fmt.Errorf("process %q: START_NS must be a number or \"latest\"", spec)
		}
		for _, i := range cands {
			if n.procs[i].st == st {
				return tr.Processes[i].Key, nil
			}
		}
		return trace.ProcKey{}, fmt.Errorf("no process %s:%d started at %d; host %s has:%s", host, pid, st, host, list.String())
	case len(cands) > 1:
		return trace.ProcKey{}, fmt.Errorf("pid %d was reused on host %s: name one as %s:%d@START_NS or %s:%d@latest:%s",
			pid, host, host, pid, host, pid, list.String())
	}
	return tr.Processes[cands[0]].Key, nil
}

// File turns what a user names a file in a fleet plan into its fleet
// name: "HOST:PATH" as that host's processes named it (a network file
// then becomes its "//[SOURCE]/inner" name), or a fleet name as printed.
func (n *Names) File(spec string) string {
	if host, path, ok := strings.Cut(spec, ":"); ok {
		if name, ok := n.files[host][path]; ok {
			return name
		}
	}
	return spec
}

// isPIDKey: the planner's JSON keys that hold a pid or a list of pids (an
// AP is named by its root's pid): "pid", "root_pid", "label_pid", "ap",
// "by_ap", "processes", "for_pids", "aps", "live_aps", "writers"…
// Numbers elsewhere (start times, sizes, counts) are never touched, even if
// one happens to equal a synthetic pid.
func isPIDKey(k string) bool {
	switch k {
	case "pid", "pids", "ap", "aps", "processes", "writers", "readers":
		return true
	}
	for _, suf := range []string{"_pid", "_pids", "_ap", "_aps"} {
		if strings.HasSuffix(k, suf) {
			return true
		}
	}
	return false
}

// hostKeys: the object holding one of these is a process or an AP, and
// gains "host" right after it.
var hostKeys = map[string]bool{"pid": true, "root_pid": true}

// JSON rewrites the planner's JSON: real pids in the pid fields, a "host"
// beside each process's and AP's pid, "KEY_hosts" beside lists of pids,
// and HOST:PID in the reasons. Every field the planner wrote stays, in
// its order, with its type.
func (n *Names) JSON(in []byte, w io.Writer) error {
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	var v ordered
	if err := v.decode(dec); err != nil {
		return fmt.Errorf("rewrite the plan's JSON: %w", err)
	}
	n.rewrite(&v)
	var buf bytes.Buffer
	v.encode(&buf, "")
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

func (n *Names) rewrite(v *ordered) {
	switch v.kind {
	case '{':
		var out []member
		for _, m := range v.obj {
			switch {
			case isPIDKey(m.key) && m.val.kind == 'n':
				if k, ok := n.lookup(m.val.int()); ok {
					m.val.num = json.Number(strconv.Itoa(int(k.pid)))
					out = append(out, m)
					if hostKeys[m.key] {
						out = append(out, member{key: "host", val: ordered{kind: 's', str: k.host}})
					}
					continue
				}
			case isPIDKey(m.key) && m.val.kind == '[' && len(m.val.arr) > 0 && n.allPIDs(m.val.arr):
				hosts := ordered{kind: '[', arr: []ordered{}}
				for i := range m.val.arr {
					e := &m.val.arr[i]
					k, _ := n.lookup(e.int())
					e.num = json.Number(strconv.Itoa(int(k.pid)))
					hosts.arr = append(hosts.arr, ordered{kind: 's', str: k.host})
				}
				out = append(out, m, member{key: m.key + "_hosts", val: hosts})
				continue
			}
			n.rewrite(&m.val)
			out = append(out, m)
		}
		v.obj = out
	case '[':
		for i := range v.arr {
			n.rewrite(&v.arr[i])
		}
	case 's':
		v.str = n.Text(v.str)
	}
}

// allPIDs: a list of synthetic pids. The plan's "aps" is a list of
// objects; an empty list stays as it is (no "_hosts" beside it).
func (n *Names) allPIDs(vs []ordered) bool {
	for i := range vs {
		if _, ok := n.lookup(vs[i].int()); !ok || vs[i].kind != 'n' {
			return false
		}
	}
	return true
}

// ordered is a JSON value that keeps its members' order.
type ordered struct {
	kind byte // '{', '[', 's' string, 'n' number, 'l' literal (true, false, null)
	obj  []member
	arr  []ordered
	str  string
	num  json.Number
	lit  string
}

type member struct {
	key string
	val ordered
}

func (v *ordered) int() int64 {
	if v.kind != 'n' {
		return -1
	}
	i, err := v.num.Int64()
	if err != nil {
		return -1
	}
	return i
}

func (v *ordered) decode(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			v.kind = '{'
			v.obj = []member{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				var m member
				m.key, _ = kt.(string)
				if err := m.val.decode(dec); err != nil {
					return err
				}
				v.obj = append(v.obj, m)
			}
		case '[':
			v.kind = '['
			v.arr = []ordered{}
			for dec.More() {
				var e ordered
				if err := e.decode(dec); err != nil {
					return err
				}
				v.arr = append(v.arr, e)
			}
		}
		_, err := dec.Token() // the closing delimiter
		return err
	case string:
		v.kind, v.str = 's', t
	case json.Number:
		v.kind, v.num = 'n', t
	case bool:
		v.kind, v.lit = 'l', strconv.FormatBool(t)
	case nil:
		v.kind, v.lit = 'l', "null"
	}
	return nil
}

// encode writes v indented as the planner does (two spaces, HTML left
// unescaped).
func (v *ordered) encode(b *bytes.Buffer, indent string) {
	str := func(s string) {
		var sb bytes.Buffer
		enc := json.NewEncoder(&sb)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		b.Write(bytes.TrimRight(sb.Bytes(), "\n"))
	}
	switch v.kind {
	case '{', '[':
		open, close, n := byte('{'), byte('}'), len(v.obj)
		if v.kind == '[' {
			open, close, n = '[', ']', len(v.arr)
		}
		b.WriteByte(open)
		if n == 0 {
			b.WriteByte(close)
			return
		}
		inner := indent + "  "
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("\n" + inner)
			if v.kind == '{' {
				str(v.obj[i].key)
				b.WriteString(": ")
				v.obj[i].val.encode(b, inner)
			} else {
				v.arr[i].encode(b, inner)
			}
		}
		b.WriteString("\n" + indent)
		b.WriteByte(close)
	case 's':
		str(v.str)
	case 'n':
		b.WriteString(v.num.String())
	default:
		b.WriteString(v.lit)
	}
}
