package planner

import (
	"fmt"
	"slices"
	"strings"
)

// File kinds a plan names. The core infers a kind from the operations the
// trace saw (bind → socket, shm_open → shm…) and the path (/dev/shm,
// /dev/mqueue); Enrich replaces it with what lstat says where the path
// still exists, keeping the IPC kinds lstat cannot tell from a file.
const (
	KindUnknown   = "unknown"
	KindRegular   = "regular"
	KindDirectory = "directory"
	KindSymlink   = "symlink"
	KindSocket    = "socket"
	KindFIFO      = "fifo"
	KindDevice    = "device"
	KindShm       = "shm"       // POSIX shared memory (shm_open, /dev/shm)
	KindMqueue    = "mqueue"    // POSIX message queue (mq_open, /dev/mqueue)
	KindSemaphore = "semaphore" // POSIX named semaphore (sem_open, /dev/shm/sem.*)
)

// kind hints, ordered so that a stronger piece of evidence wins: an op
// that only says "directory" never hides one that says "shared memory".
const (
	hintNone uint8 = iota
	hintRegular
	hintDirectory
	hintSymlink
	hintFIFO
	hintSocket
	hintShm
	hintMqueue
	hintSemaphore
)

var hintKinds = [...]string{KindUnknown, KindRegular, KindDirectory, KindSymlink, KindFIFO, KindSocket, KindShm, KindMqueue, KindSemaphore}

// opHint is what an operation says about the kind of its path. A switch,
// not a map: it runs once per access.
func opHint(op string) uint8 {
	switch op {
	case "bind", "connect":
		return hintSocket
	case "mkfifo", "mkfifoat":
		return hintFIFO
	case "shm_open", "shm_unlink":
		return hintShm
	case "mq_open", "mq_unlink":
		return hintMqueue
	case "sem_open", "sem_unlink":
		return hintSemaphore
	case "mkdir", "mkdirat", "rmdir", "opendir", "chdir":
		return hintDirectory
	case "symlink", "symlinkat":
		return hintSymlink
	}
	return hintNone
}

// pathHint: POSIX IPC objects live in these file systems on Linux, named
// after the object (glibc maps sem_open("/x") to /dev/shm/sem.x).
func pathHint(p string) uint8 {
	switch {
	case strings.HasPrefix(p, "/dev/shm/sem."):
		return hintSemaphore
	case strings.HasPrefix(p, "/dev/shm/"):
		return hintShm
	case strings.HasPrefix(p, "/dev/mqueue/"):
		return hintMqueue
	}
	return hintNone
}

// IsRecreated: objects of this kind are made by their process when it
// starts (a server binds its socket, PostgreSQL creates its shared memory
// segments). Copying one is meaningless or harmful: their content is the
// state of processes that are stopped for the move.
func IsRecreated(kind string) bool {
	switch kind {
	case KindSocket, KindShm, KindMqueue, KindSemaphore:
		return true
	}
	return false
}

// RecreateFile is an IPC object the moving APs use: it is listed, never
// copied; the process that made it makes it again at the target.
type RecreateFile struct {
	Path       string  `json:"path"`
	PathBase64 string  `json:"path_base64,omitempty"`
	Kind       string  `json:"kind"`
	APs        []int32 `json:"aps"`    // root pids of the moving APs that use it
	Makers     []int32 `json:"makers"` // pids of the moving processes that create it (bind, shm_open, O_CREAT…)
	Reason     string  `json:"reason"`
	Exists     *bool   `json:"exists,omitempty"` // set by Enrich
}

func recreateReason(kind string, aps []int32) string {
	what := map[string]string{
		KindSocket: "unix socket", KindShm: "shared-memory object", KindMqueue: "message queue", KindSemaphore: "named semaphore",
	}[kind]
	verb := "makes"
	if len(aps) > 1 {
		verb = "make"
	}
	return fmt.Sprintf("%s: %s %s it again when it starts at the target; never copied", what, apList(aps), verb)
}

// settle derives the AP-level liveness from the processes' Live flags:
// an AP is live when any of its processes is, and then has something to
// stop here and start at the target; an exited AP is history whose files
// still move. It keeps the order of pl.APs and is called again by Enrich.
func (pl *Plan) settle() {
	live := map[int32][]int32{}
	for _, p := range pl.MoveProcesses {
		if p.Live {
			live[p.AP] = append(live[p.AP], p.PID)
		}
	}
	pl.LiveAPs, pl.ExitedAPs = []int32{}, []int32{}
	for i := range pl.APs {
		a := &pl.APs[i]
		a.LivePIDs = live[a.Root]
		if a.LivePIDs == nil {
			a.LivePIDs = []int32{}
		}
		slices.Sort(a.LivePIDs)
		a.Live = len(a.LivePIDs) > 0
		if a.Live {
			pl.LiveAPs = append(pl.LiveAPs, a.Root)
		} else {
			pl.ExitedAPs = append(pl.ExitedAPs, a.Root)
		}
	}
}
