package ebpf

import (
	"bytes"
	"path/filepath"
	"strconv"

	"github.com/restrack/restrack/ring"
)

// Open flags that make an open a write (design.md §6), as the kernel's
// generic values; the same on every architecture Go's BPF target supports.
const (
	oAccMode = 0x3
	oCreat   = 0x40
	oTrunc   = 0x200
	oAppend  = 0x400
)

// procInfo is what the converter remembers about a traced process between
// records: enough to make its relative paths absolute and to fill process
// records the kernel side does not carry.
type procInfo struct {
	cwd string // "" when unknown
	exe string
}

// procFS answers the questions only the live system can: the target of an
// open directory fd or a process's cwd. Tests substitute a fake.
type procFS interface {
	fdPath(pid, fd int32) (string, bool)
	cwd(pid int32) (string, bool)
	exe(pid int32) (string, bool)
}

// converter turns raw kernel samples into ring.Records. It tracks each
// process's cwd from the records themselves (inherited on fork, changed by
// chdir) so that resolving a relative path does not depend on the process
// still being alive when the sample is read; only dirfd-relative paths and
// fchdir need /proc, which is racy (docs/ebpf.md, Limits).
type converter struct {
	fs    procFS
	procs map[int32]*procInfo
	arena []byte // strings of the current batch; reset per batch

	// followRoot is the follow-only root (Options.ChildrenOnly), else 0.
	// Its children are reported from their first own record on: a child
	// that exits without one is the runtime probing fork (Go checks pidfd
	// support with a throw-away clone), not the workload.
	followRoot int32
	forks      map[int32]ring.Record // fork records held back, by child pid

	unresolved uint64 // relative paths left relative
}

func newConverter(fs procFS) *converter {
	return &converter{fs: fs, procs: make(map[int32]*procInfo), forks: make(map[int32]ring.Record)}
}

// forkHeld reports whether a record of pid would release a held fork record.
func (c *converter) forkHeld(pid int32) bool {
	_, ok := c.forks[pid]
	return ok
}

func (c *converter) proc(pid int32) *procInfo {
	p := c.procs[pid]
	if p == nil {
		p = &procInfo{}
		if cwd, ok := c.fs.cwd(pid); ok {
			p.cwd = cwd
		}
		if exe, ok := c.fs.exe(pid); ok {
			p.exe = exe
		}
		c.procs[pid] = p
	}
	return p
}

// keep copies s into the batch arena and returns the copy.
func (c *converter) keep(s []byte) []byte {
	if len(s) == 0 {
		return nil
	}
	start := len(c.arena)
	c.arena = append(c.arena, s...)
	return c.arena[start:len(c.arena):len(c.arena)]
}

func (c *converter) keepString(s string) []byte {
	if s == "" {
		return nil
	}
	start := len(c.arena)
	c.arena = append(c.arena, s...)
	return c.arena[start:len(c.arena):len(c.arena)]
}

// base is the directory a path relative to dfd is resolved against.
func (c *converter) base(pid, dfd int32) (string, bool) {
	if dfd == atFDCWD {
		p := c.proc(pid)
		if p.cwd == "" {
			return "", false
		}
		return p.cwd, true
	}
	return c.fs.fdPath(pid, dfd)
}

// resolve makes path absolute. An absolute path is kept exactly as the
// program passed it; a relative one is joined to its base and cleaned. An
// empty path (AT_EMPTY_PATH) names the dirfd itself. kbase is the base the
// kernel side resolved at the call (exact); without it, the cwd tracked
// from the records or the dirfd's /proc link stand in (racy).
func (c *converter) resolve(pid, dfd int32, path, kbase []byte) (string, bool) {
	if len(path) > 0 && path[0] == '/' {
		return string(path), true
	}
	base, ok := string(kbase), len(kbase) > 0
	if !ok {
		base, ok = c.base(pid, dfd)
	}
	if !ok {
		c.unresolved++
		return string(path), false
	}
	if len(path) == 0 {
		return base, true
	}
	return filepath.Join(base, string(path)), true
}

// access classifies an event as the shim does: an open is a write when it
// can change the file, every other op has its fixed class.
func access(op ring.Op, flags uint32) uint8 {
	switch op {
	case ring.OpOpen, ring.OpOpenat, ring.OpOpenat2:
		if flags&oAccMode != 0 || flags&(oCreat|oTrunc|oAppend) != 0 {
			return ring.AccessWrite
		}
		return ring.AccessRead
	}
	return op.DefaultAccess()
}

// convert turns ev into out[0] (and out[1] when a held-back fork record
// goes first) and returns how many records it wrote: 0 for samples that
// carry no record of their own.
func (c *converter) convert(ev *rawEvent, out *[2]ring.Record) int {
	rec := &out[0]
	*rec = ring.Record{
		Type:    uint8(ev.Type),
		Op:      ring.Op(ev.Op),
		TimeNs:  ev.TimeNs,
		StartNs: startTicks(ev.StartNs),
		PID:     ev.PID,
		TID:     ev.TID,
		PPID:    ev.PPID,
		Result:  ev.Result,
		Flags:   ev.Flags,
		Mode:    ev.Mode,
	}
	switch ev.Type {
	case typeEvent:
		if ev.EFlags&efSocket != 0 {
			if !c.convertSocket(ev, rec) {
				return 0
			}
			break
		}
		c.convertEvent(ev, rec)
	case typeProc:
		if !c.convertProc(ev, rec) {
			return 0
		}
	default:
		return 0
	}
	if c.followRoot == 0 {
		return 1
	}
	if rec.Op == ring.OpProcFork && rec.PPID == c.followRoot {
		// Own copies: the arena is reused by the next batch.
		held := *rec
		held.Str1, held.Str2 = bytes.Clone(rec.Str1), bytes.Clone(rec.Str2)
		c.forks[rec.PID] = held
		return 0
	}
	fork, held := c.forks[rec.PID]
	if !held {
		return 1
	}
	delete(c.forks, rec.PID)
	if rec.Op == ring.OpProcExit {
		delete(c.procs, rec.PID)
		return 0 // born and gone without a record of its own
	}
	fork.Str1, fork.Str2 = c.keep(fork.Str1), c.keep(fork.Str2) // into this batch's arena
	out[1] = *rec
	out[0] = fork
	return 2
}

func (c *converter) convertEvent(ev *rawEvent, rec *ring.Record) {
	rec.Access = access(rec.Op, ev.Flags)
	p1, ok1 := c.resolve(ev.PID, ev.DFD1, ev.Str1, ev.Str3)
	if ev.EFlags&efPath1Fault != 0 {
		ok1 = false
	}
	if !ok1 {
		rec.RFlags |= ring.RFUnresolved
	}
	rec.Str1 = c.keepString(p1)
	if len(ev.Str2) > 0 || ev.EFlags&efPath2Fault != 0 {
		p2, ok2 := c.resolve(ev.PID, ev.DFD2, ev.Str2, ev.Str4)
		if !ok2 || ev.EFlags&efPath2Fault != 0 {
			rec.RFlags |= ring.RFPath2Unresolved
		}
		rec.Str2 = c.keepString(p2)
	}

	if ev.Result < 0 {
		return
	}
	p := c.proc(ev.PID)
	switch rec.Op {
	case ring.OpChdir:
		if ok1 {
			p.cwd = p1
		} else {
			p.cwd = ""
		}
	case ring.OpFchdir:
		// The fd's path was resolved above (empty path = the fd itself).
		if ok1 {
			p.cwd = p1
		} else if cwd, ok := c.fs.cwd(ev.PID); ok {
			p.cwd = cwd
			rec.Str1 = c.keepString(cwd)
			rec.RFlags &^= ring.RFUnresolved
		}
	case ring.OpExecve, ring.OpExecveat:
		p.exe = p1
	}
}

func (c *converter) convertProc(ev *rawEvent, rec *ring.Record) bool {
	switch rec.Op {
	case ring.OpProcFork:
		// The child starts with its parent's cwd and image.
		parent := c.proc(ev.PPID)
		child := &procInfo{cwd: parent.cwd, exe: parent.exe}
		c.procs[ev.PID] = child
		rec.Str1 = c.keepString(child.exe)
		rec.Str2 = c.keepString(child.cwd)
	case ring.OpProcExec:
		p := c.proc(ev.PID)
		if len(ev.Str2) > 0 {
			p.cwd = string(ev.Str2) // the kernel's, at the exec
		}
		exe, ok := c.resolve(ev.PID, ev.DFD1, ev.Str1, nil)
		if !ok {
			rec.RFlags |= ring.RFUnresolved
		}
		p.exe = exe
		rec.Str1 = c.keepString(exe)
		rec.Str2 = c.keepString(p.cwd)
		argv := bytes.TrimSuffix(ev.Str3, []byte{0})
		if ev.EFlags&efArgvTruncated != 0 {
			// As the shim: a prefix of whole arguments.
			if i := bytes.LastIndexByte(argv, 0); i >= 0 {
				argv = argv[:i]
			}
			rec.RFlags |= ring.RFArgvTruncated
		}
		rec.Str3 = c.keep(argv)
	case ring.OpProcExit:
		p := c.procs[ev.PID]
		if p != nil {
			rec.Str1 = c.keepString(p.exe)
			rec.Str2 = c.keepString(p.cwd)
		}
		delete(c.procs, ev.PID)
	default:
		return false
	}
	return true
}

// fdLink is /proc/PID/fd/FD.
func fdLink(pid, fd int32) string {
	return "/proc/" + strconv.Itoa(int(pid)) + "/fd/" + strconv.Itoa(int(fd))
}
