package planner

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// Network endpoints (design §16): the shim records TCP/UDP operations as
// accesses whose path is an endpoint ("tcp://127.0.0.1:5432", see
// docs/ring-abi.md). They never enter the file graph. A traced client that
// connects to an address of this host where a traced process listens is
// tied to that server's AP the way a unix-socket client is: the client
// cannot move without it. A moving server does not pull its clients: they
// are listed (listen_endpoints) to be redirected. What the moving APs reach
// and no traced process serves is listed too (external_endpoints).

// isEndpoint: a network endpoint recorded as an event path, not a file.
func isEndpoint(path string) bool {
	return len(path) > 0 && path[0] != '/' && strings.Contains(path, "://")
}

// endpoint is a parsed endpoint path.
type endpoint struct {
	proto string     // tcp, udp, sctp; ip when the shim could not learn it
	addr  netip.Addr // IPv4-mapped addresses unmapped
	port  uint16
	peer  netip.Addr // accept: the client's host, when known
	text  string     // the path without ?peer=
}

// parseEndpoint reads "proto://host:port[?peer=host]".
func parseEndpoint(s string) (endpoint, bool) {
	proto, rest, ok := strings.Cut(s, "://")
	if !ok {
		return endpoint{}, false
	}
	ep := endpoint{proto: proto, text: s}
	if hp, peer, ok := strings.Cut(rest, "?peer="); ok {
		rest = hp
		ep.text = proto + "://" + hp
		if a, err := netip.ParseAddr(peer); err == nil {
			ep.peer = a.Unmap()
		}
	}
	ap, err := netip.ParseAddrPort(rest)
	if err != nil {
		return endpoint{}, false
	}
	ep.addr, ep.port = ap.Addr().Unmap(), ap.Port()
	return ep, true
}

func (e endpoint) wildcard() bool { return e.addr.IsUnspecified() }

// reaches: a client connecting to c reaches a server bound to e. A
// wildcard server takes any of this host's addresses: loopback, or one a
// traced server bound by name (local); a 0.0.0.0 server takes no IPv6.
func (e endpoint) reaches(c endpoint, local map[netip.Addr]bool) bool {
	if e.port != c.port || (e.proto != c.proto && e.proto != "ip" && c.proto != "ip") {
		return false
	}
	if e.addr == c.addr {
		return true
	}
	if !e.wildcard() || !(c.addr.IsLoopback() || local[c.addr]) {
		return false
	}
	return e.addr.Is6() || c.addr.Is4()
}

// onHost: c names this host (loopback, or an address a traced server bound).
func onHost(c endpoint, local map[netip.Addr]bool) bool {
	return c.addr.IsLoopback() || c.addr.IsUnspecified() || local[c.addr]
}

// server is one endpoint some traced processes serve: TCP listen (and the
// accepts on it), or a UDP bind to a fixed port.
type server struct {
	ep    endpoint
	procs []int32         // processes that listen or accept on it
	peers map[string]bool // hosts accepted from
}

// tie: client process → a server process it connected to.
type tie struct {
	server    int32 // process
	srv       int32 // index into net.servers
	connected string
}

// use: a moving-side client access, for the external list.
type use struct {
	proc int32
	ep   endpoint
	srv  []int32 // servers it reached (none: external)
}

type netGraph struct {
	servers []server
	ties    map[int32][]tie // by client process
	uses    []use
	local   map[netip.Addr]bool
}

func (g *graph) buildNet(tr *Trace) *netGraph {
	n := &netGraph{ties: map[int32][]tie{}, local: map[netip.Addr]bool{}}
	if len(g.endpointAcc) == 0 {
		return n
	}
	byText := map[string]int32{}
	addServer := func(ep endpoint, p int32) int32 {
		i, ok := byText[ep.text]
		if !ok {
			i = int32(len(n.servers))
			byText[ep.text] = i
			n.servers = append(n.servers, server{ep: ep, peers: map[string]bool{}})
		}
		if !slices.Contains(n.servers[i].procs, p) {
			n.servers[i].procs = append(n.servers[i].procs, p)
		}
		return i
	}
	type client struct {
		proc int32
		ep   endpoint
	}
	var clients []client
	for _, ai := range g.endpointAcc {
		a := &tr.Accesses[ai]
		if a.Count == 0 {
			continue // a failed call ties nobody
		}
		ep, ok := parseEndpoint(a.Path)
		p, known := g.byKey[a.Proc]
		if !ok || !known {
			continue
		}
		switch a.Op {
		case "listen":
			addServer(ep, p)
		case "accept", "accept4":
			i := addServer(ep, p)
			if ep.peer.IsValid() {
				n.servers[i].peers[ep.peer.String()] = true
			}
		case "bind":
			// A datagram socket bound to a fixed port serves it; a
			// stream socket serves only once it listens.
			if ep.port != 0 && (ep.proto == "udp") {
				addServer(ep, p)
			}
		case "connect", "sendto", "sendmsg":
			clients = append(clients, client{p, ep})
		}
	}
	for _, s := range n.servers {
		if !s.ep.wildcard() && !s.ep.addr.IsLoopback() {
			n.local[s.ep.addr] = true
		}
	}
	// Servers by port: a client is compared with those of its port only,
	// so the matching stays linear in the endpoints of a trace.
	byPort := map[uint16][]int32{}
	for si := range n.servers {
		byPort[n.servers[si].ep.port] = append(byPort[n.servers[si].ep.port], int32(si))
	}
	for _, c := range clients {
		u := use{proc: c.proc, ep: c.ep}
		for _, si := range byPort[c.ep.port] {
			s := &n.servers[si]
			if !s.ep.reaches(c.ep, n.local) {
				continue
			}
			u.srv = append(u.srv, si)
			for _, sp := range s.procs {
				if sp != c.proc {
					n.ties[c.proc] = append(n.ties[c.proc], tie{server: sp, srv: si, connected: c.ep.text})
				}
			}
		}
		n.uses = append(n.uses, u)
	}
	return n
}

// ListenEndpoint is a port a moving AP serves. Its clients that stay must
// be redirected to the target; remote clients are hosts that connected.
type ListenEndpoint struct {
	Endpoint      string           `json:"endpoint"` // as bound, e.g. tcp://0.0.0.0:5432
	Proto         string           `json:"proto"`
	Address       string           `json:"address"`
	Port          uint16           `json:"port"`
	APs           []int32          `json:"aps"` // moving APs that serve it
	Clients       []EndpointClient `json:"clients"`
	RemoteClients []string         `json:"remote_clients"` // client hosts seen by accept, not this host's
	Reason        string           `json:"reason"`
}

// EndpointClient is a traced process that connected to a served endpoint.
type EndpointClient struct {
	PID       int32  `json:"pid"`
	StartNs   uint64 `json:"start_ns"`
	AP        int32  `json:"ap"`
	Command   string `json:"command"`
	Moving    bool   `json:"moving"`
	Connected string `json:"connected"` // the address it used
}

// ExternalEndpoint is an address the moving APs reach that no traced
// process serves: the target must reach it too. Local: it is on this host
// (loopback), served by an untraced process — a host daemon the target
// host must provide; it ties nobody.
type ExternalEndpoint struct {
	Endpoint string  `json:"endpoint"`
	Proto    string  `json:"proto"`
	Address  string  `json:"address"`
	Port     uint16  `json:"port"`
	Local    bool    `json:"local"`
	APs      []int32 `json:"aps"`
	Reason   string  `json:"reason"`
}

// assembleNet fills listen_endpoints and external_endpoints.
func (pl *Plan) assembleNet() {
	g, n := pl.g, pl.net
	pl.ListenEndpoints = []ListenEndpoint{}
	pl.ExternalEndpoints = []ExternalEndpoint{}
	rootOf := func(p int32) int32 { return g.procs[pl.units[pl.unit[p]].root].key.PID }
	moving := func(p int32) bool { return pl.units[pl.unit[p]].moving }
	for si := range n.servers {
		s := &n.servers[si]
		var aps []int32
		for _, p := range s.procs {
			if moving(p) {
				aps = append(aps, rootOf(p))
			}
		}
		if len(aps) == 0 {
			continue
		}
		le := ListenEndpoint{Endpoint: s.ep.text, Proto: s.ep.proto, Address: s.ep.addr.String(), Port: s.ep.port,
			APs: sortedUnique(aps), Clients: []EndpointClient{}, RemoteClients: []string{}}
		seen := map[[2]int32]bool{}
		var staying []int32
		for _, u := range n.uses {
			if !slices.Contains(u.srv, int32(si)) || slices.Contains(s.procs, u.proc) || seen[[2]int32{u.proc, 0}] {
				continue
			}
			seen[[2]int32{u.proc, 0}] = true
			k := g.procs[u.proc].key
			le.Clients = append(le.Clients, EndpointClient{PID: k.PID, StartNs: k.StartNs, AP: rootOf(u.proc),
				Command: g.name(u.proc), Moving: moving(u.proc), Connected: u.ep.text})
			if !moving(u.proc) {
				staying = append(staying, rootOf(u.proc))
			}
		}
		sort.Slice(le.Clients, func(i, j int) bool {
			a, b := le.Clients[i], le.Clients[j]
			return a.PID < b.PID || a.PID == b.PID && a.StartNs < b.StartNs
		})
		for h := range s.peers {
			if a, err := netip.ParseAddr(h); err == nil && !a.IsLoopback() && !n.local[a] {
				le.RemoteClients = append(le.RemoteClients, h)
			}
		}
		sort.Strings(le.RemoteClients)
		le.Reason = fmt.Sprintf("served by %s, which moves", apList(le.APs))
		switch staying = sortedUnique(staying); {
		case len(staying) > 0:
			le.Reason += fmt.Sprintf("; its clients %s stay and must be redirected to the target", apList(staying))
		case len(le.RemoteClients) > 0:
			le.Reason += "; its remote clients must be redirected to the target"
		}
		pl.ListenEndpoints = append(pl.ListenEndpoints, le)
	}
	sort.Slice(pl.ListenEndpoints, func(i, j int) bool { return pl.ListenEndpoints[i].Endpoint < pl.ListenEndpoints[j].Endpoint })

	ext := map[string]*ExternalEndpoint{}
	for _, u := range n.uses {
		if len(u.srv) > 0 || !moving(u.proc) {
			continue
		}
		e := ext[u.ep.text]
		if e == nil {
			e = &ExternalEndpoint{Endpoint: u.ep.text, Proto: u.ep.proto, Address: u.ep.addr.String(), Port: u.ep.port,
				Local: onHost(u.ep, n.local)}
			ext[u.ep.text] = e
		}
		e.APs = append(e.APs, rootOf(u.proc))
	}
	for _, e := range ext {
		e.APs = sortedUnique(e.APs)
		if e.Local {
			e.Reason = "on this host, served by no traced process (a host daemon): the target host must provide it; it ties nobody"
		} else {
			e.Reason = fmt.Sprintf("reached by %s: the target must reach it too (same address, or a rewired one)", apList(e.APs))
		}
		pl.ExternalEndpoints = append(pl.ExternalEndpoints, *e)
	}
	sort.Slice(pl.ExternalEndpoints, func(i, j int) bool { return pl.ExternalEndpoints[i].Endpoint < pl.ExternalEndpoints[j].Endpoint })
}

func sortedUnique(xs []int32) []int32 {
	out := slices.Clone(xs)
	if out == nil {
		return []int32{}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// servedAs names how a server process serves an endpoint, for sentences.
func (n *netGraph) servedAs(srv int32) string {
	ep := n.servers[srv].ep
	if ep.proto == "udp" {
		return "receives on " + ep.text
	}
	return "listens on " + ep.text
}

// pullPorts pulls the server AP of every endpoint process p (of moving
// unit u) connected to.
func (pl *Plan) pullPorts(u, p int32) {
	g, n := pl.g, pl.net
	for _, t := range n.ties[p] {
		su := pl.unit[t.server]
		if pl.units[su].moving {
			continue
		}
		pl.units[su].moving = true
		pl.units[su].cause = &Cause{
			Path: n.servers[t.srv].ep.text, Proc: g.procs[t.server].key,
			ByAP: g.procs[pl.units[u].root].key.PID, ByProc: g.procs[p].key, byUnit: u,
			Via: "port", Served: n.servedAs(t.srv), Connected: t.connected,
		}
		pl.order = append(pl.order, su)
	}
}

// portReason is apReason for an AP pulled in through a port: "AP 200
// moves because it listens on tcp://0.0.0.0:5432, which AP 300 (moving)
// connects to as tcp://127.0.0.1:5432".
func (pl *Plan) portReason(root ProcKey, c *Cause) string {
	g := pl.g
	subject := "it"
	if c.Proc != root {
		subject = fmt.Sprintf("its process %d (%s)", c.Proc.PID, g.name(g.byKey[c.Proc]))
	}
	by := fmt.Sprintf("AP %d (moving)", c.ByAP)
	if c.ByProc != g.procs[pl.units[c.byUnit].root].key {
		by = fmt.Sprintf("process %d (%s) of AP %d (moving)", c.ByProc.PID, g.name(g.byKey[c.ByProc]), c.ByAP)
	}
	verbTo := "connects to"
	if strings.HasPrefix(c.Connected, "udp://") {
		verbTo = "sends to"
	}
	if c.Connected != c.Path {
		verbTo += " as " + c.Connected
	}
	return fmt.Sprintf("AP %d moves because %s %s, which %s %s", root.PID, subject, c.Served, by, verbTo)
}

// writeEndpointTables adds the network sections to the text plan (only
// when there is something to say, so file-only plans read as before).
func (pl *Plan) writeEndpointTables(bw *errWriter, width int) {
	if len(pl.ListenEndpoints) > 0 {
		bw.printf("\n%s", wrapText(fmt.Sprintf("Ports the moving APs serve (%d): the target must serve them; staying clients must be redirected",
			len(pl.ListenEndpoints)), width, "    "))
		t := newTextTable("  ", 0, "ENDPOINT", "SERVED BY APs", "CLIENTS")
		for _, l := range pl.ListenEndpoints {
			var cl []string
			for _, c := range l.Clients {
				state := "moves"
				if !c.Moving {
					state = "STAYS"
				}
				cl = append(cl, fmt.Sprintf("%d %s (AP %d, %s)", c.PID, c.Command, c.AP, state))
			}
			for _, h := range l.RemoteClients {
				cl = append(cl, h+" (remote)")
			}
			if len(cl) == 0 {
				cl = []string{"none seen"}
			}
			t.row(l.Endpoint, joinPIDs(l.APs), strings.Join(cl, ", "))
		}
		t.write(bw, width)
	}
	if len(pl.ExternalEndpoints) > 0 {
		bw.printf("\n%s", wrapText(fmt.Sprintf("Endpoints the moving APs reach that no traced process serves (%d): the target must reach them too",
			len(pl.ExternalEndpoints)), width, "    "))
		t := newTextTable("  ", 0, "ENDPOINT", "APs", "WHERE")
		for _, e := range pl.ExternalEndpoints {
			where := "remote"
			if e.Local {
				where = "this host, untraced (a host daemon)"
			}
			t.row(e.Endpoint, joinPIDs(e.APs), where)
		}
		t.write(bw, width)
	}
}

// writeEndpointDOT draws the served ports (AP → port, "serves"; a
// client AP → port, "connects") and the external endpoints (AP → address).
func (pl *Plan) writeEndpointDOT(bw *errWriter) {
	g := pl.g
	apID := map[int32]string{}
	for _, u := range pl.order {
		apID[g.procs[pl.units[u].root].key.PID] = fmt.Sprintf("ap%d", u)
	}
	for i, l := range pl.ListenEndpoints {
		bw.printf("  ep%d [shape=ellipse, style=filled, fillcolor=\"#cde7f0\", label=%s];\n", i, dotQuote(l.Endpoint))
		for _, a := range l.APs {
			bw.printf("  %s -> ep%d [label=\"serves\", color=\"#1d6f8a\"];\n", apID[a], i)
		}
		var staying []string
		for _, c := range l.Clients {
			if id, ok := apID[c.AP]; ok && c.Moving {
				bw.printf("  %s -> ep%d [label=\"connects\", style=dashed];\n", id, i)
			} else if !c.Moving {
				staying = append(staying, fmt.Sprintf("AP %d", c.AP))
			}
		}
		if len(staying) > 0 {
			bw.printf("  ep%d_stay [shape=plaintext, fontcolor=\"#777777\", label=%s];\n  ep%d_stay -> ep%d [style=dotted];\n",
				i, dotQuote("staying clients: "+strings.Join(slices.Compact(staying), ", ")), i, i)
		}
	}
	for i, e := range pl.ExternalEndpoints {
		label := e.Endpoint + "\n(external)"
		if e.Local {
			label = e.Endpoint + "\n(host daemon)"
		}
		bw.printf("  ext%d [shape=ellipse, style=dashed, label=%s];\n", i, dotQuote(label))
		for _, a := range e.APs {
			bw.printf("  %s -> ext%d [label=\"reaches\", style=dashed];\n", apID[a], i)
		}
	}
}
