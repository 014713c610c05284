package planner

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPlan(t *testing.T) {
	// Most cases hang their processes under pid 1, a workload shell that
	// started everything (as `restrack run -- workload.sh` does).
	tests := []struct {
		name      string
		trace     *Trace
		ap        string
		opts      Options
		aps       []int32 // roots of the moving APs
		procs     []int32 // moving pids, sorted
		moves     []string
		recreates []string // IPC objects: nil means none
		copies    map[string][]int32
		ignored   []string
		check     func(t *testing.T, pl *Plan)
	}{
		{
			name: "Model 1: a file every sharer only reads moves, and a copy stays for the other AP",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/srv/app").proc(20, 1, "/srv/other").
				read(10, "/etc/app.conf").read(20, "/etc/app.conf").trace(),
			ap: "10", aps: []int32{10}, procs: []int32{10},
			moves: []string{}, copies: map[string][]int32{"/etc/app.conf": {20}},
			check: func(t *testing.T, pl *Plan) {
				assert.Contains(t, pl.CopyFiles[0].Reason, "Model 1")
			},
		},
		{
			name: "Model 2: a file the partner writes brings the partner along",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/usr/bin/tail").proc(20, 1, "/srv/service").
				read(10, "/srv/log").write(20, "/srv/log").trace(),
			ap: "10", aps: []int32{10, 20}, procs: []int32{10, 20},
			moves: []string{"/srv/log"}, copies: map[string][]int32{},
			check: func(t *testing.T, pl *Plan) {
				assert.Equal(t, "AP 20 moves because it writes /srv/log, which AP 10 (moving) reads", pl.APs[1].Reason)
			},
		},
		{
			name: "Model 2: a file the AP writes brings along every AP that reads it",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/srv/service").proc(20, 1, "/usr/bin/tail").proc(30, 1, "/usr/bin/grep").
				write(10, "/srv/log").read(20, "/srv/log").read(30, "/srv/log").trace(),
			ap: "10", aps: []int32{10, 20, 30}, procs: []int32{10, 20, 30},
			moves: []string{"/srv/log"}, copies: map[string][]int32{},
		},
		{
			name: "a readers' file written by a third AP moves all three: the writer through the reader, the other reader through the writer",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/a").proc(20, 1, "/b").proc(30, 1, "/w").
				read(10, "/srv/db").read(20, "/srv/db").write(30, "/srv/db").trace(),
			ap: "10", aps: []int32{10, 20, 30}, procs: []int32{10, 20, 30},
			moves: []string{"/srv/db"}, copies: map[string][]int32{},
			check: func(t *testing.T, pl *Plan) {
				lines, err := pl.ExplainProcess(pl.g.procs[pl.g.byPID[20][0]].key)
				require.NoError(t, err)
				assert.Equal(t, []string{
					"process 20 (b) moves: it is the root of AP 20.",
					"AP 20 moves because it reads /srv/db, which AP 30 (moving) writes.",
					"AP 30 moves because it writes /srv/db, which AP 10 (moving) reads.",
					"AP 10 is the AP you asked to move.",
				}, lines)
			},
		},
		{
			name: "a transitive chain of write-sharing moves every AP on it, and stops at read-only sharing",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/a").proc(20, 1, "/b").proc(30, 1, "/c").proc(40, 1, "/d").
				write(10, "/x/a").read(20, "/x/a").write(20, "/x/b").read(30, "/x/b").read(30, "/x/c").read(40, "/x/c").trace(),
			ap: "10", aps: []int32{10, 20, 30}, procs: []int32{10, 20, 30},
			moves: []string{"/x/a", "/x/b"}, copies: map[string][]int32{"/x/c": {40}},
			check: func(t *testing.T, pl *Plan) {
				lines, err := pl.ExplainFile("/x/b")
				require.NoError(t, err)
				assert.Equal(t, []string{
					"/x/b moves: write-shared by AP 20 and AP 30 (Model 2): they all move.",
					"AP 20 moves because it reads /x/a, which AP 10 (moving) writes.",
					"AP 10 is the AP you asked to move.",
					"AP 30 moves because it reads /x/b, which AP 20 (moving) writes.",
				}, lines)
			},
		},
		{
			name: "a write-sharing cycle terminates and moves each AP once",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/a").proc(20, 1, "/b").proc(30, 1, "/c").
				write(10, "/x/ab").read(20, "/x/ab").write(20, "/x/bc").read(30, "/x/bc").write(30, "/x/ca").read(10, "/x/ca").trace(),
			ap: "20", aps: []int32{10, 20, 30}, procs: []int32{10, 20, 30},
			moves: []string{"/x/ab", "/x/bc", "/x/ca"}, copies: map[string][]int32{},
			check: func(t *testing.T, pl *Plan) { assert.Len(t, pl.APs, 3) },
		},
		{
			name: "a reused pid is another process: only the incarnation asked for moves",
			trace: newTrace().proc(1, 0, "/bin/sh").
				proc(10, 1, "/old").write(10, "/srv/old").exited(10).
				proc(20, 1, "/reader-old").read(20, "/srv/old").
				proc(10, 1, "/new").write(10, "/srv/new").
				proc(30, 1, "/reader-new").read(30, "/srv/new").trace(),
			ap: "10@latest", aps: []int32{10, 30}, procs: []int32{10, 30},
			moves: []string{"/srv/new"}, copies: map[string][]int32{},
			check: func(t *testing.T, pl *Plan) { assert.Equal(t, "/new", pl.AP.Exe) },
		},
		{
			name: "an exited writer still pulls its AP in, and is flagged exited",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/srv/app").proc(20, 1, "/usr/local/bin/genconf").
				write(20, "/srv/app.conf").exited(20).read(10, "/srv/app.conf").trace(),
			ap: "10", aps: []int32{10, 20}, procs: []int32{10, 20},
			moves: []string{"/srv/app.conf"}, copies: map[string][]int32{},
			check: func(t *testing.T, pl *Plan) {
				assert.False(t, pl.MoveProcesses[0].Exited)
				assert.True(t, pl.MoveProcesses[1].Exited)
			},
		},
		{
			name: "failed opens create no dependency, and --show-failed lists those of moving processes",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/app").proc(20, 1, "/other").
				read(10, "/srv/log").access(20, "/srv/log", "openat", true, 0, 3).
				access(10, "/srv/missing", "openat", false, 0, 1).trace(),
			ap: "10", opts: Options{ShowFailed: true}, aps: []int32{10}, procs: []int32{10},
			moves: []string{"/srv/log"}, copies: map[string][]int32{},
			check: func(t *testing.T, pl *Plan) {
				assert.Equal(t, []FailedAccess{{PID: 10, StartNs: 2000, Path: "/srv/missing", Op: "openat", Failures: 1}}, pl.Failed)
				lines, err := pl.ExplainFile("/srv/missing")
				require.NoError(t, err)
				assert.Contains(t, lines[0], "every call on it failed")
			},
		},
		{
			name: "a call that failed and also succeeded counts by its successes",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/app").proc(20, 1, "/other").
				read(10, "/srv/log").access(20, "/srv/log", "openat", true, 1, 5).trace(),
			ap: "10", aps: []int32{10, 20}, procs: []int32{10, 20},
			moves: []string{"/srv/log"}, copies: map[string][]int32{},
		},
		{
			name: "rename over a file writes its target, so a reader of the target moves with the renamer",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/deployer").proc(20, 1, "/srv/app").
				access(10, "/srv/app.conf.tmp", "rename", true, 1, 0).access(10, "/srv/app.conf", "rename", true, 1, 0).
				read(20, "/srv/app.conf").trace(),
			ap: "10", aps: []int32{10, 20}, procs: []int32{10, 20},
			moves: []string{"/srv/app.conf", "/srv/app.conf.tmp"}, copies: map[string][]int32{},
			check: func(t *testing.T, pl *Plan) {
				assert.Equal(t, "AP 20 moves because it reads /srv/app.conf, which AP 10 (moving) writes", pl.APs[1].Reason)
			},
		},
		{
			name: "unlink is a write: a process that deletes a file another AP reads moves with it",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/app").proc(20, 1, "/usr/local/bin/cleaner").
				read(10, "/srv/spool/job1").access(20, "/srv/spool/job1", "unlink", true, 1, 0).trace(),
			ap: "10", aps: []int32{10, 20}, procs: []int32{10, 20},
			moves: []string{"/srv/spool/job1"}, copies: map[string][]int32{},
		},
		{
			name: "default ignore rules keep /dev/null, /proc and the libraries out of the graph, and list them",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/app").proc(20, 1, "/other").
				write(10, "/dev/null").write(20, "/dev/null").
				read(10, "/usr/lib/x86_64-linux-gnu/libc.so.6", "/proc/self/maps", "/etc/ld.so.cache", "/devices/x").
				read(20, "/usr/lib/x86_64-linux-gnu/libc.so.6").trace(),
			ap: "10", aps: []int32{10}, procs: []int32{10},
			moves: []string{"/devices/x"}, copies: map[string][]int32{},
			ignored: []string{"/dev/null", "/etc/ld.so.cache", "/proc/self/maps", "/usr/lib/x86_64-linux-gnu/libc.so.6"},
			check: func(t *testing.T, pl *Plan) {
				lines, err := pl.ExplainFile("/dev/null")
				require.NoError(t, err)
				assert.Contains(t, lines[0], "/dev/null is ignored")
			},
		},
		{
			name: "a keep rule brings an ignored directory back into the graph",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/app").proc(20, 1, "/other").
				write(10, "/usr/lib/app/state").read(20, "/usr/lib/app/state").trace(),
			ap: "10", opts: Options{Rules: func() *Rules { r := NewRules(true); _ = r.Keep("/usr/lib/app"); return r }()},
			aps: []int32{10, 20}, procs: []int32{10, 20},
			moves: []string{"/usr/lib/app/state"}, copies: map[string][]int32{},
		},
		{
			name: "an extra ignore rule drops a path from the graph and lists it",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/app").proc(20, 1, "/other").
				write(10, "/var/cache/fc/x").read(20, "/var/cache/fc/x").trace(),
			ap: "10", opts: Options{Rules: func() *Rules { r := NewRules(true); _ = r.Ignore("/var/cache/*/x"); return r }()},
			aps: []int32{10}, procs: []int32{10},
			moves: []string{}, copies: map[string][]int32{}, ignored: []string{"/var/cache/fc/x"},
		},
		{
			name: "POSIX shared memory under /dev/shm is IPC: opening it is write-sharing even read-only",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/app").proc(20, 1, "/peer").
				access(10, "/dev/shm/app-queue", "shm_open", false, 1, 0).access(20, "/dev/shm/app-queue", "shm_open", false, 1, 0).trace(),
			ap: "10", aps: []int32{10, 20}, procs: []int32{10, 20},
			moves: []string{}, copies: map[string][]int32{},
			check: func(t *testing.T, pl *Plan) {
				require.Len(t, pl.RecreateFiles, 1, "a shared-memory object is recreated by its process, never moved as a file")
				assert.Equal(t, RecreateFile{Path: "/dev/shm/app-queue", Kind: KindShm, APs: []int32{10, 20}, Makers: []int32{},
					Reason: "shared-memory object: AP 10 and AP 20 make it again when it starts at the target; never copied"}, pl.RecreateFiles[0])
			},
		},
		{
			name: "an AF_UNIX socket is IPC: a client that connects brings the server that bound it",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/client").proc(20, 1, "/server").
				access(10, "/srv/app.sock", "connect", false, 1, 0).access(20, "/srv/app.sock", "bind", false, 1, 0).trace(),
			ap: "10", aps: []int32{10, 20}, procs: []int32{10, 20},
			moves: []string{}, recreates: []string{"/srv/app.sock"}, copies: map[string][]int32{},
			check: func(t *testing.T, pl *Plan) {
				require.Len(t, pl.RecreateFiles, 1, "a socket is bound again by its server, never copied")
				assert.Equal(t, KindSocket, pl.RecreateFiles[0].Kind)
				assert.Equal(t, []int32{20}, pl.RecreateFiles[0].Makers, "the server that bound it makes it, not the client that connects")
			},
		},
		{
			name: "two clients of one traced server: the server comes, the other client does not",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/client").proc(20, 1, "/server").proc(30, 1, "/other-client").
				access(10, "/srv/app.sock", "connect", true, 1, 0).access(20, "/srv/app.sock", "bind", true, 1, 0).
				access(30, "/srv/app.sock", "connect", true, 1, 0).trace(),
			ap: "10", aps: []int32{10, 20}, procs: []int32{10, 20},
			moves: []string{}, recreates: []string{"/srv/app.sock"}, copies: map[string][]int32{},
		},
		{
			name: "moving a socket's server leaves its clients (they are listed, not pulled)",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/client").proc(20, 1, "/server").
				access(10, "/srv/app.sock", "connect", true, 1, 0).access(20, "/srv/app.sock", "bind", true, 1, 0).trace(),
			ap: "20", aps: []int32{20}, procs: []int32{20},
			moves: []string{}, recreates: []string{"/srv/app.sock"}, copies: map[string][]int32{},
		},
		{
			name: "a FIFO is IPC: its reader brings the process that made it",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/reader").proc(20, 1, "/maker").
				read(10, "/tmp/fifo").access(20, "/tmp/fifo", "mkfifo", false, 1, 0).trace(),
			ap: "10", aps: []int32{10, 20}, procs: []int32{10, 20},
			moves: []string{"/tmp/fifo"}, copies: map[string][]int32{},
		},
		{
			name: "a cat started by a service's shell brings the service, not its siblings or the shared parent",
			trace: newTrace().proc(1, 0, "/bin/sh", "sh", "workload.sh").
				proc(10, 1, "/usr/local/bin/shipper").
				proc(20, 1, "/usr/local/bin/service").proc(21, 20, "/bin/sh").proc(22, 21, "/bin/cat").proc(23, 20, "/usr/local/bin/worker").
				proc(30, 1, "/usr/local/bin/sibling").
				write(10, "/srv/pipe").read(22, "/srv/pipe").
				read(30, "/etc/app.conf").read(1, "/etc/app.conf").read(23, "/etc/app.conf").trace(),
			ap: "10", aps: []int32{10, 20}, procs: []int32{10, 20, 21, 22, 23},
			moves: []string{"/srv/pipe"}, copies: map[string][]int32{"/etc/app.conf": {1, 30}},
			check: func(t *testing.T, pl *Plan) {
				assert.Equal(t, "AP 20 moves because its process 22 (cat) reads /srv/pipe, which AP 10 (moving) writes", pl.APs[1].Reason)
			},
		},
		{
			name: "an ancestor of the AP that write-shares with it moves alone, without its other children",
			trace: newTrace().proc(1, 0, "/usr/local/bin/supervisor").proc(10, 1, "/app").proc(30, 1, "/other").
				write(1, "/run/app.pid").read(10, "/run/app.pid").read(30, "/run/other.pid").trace(),
			ap: "10", aps: []int32{1, 10}, procs: []int32{1, 10},
			moves: []string{"/run/app.pid"}, copies: map[string][]int32{},
			check: func(t *testing.T, pl *Plan) {
				lines, err := pl.ExplainProcess(pl.g.procs[pl.g.byPID[1][0]].key)
				require.NoError(t, err)
				assert.Contains(t, lines[0], "moves alone as AP 1")
			},
		},
		{
			name: "the AP's descendants move with it, and so do the files only they use",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/app").proc(11, 10, "/app-worker").proc(12, 11, "/app-helper").
				write(12, "/srv/tmp/x").read(11, "/srv/conf").trace(),
			ap: "10", aps: []int32{10}, procs: []int32{10, 11, 12},
			moves: []string{"/srv/conf", "/srv/tmp/x"}, copies: map[string][]int32{},
		},
		{
			name: "--process-only moves the process alone: a child it write-shares with comes as its own AP, the others stay",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/app").proc(11, 10, "/writer").proc(12, 10, "/idle").
				proc(13, 11, "/writer-child").
				write(11, "/srv/x").read(10, "/srv/x").read(12, "/srv/y").trace(),
			ap: "10", opts: Options{ProcessOnly: true}, aps: []int32{10, 11}, procs: []int32{10, 11, 13},
			moves: []string{"/srv/x"}, copies: map[string][]int32{},
		},
		{
			name: "a process seen only through its accesses still counts",
			trace: func() *Trace {
				tr := newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/app").read(10, "/srv/x").trace()
				tr.Accesses = append(tr.Accesses, Access{Proc: ProcKey{PID: 77, StartNs: 5}, Path: "/srv/x", Op: "openat", Write: true, Count: 1})
				return tr
			}(),
			ap: "10", aps: []int32{10, 77}, procs: []int32{10, 77},
			moves: []string{"/srv/x"}, copies: map[string][]int32{},
		},
		{
			name:  "lost events mark the plan incomplete and carry the count",
			trace: newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/app").read(10, "/srv/x").dropped(42).trace(),
			ap:    "10", aps: []int32{10}, procs: []int32{10},
			moves: []string{"/srv/x"}, copies: map[string][]int32{},
			check: func(t *testing.T, pl *Plan) {
				assert.True(t, pl.Incomplete)
				assert.Equal(t, uint64(42), pl.DroppedEvents)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl := mustPlan(t, tt.trace, tt.ap, tt.opts)
			assert.Equal(t, tt.aps, apRoots(pl), "moving APs")
			assert.Equal(t, tt.procs, movedPIDs(pl), "moving processes")
			assert.Equal(t, tt.moves, moveFilePaths(pl), "moved files")
			recreated := []string(nil)
			for _, f := range pl.RecreateFiles {
				recreated = append(recreated, f.Path)
			}
			if tt.recreates != nil || tt.check == nil {
				assert.Equal(t, tt.recreates, recreated, "recreated IPC objects")
			}
			assert.Equal(t, tt.copies, copyFileMap(pl), "copied files")
			if tt.ignored == nil {
				tt.ignored = []string{}
			}
			assert.Equal(t, tt.ignored, pl.IgnoredFiles, "ignored files")
			if tt.check != nil {
				tt.check(t, pl)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	tr := newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/old", "old", "--x").exited(10).proc(10, 1, "/new").trace()
	tests := []struct {
		name  string
		spec  string
		want  ProcKey
		error string
	}{
		{name: "a pid one process carried resolves to it", spec: "1", want: ProcKey{PID: 1, StartNs: 1000}},
		{name: "a reused pid is ambiguous and the error lists every incarnation", spec: "10",
			error: "pid 10 was reused: 2 traced processes carried it; name one as 10@START_NS or 10@latest:\n  10@2000  /old old --x (exited)\n  10@3000  /new (no exit recorded)"},
		{name: "PID@latest picks the most recent incarnation", spec: "10@latest", want: ProcKey{PID: 10, StartNs: 3000}},
		{name: "PID@START picks that incarnation", spec: "10@2000", want: ProcKey{PID: 10, StartNs: 2000}},
		{name: "PID@START of no incarnation is an error listing them", spec: "10@5", error: "no process with pid 10 started at 5; the trace has:\n  10@2000"},
		{name: "an unknown pid is an error that says so", spec: "4242", error: "no process with pid 4242 in the trace (it holds 3 processes"},
		{name: "a name no traced process has is an error that points at restrack ps", spec: "abc", error: `no traced process is named "abc" (restrack ps lists`},
		{name: "a pid that is not a number is an error", spec: "-3", error: `process "-3": want PID, PID@START_NS, PID@latest or a command name`},
		{name: "a command name that names one process resolves to it", spec: "old", want: ProcKey{PID: 10, StartNs: 2000}},
		{name: "a command name matches the executable's base name", spec: "sh", want: ProcKey{PID: 1, StartNs: 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := Resolve(tr, tt.spec)
			if tt.error != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.error)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, k)
		})
	}
	t.Run("a name several unrelated processes carry is a SpecError listing them", func(t *testing.T) {
		tr := newTrace().proc(1, 0, "/bin/sh").proc(2, 1, "/bin/cat").proc(3, 1, "/bin/cat").proc(4, 3, "/bin/cat").trace()
		_, err := Resolve(tr, "cat")
		var se *SpecError
		require.ErrorAs(t, err, &se)
		assert.Contains(t, err.Error(), `2 traced processes are named "cat"`, "4 is under 3, a same-named ancestor: not a candidate of its own")
	})
	t.Run("a name carried by a process and its same-named descendants is the topmost", func(t *testing.T) {
		tr := newTrace().proc(1, 0, "/bin/bash").proc(2, 1, "/bin/bash").proc(3, 2, "/bin/ls").trace()
		k, err := Resolve(tr, "bash")
		require.NoError(t, err)
		assert.Equal(t, int32(1), k.PID)
	})
	t.Run("an unknown pid is an UnknownPIDError, also from Compute", func(t *testing.T) {
		_, err := Compute(tr, Options{AP: ProcKey{PID: 99, StartNs: 1}})
		var u *UnknownPIDError
		require.True(t, errors.As(err, &u))
		assert.Equal(t, int32(99), u.PID)
	})
	t.Run("an empty trace says the store holds no process at all", func(t *testing.T) {
		_, err := Resolve(&Trace{}, "5")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "holds no process at all")
	})
}

func TestRules(t *testing.T) {
	r := NewRules(true)
	require.NoError(t, r.Load(strings.NewReader("# site rules\n/opt/vendor\n!/dev/fb0\n/var/cache/*.tmp\n*.pyc\n"), "site.rules"))
	for path, want := range map[string]bool{
		"/proc/1/maps": true, "/dev/null": true, "/dev": true, "/devices": false, "/dev/shm/q": false,
		"/dev/fb0": false, "/opt/vendor/lib.so": true, "/opt/vendors": false, "/var/cache/a.tmp": true,
		"/usr/lib/x86_64-linux-gnu/libc.so.6": true, "/usr/local/lib/x.so": false, "/etc/ld.so.cache": true,
		"/etc/app.conf": false, "/home/u/.bashrc": false, "/etc/passwd": true, "/etc/resolv.conf": true,
		"/etc/passwd-": false, "/etc/hostname": false,
		"/home/u/restrack/build/librestrack.so": true, "/srv/app/x.pyc": true, "/srv/app/x.py": false,
	} {
		assert.Equal(t, want, r.Ignored(path), path)
	}
	assert.Equal(t, []string{"defaults", "site.rules"}, r.Sources)
	assert.False(t, NewRules(false).Ignored("/proc/1/maps"), "no defaults means nothing is ignored")
	err := NewRules(false).Load(strings.NewReader("/ok\nrelative/path\n"), "bad.rules")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad.rules:2: ignore rule \"relative/path\": a rule is an absolute path, a glob, or a file name without a slash")
}

func TestShortCommand(t *testing.T) {
	tests := []struct {
		name string
		p    *Process
		want string
	}{
		{name: "absolute and relative paths in argv are cut to their last element",
			p: &Process{Exe: "/usr/bin/bash", Argv: []string{"bash", "scripts/demo/workload.sh", "shipper", "/tmp/demo"}}, want: "bash workload.sh shipper demo"},
		{name: "a sed expression and a URL keep their slashes",
			p: &Process{Argv: []string{"sed", "-n", "s/^workers=//p", "https://x/y"}}, want: "sed -n s/^workers=//p https://x/y"},
		{name: "no argv falls back to the executable's name",
			p: &Process{Exe: "/usr/local/bin/service"}, want: "service"},
		{name: "a long command is cut to forty characters",
			p: &Process{Argv: []string{"sqlite3", "-cmd", ".timeout 5000", "/srv/app.db", "INSERT INTO requests(path) VALUES ('/item/1');"}}, want: "sqlite3 -cmd .timeout 5000 app.db INSER…"},
		{name: "control bytes and invalid UTF-8 cannot reach the terminal",
			p: &Process{Argv: []string{"a\nb", "\xff"}}, want: "a?b ?"},
		{name: "the root directory stays itself", p: &Process{Argv: []string{"ls", "/"}}, want: "ls /"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, shortCommand(tt.p))
		})
	}
}

func TestDOTQuoting(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"quotes and backslashes are escaped", `/srv/a "b"\c`, `"/srv/a \"b\"\\c"`},
		{"a newline is DOT's line break", "AP 1\nsh", `"AP 1\nsh"`},
		{"a control byte inside a line is shown Go-quoted", "/srv/a\tb", `"\"/srv/a\\tb\""`},
		{"invalid UTF-8 is shown Go-quoted", "/srv/\xff", `"\"/srv/\\xff\""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, dotQuote(tt.in)) })
	}
}
