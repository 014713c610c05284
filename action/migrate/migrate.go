package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/restrack/restrack/planner"
)

// Target is where the APs move: a directory root on this host, or a root
// on another host reached over ssh ([user@]host:root).
type Target struct {
	Host string // "" for a local directory
	Root string // absolute
}

// ParseTarget reads DIR or [user@]host:DIR. A relative DIR is made
// absolute; a remote root defaults to /.
func ParseTarget(s string) (Target, error) {
	if s == "" {
		return Target{}, errors.New("--to TARGET is required: a directory root, or [user@]host:root over ssh")
	}
	if host, root, ok := strings.Cut(s, ":"); ok && host != "" && !strings.Contains(host, "/") {
		if root == "" {
			root = "/"
		}
		if !filepath.IsAbs(root) {
			return Target{}, fmt.Errorf("target %q: the remote root must be an absolute path", s)
		}
		return Target{Host: host, Root: filepath.Clean(root)}, nil
	}
	abs, err := filepath.Abs(s)
	if err != nil {
		return Target{}, err
	}
	if abs == "/" {
		return Target{}, errors.New("target /: moving an AP onto the host it runs on is not a migration (give a directory root or host:root)")
	}
	return Target{Root: abs}, nil
}

func (t Target) String() string {
	if t.Host == "" {
		return t.Root
	}
	return t.Host + ":" + t.Root
}

// Options say what to migrate and where.
type Options struct {
	Plan   *planner.Plan  // computed and enriched on this host
	Trace  *planner.Trace // the processes' cwd
	Target Target
	// Restart chooses what starts at the target: "live" (the APs that run
	// now, the default), "all" (exited ones too, from their root's recorded
	// command line), "none".
	Restart     string
	StopTimeout time.Duration // per AP, then SIGKILL; 0: 10s
	CRIU        CRIUStatus
	// IDs reads a live process's uid and gid (nil: unknown, the target
	// runs it as the user running the script).
	IDs func(pid int32) (uid, gid *uint32)
}

// CRIUStatus is what `criu check` said on this host.
type CRIUStatus struct {
	Installed bool
	OK        bool
	Output    string // its first lines, for the script's comment
}

// CheckCRIU runs `criu check` when criu is installed.
func CheckCRIU(ctx context.Context) CRIUStatus {
	path, err := exec.LookPath("criu")
	if err != nil {
		return CRIUStatus{}
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "check").CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 4 {
		lines = lines[:4]
	}
	return CRIUStatus{Installed: true, OK: err == nil, Output: strings.Join(lines, "\n")}
}

// proc is a process to stop or start.
type proc struct {
	pid      int32
	ticks    uint64 // start time in clock ticks, as /proc/PID/stat says
	exe      string
	argv     []string
	cwd      string
	uid, gid *uint32
}

// apStep is one AP's part of the sequence.
type apStep struct {
	root   int32
	label  string
	live   bool
	why    string
	tops   []proc // live processes whose parent is not live in the AP: they get SIGTERM
	all    []proc // every live process: all must be gone before the files move
	starts []proc // what starts at the target
}

// Script is the whole cold migration, ready to print or run.
type Script struct {
	target   Target
	order    []apStep // stop order; the start order is its reverse
	files    []string // moved by rsync
	copies   int
	recreate []planner.RecreateFile
	missing  []string
	timeout  time.Duration
	criu     CRIUStatus
	plan     *planner.Plan
	restart  string
}

// Build orders the plan's APs and gathers what moves.
func Build(o Options) (*Script, error) {
	pl := o.Plan
	if o.Restart == "" {
		o.Restart = "live"
	}
	if o.Restart != "live" && o.Restart != "all" && o.Restart != "none" {
		return nil, fmt.Errorf("--restart %q: want live, all or none", o.Restart)
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 10 * time.Second
	}
	s := &Script{target: o.Target, timeout: o.StopTimeout, criu: o.CRIU, plan: pl, restart: o.Restart, recreate: pl.RecreateFiles}
	for _, f := range pl.MoveFiles {
		s.addFile(f.Path, f.FileState)
	}
	for _, f := range pl.CopyFiles {
		s.addFile(f.Path, f.FileState)
		s.copies++
	}
	cwd := map[planner.ProcKey]string{}
	if o.Trace != nil {
		for _, p := range o.Trace.Processes {
			cwd[p.Key] = p.Cwd
		}
	}
	byAP := map[int32][]planner.MoveProcess{}
	for _, p := range pl.MoveProcesses {
		byAP[p.AP] = append(byAP[p.AP], p)
	}
	for _, root := range stopOrder(pl) {
		a := apByRoot(pl, root)
		st := apStep{root: root, label: a.Label, live: a.Live, why: a.Reason}
		live := map[int32]bool{}
		for _, p := range byAP[root] {
			if p.Live {
				live[p.PID] = true
			}
		}
		for _, p := range byAP[root] {
			pr := proc{pid: p.PID, ticks: p.StartNs / (1_000_000_000 / 100), exe: p.Exe, argv: p.Argv,
				cwd: cwd[planner.ProcKey{PID: p.PID, StartNs: p.StartNs}]}
			if p.Live && o.IDs != nil {
				pr.uid, pr.gid = o.IDs(p.PID)
			}
			if p.Live {
				st.all = append(st.all, pr)
				if !live[p.PPID] {
					st.tops = append(st.tops, pr)
				}
			}
			if o.Restart == "all" && !a.Live && p.PID == root {
				st.starts = append(st.starts, pr)
			}
		}
		if o.Restart != "none" && a.Live {
			st.starts = st.tops
		}
		s.order = append(s.order, st)
	}
	return s, nil
}

func (s *Script) addFile(path string, st planner.FileState) {
	if st.Exists != nil && !*st.Exists {
		s.missing = append(s.missing, path)
		return
	}
	s.files = append(s.files, path)
}

func apByRoot(pl *planner.Plan, root int32) planner.AP {
	for _, a := range pl.APs {
		if a.Root == root {
			return a
		}
	}
	return planner.AP{Root: root}
}

// stopOrder: an AP stops only after every AP that depends on it — reads a
// file it writes, or connects to an object it makes — has stopped, so that
// no running process ever sees its producer or server vanish, and what a
// writer wrote last is in the files that move. Starting runs the reverse:
// producers and servers first. A cycle (two APs writing one file) is cut
// in the order the APs joined the plan.
func stopOrder(pl *planner.Plan) []int32 {
	apOf := map[int32]int32{}
	for _, p := range pl.MoveProcesses {
		apOf[p.PID] = p.AP
	}
	// dependents[w] = the APs that depend on w.
	dependents := map[int32]map[int32]bool{}
	dep := func(user, producer int32) {
		if user == producer {
			return
		}
		if dependents[producer] == nil {
			dependents[producer] = map[int32]bool{}
		}
		dependents[producer][user] = true
	}
	for _, f := range pl.MoveFiles {
		for _, r := range f.APs {
			if !slices.Contains(f.Writers, r) {
				for _, w := range f.Writers {
					dep(r, w)
				}
			}
		}
	}
	for _, f := range pl.RecreateFiles {
		var makers []int32
		for _, pid := range f.Makers {
			makers = append(makers, apOf[pid])
		}
		for _, a := range f.APs {
			if !slices.Contains(makers, a) {
				for _, m := range makers {
					dep(a, m)
				}
			}
		}
	}
	var order []int32
	done := map[int32]bool{}
	for len(order) < len(pl.APs) {
		next := int32(-1)
		for _, a := range pl.APs {
			if done[a.Root] {
				continue
			}
			ready := true
			for d := range dependents[a.Root] {
				if !done[d] {
					ready = false
					break
				}
			}
			if ready {
				next = a.Root
				break
			}
		}
		if next < 0 { // a cycle: the earliest AP in the plan goes first
			for _, a := range pl.APs {
				if !done[a.Root] {
					next = a.Root
					break
				}
			}
		}
		done[next] = true
		order = append(order, next)
	}
	return order
}

// Write prints the script: bash, commented for review.
func (s *Script) Write(w io.Writer) error {
	b := &strings.Builder{}
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	pl := s.plan
	p("#!/usr/bin/env bash\n")
	p("# Cold migration of AP %d (%s) to %s, written by restrack migrate --emit.\n", pl.AP.PID, oneLine(pl.AP.Command), oneLine(s.target.String()))
	p("# Review it, then run it as root (or as the owner of every process below).\n#\n")
	p("# The sequence: stop the live moving APs, each only after every AP that reads\n")
	p("# what it writes (or connects to what it serves) has stopped, so no running\n")
	p("# process sees its producer vanish and the last writes are in the files; copy\n")
	p("# the files with rsync; start the APs at the target in the reverse order,\n")
	p("# producers and servers first, with their recorded argv, cwd and uid/gid.\n")
	p("# Originals stay at the source: %d of the files are Model 1 copies that APs\n", s.copies)
	p("# staying here still read; delete the others yourself once the move is checked.\n")
	if pl.Incomplete {
		p("#\n# WARNING: the trace lost %d events: a dependency may be missing.\n", pl.DroppedEvents)
	}
	p("set -euo pipefail\n\n")
	p("ROOT=%s\n", Quote(s.target.Root))
	if s.target.Host != "" {
		p("HOST=%s\n", Quote(s.target.Host))
		p("# The ssh command (RESTRACK_SSH overrides it, e.g. to add -p PORT -i KEY).\n")
		p("SSH=${RESTRACK_SSH:-ssh}\n")
	}
	p("LOGDIR=\"$ROOT/var/log/restrack-migrate\"\n")
	p("STOP_TIMEOUT=%d\n\n", int(s.timeout.Seconds()))
	p("# The host's system directories and files, bound read-only into the root\n# (in a private mount namespace) so that its programs can run there.\n")
	p("PRELUDE=%s\n\n", Quote(ChrootPrelude("\"$ROOT\"")))
	p("%s", helpers)
	if s.target.Host == "" {
		p("%s\n", startLocal)
	} else {
		p("%s\n", startRemote)
	}

	p("# ---- CRIU ----\n")
	switch {
	case !s.criu.Installed:
		p("# criu is not installed here: a live (checkpoint/restore) move is not offered;\n# this script does the cold path.\n\n")
	case !s.criu.OK:
		p("# `criu check` failed on this host, so a live move is not offered and this\n# script does the cold path. It said:\n")
		for _, l := range strings.Split(s.criu.Output, "\n") {
			p("#   %s\n", oneLine(l))
		}
		p("\n")
	default:
		p("# `criu check` passed: instead of stop/start, a live AP can be checkpointed and\n")
		p("# restored at the target (with its files moved in between). Per live AP:\n")
		for _, st := range s.order {
			if !st.live || len(st.tops) == 0 {
				continue
			}
			opts := criuOptions(pl, st)
			p("#   criu dump -t %d -D \"$ROOT/var/lib/restrack-criu/ap-%d\" %s\n", st.tops[0].pid, st.root, opts)
			p("#   criu restore -D \"$ROOT/var/lib/restrack-criu/ap-%d\" %s --restore-detached\n", st.root, opts)
		}
		p("# (criu restores processes with their pids: the target must have them free.)\n\n")
	}

	p("# ---- 1. stop the live moving APs, dependents first ----\n")
	stopped := 0
	for _, st := range s.order {
		if !st.live {
			p("# AP %d (%s): exited, nothing to stop\n", st.root, oneLine(st.label))
			continue
		}
		stopped++
		p("# AP %d (%s): %s\n", st.root, oneLine(st.label), oneLine(st.why))
		p("stop_ap %d", st.root)
		for _, t := range st.tops {
			p(" %d:%d", t.pid, t.ticks)
		}
		p(" --")
		for _, t := range st.all {
			p(" %d:%d", t.pid, t.ticks)
		}
		p("\n")
	}
	if stopped == 0 {
		p("# (no moving AP runs now: nothing to stop)\n")
	}

	p("\n# ---- 2. move the files (%d; %d are copies whose originals stay) ----\n", len(s.files), s.copies)
	for _, m := range s.missing {
		p("# gone from this host, not moved: %s\n", oneLine(m))
	}
	for _, f := range s.recreate {
		p("# not moved, its process makes it again (%s): %s\n", f.Kind, oneLine(f.Path))
	}
	if len(s.files) > 0 {
		dest := "\"$ROOT/\""
		rsh := ""
		if s.target.Host != "" {
			dest = "\"$HOST:$ROOT/\""
			rsh = " -e \"$SSH\""
			p("$SSH \"$HOST\" mkdir -p \"$ROOT\"\n")
		} else {
			p("mkdir -p \"$ROOT\"\n")
		}
		p("printf '%%s\\0' \\\n")
		for i, f := range s.files {
			sep := " \\\n"
			if i == len(s.files)-1 {
				sep = " |\n"
			}
			p("\t%s%s", Quote(f), sep)
		}
		p("\trsync --archive --hard-links --acls --xattrs --sparse --numeric-ids --from0 --files-from=- --ignore-missing-args%s / %s\n", rsh, dest)
	}

	p("\n# ---- 3. start the APs at the target, producers and servers first ----\n")
	started := 0
	if s.target.Host == "" {
		p("mkdir -p \"$LOGDIR\"\n")
	} else {
		p("$SSH \"$HOST\" mkdir -p \"$LOGDIR\"\n")
	}
	for i := len(s.order) - 1; i >= 0; i-- {
		st := s.order[i]
		if len(st.starts) == 0 {
			why := "exited: history, nothing to run (--restart all starts it again)"
			if st.live {
				why = "--restart none"
			}
			p("# AP %d (%s): %s\n", st.root, oneLine(st.label), why)
			continue
		}
		for _, pr := range st.starts {
			started++
			user := "\"\""
			if pr.uid != nil && pr.gid != nil {
				user = fmt.Sprintf("%d:%d", *pr.uid, *pr.gid)
			}
			cwd := pr.cwd
			if cwd == "" {
				cwd = "/"
			}
			exe := pr.exe
			if exe == "" && len(pr.argv) > 0 {
				exe = pr.argv[0]
			}
			args := []string{Quote(exe)}
			for _, a := range pr.argv[min(1, len(pr.argv)):] {
				args = append(args, Quote(a))
			}
			p("# AP %d (%s), was pid %d\n", st.root, oneLine(st.label), pr.pid)
			p("start_ap %d %s %s %s\n", st.root, user, Quote(cwd), strings.Join(args, " "))
		}
	}
	if started == 0 {
		p("# (nothing to start)\n")
	}
	p("echo \"restrack migrate: done: %d APs stopped, %d files moved, %d processes started at %s\"\n", stopped, len(s.files), started, strings.ReplaceAll(oneLine(s.target.String()), "\"", ""))
	_, err := io.WriteString(w, b.String())
	return err
}

// criuOptions are the options a plan implies for an AP's dump and restore.
func criuOptions(pl *planner.Plan, st apStep) string {
	opts := []string{"--shell-job"} // the processes may hold a terminal
	for _, f := range pl.RecreateFiles {
		if f.Kind == planner.KindSocket && slices.Contains(f.APs, st.root) {
			opts = append(opts, "--ext-unix-sk")
			break
		}
	}
	opts = append(opts, "--tcp-established")
	return strings.Join(opts, " ")
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}

// helpers are the script's functions. A process is named pid:ticks: the
// pid and its start time, so a reused pid is never signalled.
const helpers = `# alive PID:TICKS — the process runs (a reused pid, or a zombie, does not).
alive() {
	local pid=${1%%:*} ticks=${1#*:} stat
	stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
	read -r -a f <<<"${stat##*) }"
	[ "${f[19]}" = "$ticks" ] && [ "${f[0]}" != Z ] && [ "${f[0]}" != X ]
}

# stop_ap AP TOP... -- ALL...: SIGTERM to the AP's top live processes, then
# wait until every one of its live processes is gone; SIGKILL after
# $STOP_TIMEOUT seconds.
stop_ap() {
	local ap=$1 p deadline
	shift
	local tops=()
	while [ "$1" != -- ]; do tops+=("$1"); shift; done
	shift
	for p in "${tops[@]}"; do
		if alive "$p"; then kill -TERM "${p%%:*}" 2>/dev/null || true; fi
	done
	deadline=$((SECONDS + STOP_TIMEOUT))
	for p in "$@"; do
		while alive "$p"; do
			if [ "$SECONDS" -ge "$deadline" ]; then
				echo "restrack migrate: AP $ap: process ${p%%:*} did not stop within ${STOP_TIMEOUT}s: SIGKILL" >&2
				kill -KILL "${p%%:*}" 2>/dev/null || true
			fi
			sleep 0.05
		done
	done
	echo "restrack migrate: AP $ap stopped"
}
`

// startLocal starts a process chrooted into the target root, in a private
// mount namespace where the host's system directories are bound
// read-only (PRELUDE, from ChrootPrelude). Inside bash -c: $1 is UID:GID,
// $2 the cwd, the rest the command.
const startLocal = `
# start_ap AP UID:GID CWD EXE ARGS... — starts a process in the target root,
# detached, its output in $LOGDIR/ap-AP.log. An empty UID:GID (unknown for an
# exited process) runs it as the user running this script.
start_ap() {
	local ap=$1 spec=$2 cwd=$3
	shift 3
	[ -n "$spec" ] || spec="$(id -u):$(id -g)"
	# shellcheck disable=SC2016 # expanded by the inner shells, not here
	ROOT="$ROOT" setsid unshare --mount --propagation private -- bash -c "$PRELUDE"'
exec chroot --userspec="$1" "$ROOT" /bin/sh -c '"'"'cd "$1" && shift && exec "$@"'"'"' sh "$2" "${@:3}"' start "$spec" "$cwd" "$@" </dev/null >>"$LOGDIR/ap-$ap.log" 2>&1 &
	echo "restrack migrate: AP $ap: started pid $! ($*)"
}
`

// startRemote does the same on the target host over ssh: chrooted (with
// the same binds) when the root is not /, else as UID:GID with setpriv.
// Words are single-quoted by shq, which every POSIX shell reads (printf
// %q's $'…' is bash's alone, and the remote login shell may be sh).
const startRemote = `
# shq WORD... — each word single-quoted, for any POSIX shell at the other end.
shq() {
	local w out=
	for w in "$@"; do out+="'${w//\'/\'\\\'\'}' "; done
	printf '%s' "${out% }"
}

# start_ap AP UID:GID CWD EXE ARGS... — starts a process on $HOST, detached,
# its output in $LOGDIR/ap-AP.log there. An empty UID:GID (unknown for an
# exited process) runs it as the ssh user.
start_ap() {
	local ap=$1 spec=$2 cwd=$3 cmd
	shift 3
	cmd="cd $(shq "$cwd") && exec $(shq "$@")"
	if [ "$ROOT" != / ]; then
		cmd="ROOT=$(shq "$ROOT") unshare --mount --propagation private -- /bin/sh -c $(shq "$PRELUDE
exec chroot --userspec=${spec:-0:0} \"\$ROOT\" /bin/sh -c $(shq "$cmd")")"
	elif [ -n "$spec" ]; then
		cmd="setpriv --reuid=${spec%%:*} --regid=${spec#*:} --clear-groups /bin/sh -c $(shq "$cmd")"
	fi
	$SSH -n "$HOST" "setsid /bin/sh -c $(shq "$cmd") </dev/null >>$(shq "$LOGDIR/ap-$ap.log") 2>&1 &"
	echo "restrack migrate: AP $ap: started on $HOST ($*)"
}
`

// Run executes the script with bash, its output streamed.
func (s *Script) Run(ctx context.Context, stdout, stderr io.Writer) error {
	f, err := os.CreateTemp("", "restrack-migrate-*.sh")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := s.Write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "bash", f.Name())
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("the migration script failed: %w", err)
	}
	return nil
}
