package planner

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// randomTrace makes a forest of processes (some pids reused) sharing a small
// pool of files, with reads, writes, IPC ops, failures and ignored paths.
func randomTrace(r *rand.Rand) *Trace {
	tr := &Trace{}
	n := 1 + r.IntN(40)
	for i := range n {
		pid := int32(2 + r.IntN(n+5)) // collisions reuse pids
		p := Process{Key: ProcKey{PID: pid, StartNs: uint64(i+1) * 100}, Exe: fmt.Sprintf("/bin/p%d", i)}
		if i > 0 && r.IntN(5) != 0 {
			par := tr.Processes[r.IntN(i)]
			p.Parent, p.PPID = par.Key, par.Key.PID
		}
		p.Exited = r.IntN(4) == 0
		tr.Processes = append(tr.Processes, p)
	}
	files := 1 + r.IntN(30)
	for range r.IntN(4 * n) {
		path := fmt.Sprintf("/data/f%d", r.IntN(files))
		if r.IntN(8) == 0 {
			path = "/dev/null"
		}
		op, write := "openat", r.IntN(3) == 0
		if r.IntN(8) == 0 {
			// Network endpoints on a few ports: servers and clients.
			port := 8000 + r.IntN(3)
			switch r.IntN(4) {
			case 0:
				op, path = "listen", fmt.Sprintf("tcp://%s:%d", []string{"0.0.0.0", "127.0.0.1", "[::]"}[r.IntN(3)], port)
			case 1:
				op, path = "bind", fmt.Sprintf("udp://0.0.0.0:%d", port)
			default:
				op, path = []string{"connect", "sendto"}[r.IntN(2)], fmt.Sprintf("%s://%s:%d", []string{"tcp", "udp"}[r.IntN(2)],
					[]string{"127.0.0.1", "[::1]", "10.9.8.7"}[r.IntN(3)], port)
			}
		} else if r.IntN(10) == 0 {
			// AF_UNIX sockets, some under a host daemons' directory.
			op, write = []string{"connect", "bind"}[r.IntN(2)], false
			path = fmt.Sprintf("%s/s%d.sock", []string{"/srv", "/run"}[r.IntN(2)], r.IntN(4))
		}
		a := Access{Proc: tr.Processes[r.IntN(n)].Key, Path: path, Op: op, Write: write, Count: 1}
		if r.IntN(6) == 0 {
			a.Count, a.Failures = 0, 1
		}
		tr.Accesses = append(tr.Accesses, a)
	}
	return tr
}

// TestPlanIsClosedAndMinimal checks, on random graphs and against the raw
// trace rather than the planner's own structures, that:
//   - closed: no staying process shares a written file with a moving one,
//     and every non-ignored file a moving process used is in exactly one of
//     move_files and copy_files (copy_files naming every staying reader);
//   - sockets: a moving client's server moves, clients never pull each
//     other, and a socket nobody traced bound (or under /run) ties nobody
//     and is listed in host_sockets;
//   - whole APs: the requested subtree moves, and a moving partner brings
//     its descendants;
//   - minimal: every moving AP but the requested one has a cause that holds
//     in the trace and points at an AP that joined earlier, so every chain
//     ends at the requested AP.
func TestPlanIsClosedAndMinimal(t *testing.T) {
	rules := NewRules(true)
	for seed := range uint64(800) {
		r := rand.New(rand.NewPCG(seed, 7))
		tr := randomTrace(r)
		ap := tr.Processes[r.IntN(len(tr.Processes))].Key
		opts := Options{AP: ap, ProcessOnly: r.IntN(4) == 0}
		pl, err := Compute(tr, opts)
		require.NoError(t, err, "seed %d", seed)
		msg := fmt.Sprintf("seed %d", seed)

		moving := map[ProcKey]bool{}
		for _, p := range pl.MoveProcesses {
			moving[ProcKey{PID: p.PID, StartNs: p.StartNs}] = true
		}
		type use struct{ moving, staying, written, socket, bound, stayingBinder bool }
		uses := map[string]*use{}
		writes := map[[2]any]bool{} // proc, path → writes (successful accesses only)
		accessed := map[[2]any]bool{}
		checkEndpointClosure(t, msg, tr, moving)
		netUsed := map[[3]any]bool{}
		for _, a := range tr.Accesses {
			if a.Count == 0 || !isEndpoint(a.Path) {
				continue
			}
			role := "reaches"
			if a.Op == "listen" || a.Op == "bind" {
				role = "serves"
			}
			netUsed[[3]any{a.Proc, a.Path, role}] = true
		}
		for _, a := range tr.Accesses {
			if a.Count == 0 || rules.Ignored(a.Path) || isEndpoint(a.Path) {
				continue
			}
			u := uses[a.Path]
			if u == nil {
				u = &use{}
				uses[a.Path] = u
			}
			w := a.Write || a.Op == "bind"
			u.socket = u.socket || a.Op == "connect" || a.Op == "bind"
			u.bound = u.bound || a.Op == "bind"
			u.stayingBinder = u.stayingBinder || a.Op == "bind" && !moving[a.Proc]
			u.written = u.written || w
			if moving[a.Proc] {
				u.moving = true
			} else {
				u.staying = true
			}
			accessed[[2]any{a.Proc, a.Path}] = true
			writes[[2]any{a.Proc, a.Path}] = writes[[2]any{a.Proc, a.Path}] || w
		}
		inMove := map[string]bool{}
		for _, f := range pl.MoveFiles {
			inMove[f.Path] = true
		}
		for _, f := range pl.RecreateFiles {
			inMove[f.Path] = true // IPC objects: listed apart, but they move with the plan all the same
		}
		inCopy := map[string]bool{}
		for _, f := range pl.CopyFiles {
			inCopy[f.Path] = true
		}
		inHost := map[string]bool{}
		for _, h := range pl.HostSockets {
			inHost[h.Path] = true
		}
		for path, u := range uses {
			if u.socket {
				host := !u.bound || rules.HostSocket(path)
				assert.Equal(t, u.moving && host, inHost[path], "%s: %s in host_sockets", msg, path)
				assert.Equal(t, u.moving && !host, inMove[path], "%s: %s in move_files", msg, path)
				assert.False(t, inCopy[path], "%s: socket %s is never copied", msg, path)
				if u.moving && !host {
					assert.False(t, u.stayingBinder, "%s: %s is used by a moving AP but its server stays", msg, path)
				}
				continue
			}
			if u.moving && u.staying {
				assert.False(t, u.written, "%s: %s is written and shared across the plan's border", msg, path)
			}
			assert.Equal(t, u.moving && !u.staying, inMove[path], "%s: %s in move_files", msg, path)
			assert.Equal(t, u.moving && u.staying, inCopy[path], "%s: %s in copy_files", msg, path)
		}

		// Whole APs.
		parentOf := map[ProcKey]ProcKey{}
		for _, p := range tr.Processes {
			parentOf[p.Key] = p.Parent
		}
		assert.True(t, moving[ap], msg)
		ancestorOfAP := map[ProcKey]bool{}
		for k, steps := parentOf[ap], 0; k != (ProcKey{}) && steps < 100; k, steps = parentOf[k], steps+1 {
			ancestorOfAP[k] = true
		}
		for _, p := range tr.Processes {
			par := p.Parent
			if par == (ProcKey{}) || !moving[par] || moving[p.Key] {
				continue
			}
			// A staying child of a moving process: allowed only when the
			// parent is an ancestor of the AP (it moves alone) or is the
			// --process-only AP itself.
			assert.True(t, ancestorOfAP[par] || opts.ProcessOnly && par == ap,
				"%s: %v moves but its child %v stays", msg, par, p.Key)
		}

		// Minimal: causes hold and point backwards.
		require.NotEmpty(t, pl.APs, msg)
		assert.True(t, pl.APs[0].Requested, msg)
		joined := map[int32]int{}
		for i, a := range pl.APs {
			if _, dup := joined[a.Root]; !dup {
				joined[a.Root] = i
			}
			if i == 0 {
				assert.Nil(t, a.Cause, msg)
				continue
			}
			c := a.Cause
			require.NotNil(t, c, msg)
			if c.Via == "port" {
				// Through a port: the AP serves Path, ByProc reached it as Connected.
				assert.True(t, netUsed[[3]any{c.Proc, c.Path, "serves"}], "%s: AP %d's cause: %v does not serve %s", msg, a.Root, c.Proc, c.Path)
				assert.True(t, netUsed[[3]any{c.ByProc, c.Connected, "reaches"}], "%s: AP %d's cause: %v never reached %s", msg, a.Root, c.ByProc, c.Connected)
			} else {
				assert.True(t, accessed[[2]any{c.Proc, c.Path}], "%s: AP %d's cause: %v never used %s", msg, a.Root, c.Proc, c.Path)
				assert.True(t, accessed[[2]any{c.ByProc, c.Path}], "%s: AP %d's cause: %v never used %s", msg, a.Root, c.ByProc, c.Path)
				assert.True(t, c.ProcWrites || c.ByWrites, "%s: AP %d's cause is read-only sharing", msg, a.Root)
				assert.Equal(t, writes[[2]any{c.Proc, c.Path}] || !c.ProcWrites, true, msg)
			}
			assert.True(t, slices.Contains(a.Processes, c.Proc.PID), "%s: cause process %v not in AP %d", msg, c.Proc, a.Root)
			j, ok := joined[c.ByAP]
			assert.True(t, ok && j < i, "%s: AP %d was pulled by AP %d, which had not joined", msg, a.Root, c.ByAP)
			assert.True(t, moving[c.ByProc], msg)
		}
		// The same trace with its files numbered (as a store may give
		// it) plans identically.
		numbered := withFileNumbers(tr)
		pl2, err := Compute(numbered, opts)
		require.NoError(t, err, msg)
		var a, b bytes.Buffer
		require.NoError(t, pl.WriteJSON(&a))
		require.NoError(t, pl2.WriteJSON(&b))
		require.Equal(t, a.String(), b.String(), "%s: numbering the files changed the plan", msg)

		// Every moving process is in a listed AP.
		total := 0
		for _, a := range pl.APs {
			total += len(a.Processes)
		}
		assert.Equal(t, len(pl.MoveProcesses), total, msg)
		if t.Failed() {
			return
		}
	}
}

// withFileNumbers copies tr with Trace.Files and Access.File filled in.
func withFileNumbers(tr *Trace) *Trace {
	out := *tr
	out.Accesses = slices.Clone(tr.Accesses)
	out.Files = nil
	num := map[string]int32{}
	for i := range out.Accesses {
		a := &out.Accesses[i]
		n, ok := num[a.Path]
		if !ok {
			out.Files = append(out.Files, a.Path)
			n = int32(len(out.Files))
			num[a.Path] = n
		}
		a.File = n
	}
	return &out
}

func TestFileNumbersAreUsedOnlyWhenEveryAccessHasOne(t *testing.T) {
	tr := newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/a").proc(20, 1, "/b").
		write(10, "/srv/x").read(20, "/srv/x").trace()
	tr.Files = []string{"/srv/x"}
	tr.Accesses[0].File = 1 // the second access has no number: paths decide
	pl := mustPlan(t, tr, "10", Options{})
	assert.Equal(t, []int32{10, 20}, apRoots(pl), "both accesses are on one file")
	assert.False(t, usesFileNumbers(tr))
	tr.Accesses[1].File = 1
	assert.True(t, usesFileNumbers(tr))
	pl = mustPlan(t, tr, "10", Options{})
	assert.Equal(t, []int32{10, 20}, apRoots(pl))
	lines, err := pl.ExplainFile("/srv/x")
	require.NoError(t, err, "explain finds a path even when the build indexed by number")
	assert.Contains(t, lines[0], "/srv/x moves")
	tr.Accesses[1].File = 2 // out of range: paths decide
	assert.False(t, usesFileNumbers(tr))
}

// checkEndpointClosure: a moving client's local server moves, computed from
// the raw trace with the documented matching rule.
func checkEndpointClosure(t *testing.T, msg string, tr *Trace, moving map[ProcKey]bool) {
	type srv struct {
		proc ProcKey
		ep   endpoint
	}
	var servers []srv
	for _, a := range tr.Accesses {
		ep, ok := parseEndpoint(a.Path)
		if a.Count == 0 || !ok {
			continue
		}
		if a.Op == "listen" || a.Op == "bind" && ep.proto == "udp" && ep.port != 0 {
			servers = append(servers, srv{a.Proc, ep})
		}
	}
	for _, a := range tr.Accesses {
		ep, ok := parseEndpoint(a.Path)
		if a.Count == 0 || !ok || !moving[a.Proc] || a.Op != "connect" && a.Op != "sendto" {
			continue
		}
		for _, s := range servers {
			sameAddr := s.ep.addr == ep.addr
			wild := s.ep.addr.IsUnspecified() && ep.addr.IsLoopback() && (s.ep.addr.Is6() || ep.addr.Is4())
			if s.ep.proto == ep.proto && s.ep.port == ep.port && (sameAddr || wild) {
				assert.True(t, moving[s.proc], "%s: %v moves and reaches %s, served by %v, which stays", msg, a.Proc, a.Path, s.proc)
			}
		}
	}
}
