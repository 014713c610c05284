package planner

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeHost is a host with given processes and the real file system.
type fakeHost struct {
	procs map[int32]HostProcess
}

func (h fakeHost) Process(pid int32) (HostProcess, bool)  { p, ok := h.procs[pid]; return p, ok }
func (h fakeHost) Lstat(path string) (fs.FileInfo, error) { return os.Lstat(path) }

func TestEnrichLiveness(t *testing.T) {
	// A launcher (10) that exited after starting a daemon (11); the daemon
	// writes a log a shipper (20) reads; a one-shot tool (30) wrote the
	// daemon's config and exited; pid 40 was reused after the trace.
	tr := newTrace().
		proc(1, 0, "/bin/sh", "sh", "workload").
		proc(10, 1, "/usr/lib/postgresql/15/bin/postgres", "postgres", "-V").exited(10).
		proc(11, 10, "/usr/lib/postgresql/15/bin/postgres", "postgres", "-D", "/srv/pg").
		proc(20, 1, "/usr/bin/tail", "tail", "-F", "/srv/log").
		proc(30, 1, "/usr/bin/mkdir", "mkdir", "/srv/pg").exited(30).
		proc(40, 1, "/usr/bin/cat", "cat").
		write(11, "/srv/log").read(20, "/srv/log").
		write(30, "/srv/pg").read(11, "/srv/pg").
		read(40, "/srv/log").
		trace()
	start := func(pid int32) uint64 {
		for _, p := range tr.Processes {
			if p.Key.PID == pid {
				return p.Key.StartNs
			}
		}
		t.Fatalf("no pid %d", pid)
		return 0
	}
	host := fakeHost{procs: map[int32]HostProcess{
		11: {StartNs: start(11), Argv: []string{"postgres", "-D", "/srv/pg", "-p", "5433"}},
		20: {StartNs: start(20), Argv: []string{"tail", "-F", "/srv/log"}},
		40: {StartNs: start(40) + 5, Argv: []string{"an", "unrelated", "process"}},
	}}
	pl := mustPlan(t, tr, "20", Options{})
	pl.Enrich(host)

	byRoot := map[int32]AP{}
	for _, a := range pl.APs {
		byRoot[a.Root] = a
	}
	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"live APs are those with a running process, exited ones are history", func(t *testing.T) {
			assert.ElementsMatch(t, []int32{20, 10}, pl.LiveAPs)
			assert.ElementsMatch(t, []int32{30, 40}, pl.ExitedAPs)
			assert.True(t, pl.HostChecked)
		}},
		{"a reused pid is not live: its start time differs from the trace's", func(t *testing.T) {
			assert.False(t, byRoot[40].Live)
			for _, p := range pl.MoveProcesses {
				if p.PID == 40 {
					assert.False(t, p.Live)
				}
			}
		}},
		{"an AP whose launcher exited is labelled by the program its live process runs now, not an early exec", func(t *testing.T) {
			a := byRoot[10]
			assert.Equal(t, int32(11), a.LabelPID)
			assert.Equal(t, "postgres -D pg -p 5433", a.Label, "what /proc says it runs now")
			assert.Equal(t, []int32{11}, a.LivePIDs)
		}},
		{"an exited AP keeps the trace's label", func(t *testing.T) {
			assert.Equal(t, "mkdir pg", byRoot[30].Label)
			assert.Equal(t, int32(30), byRoot[30].LabelPID)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}

	var buf bytes.Buffer
	require.NoError(t, pl.WriteTable(&buf))
	assert.Contains(t, buf.String(), "Live (2, running now): stop here, start at the target")
	assert.Contains(t, buf.String(), "Exited (2): history, their files move but nothing runs")
	procs := buf.String()[strings.Index(buf.String(), "Processes that move"):]
	assert.Regexp(t, `(?m)^  10 +1 \(running\) +11 +postgres -D pg$`, procs,
		"the live server has its own row, with its own command line, apart from the exited `postgres -V` of the same program")
	assert.Regexp(t, `(?m)^  10 +1 \(1 exited\) +10 +postgres -V$`, procs)
}

func TestEnrichFileKindsAndSizes(t *testing.T) {
	d := t.TempDir()
	reg := filepath.Join(d, "data.bin")
	require.NoError(t, os.WriteFile(reg, make([]byte, 1234), 0o644))
	dir := filepath.Join(d, "spool")
	require.NoError(t, os.Mkdir(dir, 0o755))
	link := filepath.Join(d, "current")
	require.NoError(t, os.Symlink("data.bin", link))
	fifo := filepath.Join(d, "ctl.fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	sock := filepath.Join(d, "app.sock")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer l.Close()
	gone := filepath.Join(d, "deleted.tmp")
	shm := "/dev/shm/PostgreSQL.restrack-test-" + filepath.Base(d)

	tr := newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/app").
		write(10, reg, gone).read(10, dir, link, fifo).
		// The trace saw a plain open of the socket (a blind spot of the
		// bind hook, say): lstat tells it is a socket all the same.
		read(10, sock).
		access(10, shm, "openat", true, 1, 0).
		trace()
	pl := mustPlan(t, tr, "10", Options{})
	pl.Enrich(LocalHost{})

	files := map[string]FileState{}
	for _, f := range pl.MoveFiles {
		files[f.Path] = f.FileState
	}
	size := func(n int64) *int64 { return &n }
	yes, no := true, false
	tests := []struct {
		name string
		path string
		want FileState
	}{
		{"a regular file carries its size", reg, FileState{Kind: KindRegular, Exists: &yes, Size: size(1234)}},
		{"a directory is a directory", dir, FileState{Kind: KindDirectory, Exists: &yes, Size: files[dir].Size}},
		{"a symlink is a symlink, not what it points to", link, FileState{Kind: KindSymlink, Exists: &yes, Size: size(int64(len("data.bin")))}},
		{"a FIFO is a FIFO", fifo, FileState{Kind: KindFIFO, Exists: &yes, Size: size(0)}},
		{"a file that no longer exists says so and has no size", gone, FileState{Kind: KindUnknown, Exists: &no}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, files[tt.path])
		})
	}
	t.Run("IPC objects are listed as recreated, never among the files to move", func(t *testing.T) {
		assert.NotContains(t, files, sock)
		assert.NotContains(t, files, shm)
		kinds := map[string]string{}
		for _, f := range pl.RecreateFiles {
			kinds[f.Path] = f.Kind
		}
		assert.Equal(t, map[string]string{sock: KindSocket, shm: KindShm}, kinds)
	})
}

// TestJSONContractGrows: the actionable fields are added beside §11's,
// which keep their names.
func TestJSONContractGrows(t *testing.T) {
	pl := mustPlan(t, demoTrace(), "300", Options{})
	var buf bytes.Buffer
	require.NoError(t, pl.WriteJSON(&buf))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &doc))
	for _, k := range []string{"move_processes", "move_files", "copy_files", "ignored_files", "dropped_events", "incomplete",
		"recreate_files", "live_aps", "exited_aps", "host_checked"} {
		assert.Contains(t, doc, k)
	}
	for _, a := range doc["aps"].([]any) {
		assert.Subset(t, keys(a), []string{"root_pid", "command", "label", "label_pid", "live", "live_pids"})
	}
	for _, f := range doc["move_files"].([]any) {
		assert.Subset(t, keys(f), []string{"path", "reason", "kind", "writers"})
	}
	for _, p := range doc["move_processes"].([]any) {
		assert.Subset(t, keys(p), []string{"pid", "exe", "reason", "live", "exited"})
	}
}
