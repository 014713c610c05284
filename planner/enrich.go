package planner

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"sort"
)

// Host is what Enrich asks the machine the plan is for. Compute never does
// I/O, so a plan stays a pure, linear function of the trace; Enrich is the
// one step that looks at the host, through this interface so tests can
// hand it a host of their own.
type Host interface {
	// Process describes the process that holds pid now; ok is false when
	// none does.
	Process(pid int32) (p HostProcess, ok bool)
	// Lstat is os.Lstat.
	Lstat(path string) (fs.FileInfo, error)
}

// HostProcess is a running process as the host shows it.
type HostProcess struct {
	StartNs uint64   // same unit as ProcKey.StartNs: a different value means a reused pid
	Argv    []string // its command line now
}

// Enrich checks the plan against the host: which moving processes still
// run (the pid exists and started when the trace says: a reused pid is not
// live), what each AP runs now, and each file's kind and size where it
// still exists. A socket found where the trace saw a plain open joins the
// recreated objects.
func (pl *Plan) Enrich(h Host) {
	now := map[int32]HostProcess{}
	for i := range pl.MoveProcesses {
		p := &pl.MoveProcesses[i]
		hp, ok := h.Process(p.PID)
		p.Live = ok && hp.StartNs == p.StartNs
		if p.Live {
			now[p.PID] = hp
		}
	}
	pl.settle()
	starts := map[int32]uint64{}
	for _, p := range pl.MoveProcesses {
		if p.Live {
			starts[p.PID] = p.StartNs
		}
	}
	for i := range pl.APs {
		a := &pl.APs[i]
		if len(a.LivePIDs) == 0 {
			continue
		}
		// The root if it runs, else the oldest live process: the one the
		// others descend from, usually the daemon an exited launcher left.
		top := a.Root
		if _, ok := now[top]; !ok {
			top = slices.MinFunc(a.LivePIDs, func(x, y int32) int {
				if starts[x] != starts[y] {
					return cmpU64(starts[x], starts[y])
				}
				return int(x - y)
			})
		}
		hp := now[top]
		a.LabelPID = top
		if len(hp.Argv) > 0 {
			a.Label = shortCommand(&Process{Argv: hp.Argv})
		}
	}

	stat := func(path string, st *FileState) (socket bool) {
		fi, err := h.Lstat(path)
		exists := err == nil
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			exists = true // there, though unreadable to us: the kind stays inferred
		}
		st.Exists = &exists
		if err != nil {
			return false
		}
		size := fi.Size()
		st.Size = &size
		if kind := modeKind(fi.Mode()); !IsRecreated(st.Kind) {
			st.Kind = kind
		}
		return st.Kind == KindSocket
	}
	var moved []RecreateFile
	recreate := func(path, b64 string, st FileState, aps []int32) {
		moved = append(moved, RecreateFile{Path: path, PathBase64: b64, Kind: KindSocket, APs: aps, Makers: []int32{},
			Exists: st.Exists, Reason: recreateReason(KindSocket, aps)})
	}
	for i := range pl.MoveFiles {
		if f := &pl.MoveFiles[i]; stat(f.Path, &f.FileState) {
			recreate(f.Path, f.PathBase64, f.FileState, f.APs)
		}
	}
	pl.MoveFiles = slices.DeleteFunc(pl.MoveFiles, func(f MoveFile) bool { return f.Kind == KindSocket })
	for i := range pl.CopyFiles {
		if f := &pl.CopyFiles[i]; stat(f.Path, &f.FileState) {
			recreate(f.Path, f.PathBase64, f.FileState, f.APs)
		}
	}
	pl.CopyFiles = slices.DeleteFunc(pl.CopyFiles, func(f CopyFile) bool { return f.Kind == KindSocket })
	for i := range pl.RecreateFiles {
		f := &pl.RecreateFiles[i]
		_, err := h.Lstat(f.Path)
		exists := err == nil || !errors.Is(err, fs.ErrNotExist)
		f.Exists = &exists
	}
	if len(moved) > 0 {
		pl.RecreateFiles = append(pl.RecreateFiles, moved...)
		sort.Slice(pl.RecreateFiles, func(i, j int) bool { return pl.RecreateFiles[i].Path < pl.RecreateFiles[j].Path })
	}
	pl.HostChecked = true
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func modeKind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return KindRegular
	case m.IsDir():
		return KindDirectory
	case m&fs.ModeSymlink != 0:
		return KindSymlink
	case m&fs.ModeSocket != 0:
		return KindSocket
	case m&fs.ModeNamedPipe != 0:
		return KindFIFO
	case m&fs.ModeDevice != 0:
		return KindDevice
	}
	return KindUnknown
}

// LocalHost is this machine.
type LocalHost struct{}

func (LocalHost) Lstat(path string) (fs.FileInfo, error) { return os.Lstat(path) }
