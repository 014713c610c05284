package fleet

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/restrack/restrack/trace"
)

// A fleet trace is one trace.Trace over several hosts, so that the planner
// runs unchanged: every process gets a synthetic pid unique across the
// fleet (Names maps it back to its host and pid), a local file is named
// "//HOST/PATH", and a network file "//[SOURCE]/path/inside", which is the
// same name from every host that mounts it.

// LoadOptions say what to load.
type LoadOptions struct {
	// AP is the process to plan for, "HOST:PID", "HOST:PID@START_NS" or
	// "HOST:PID@latest". Its host is loaded, then every host that shares a
	// network file with a loaded host, until none is left.
	AP string
	// Ignored, when set, is the plan's ignore rule: a path it ignores keeps
	// its bare name (it is host-provided everywhere, so no host prefix can
	// make it a dependency) and the planner's own rules see it as usual.
	Ignored func(path string) bool
}

// Loaded is a fleet trace, the hosts it read and the names for output.
type Loaded struct {
	Trace *trace.Trace
	AP    trace.ProcKey // the synthetic key of opts.AP
	Hosts []string      // hosts read, the AP's first
	Names *Names
}

type hostProc struct {
	host string
	pid  int32
	st   uint64
}

// Load reads from the fleet database what a plan for opts.AP needs: the
// AP's host and the hosts transitively sharing a network file with it,
// never the rest of the fleet. One read-only snapshot: a publisher
// committing meanwhile cannot tear it.
func Load(ctx context.Context, dsn string, opts LoadOptions) (*Loaded, error) {
	host, _, ok := strings.Cut(opts.AP, ":")
	if !ok || host == "" {
		return nil, fmt.Errorf("--ap %q: a fleet plan names its AP as HOST:PID (HOST as published with -host-id)", opts.AP)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to the fleet database %s: %w", RedactDSN(dsn), err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("read the fleet database: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if err := checkSchema(ctx, tx); err != nil {
		return nil, err
	}
	var known bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM restrack.hosts WHERE host_id = $1)", host).Scan(&known); err != nil {
		return nil, fmt.Errorf("read the fleet database: %w", err)
	}
	if !known {
		var hosts []string
		rows, _ := tx.Query(ctx, "SELECT host_id FROM restrack.hosts ORDER BY host_id LIMIT 20")
		hosts, _ = pgx.CollectRows(rows, pgx.RowTo[string])
		return nil, fmt.Errorf("no host %q published to the fleet database (hosts: %s)", host, strings.Join(hosts, ", "))
	}

	b := &builder{tr: &trace.Trace{}, ignored: opts.Ignored, names: &Names{}, procs: map[hostProc]int{},
		byHostPath: map[string]map[string]string{}}
	loaded := map[string]bool{}
	frontier := []string{host}
	var hosts []string
	for len(frontier) > 0 {
		var netSrc, netPath [][]byte
		for _, h := range frontier {
			loaded[h] = true
			hosts = append(hosts, h)
			src, p, err := b.loadHost(ctx, tx, h)
			if err != nil {
				return nil, fmt.Errorf("read host %s from the fleet database: %w", h, err)
			}
			netSrc, netPath = append(netSrc, src...), append(netPath, p...)
		}
		frontier = nil
		if len(netSrc) == 0 {
			break
		}
		// Hosts sharing a network file with those loaded: an index
		// lookup (files_net), not a scan of the fleet.
		rows, err := tx.Query(ctx, `SELECT DISTINCT host_id FROM restrack.files
			WHERE net_source IS NOT NULL AND (net_source, net_path) IN (SELECT * FROM unnest($1::bytea[], $2::bytea[]))
			AND NOT host_id = ANY($3) ORDER BY host_id`, netSrc, netPath, hosts)
		if err != nil {
			return nil, fmt.Errorf("read the fleet database: %w", err)
		}
		frontier, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("read the fleet database: %w", err)
		}
	}
	if err := b.names.pickBase(b.tr); err != nil {
		return nil, err
	}
	b.finish()
	key, err := b.names.Resolve(b.tr, opts.AP)
	if err != nil {
		return nil, err
	}
	return &Loaded{Trace: b.tr, AP: key, Hosts: hosts, Names: b.names}, nil
}

type builder struct {
	tr      *trace.Trace
	ignored func(string) bool
	names   *Names
	procs   map[hostProc]int // → index in tr.Processes (and in names.procs)
	// parents to resolve once every process has its synthetic key
	parents    []parentRef
	byHostPath map[string]map[string]string // host → path → fleet file name, for explain --file HOST:PATH
}

type parentRef struct {
	child  int
	parent hostProc
}

// proc returns the index of a process, adding it when it is new.
func (b *builder) proc(k hostProc) int {
	if i, ok := b.procs[k]; ok {
		return i
	}
	i := len(b.tr.Processes)
	b.procs[k] = i
	b.tr.Processes = append(b.tr.Processes, trace.Process{Key: trace.ProcKey{StartNs: k.st}})
	b.names.procs = append(b.names.procs, k)
	return i
}

// loadHost adds one host's processes, files and accesses, and returns the
// network files it uses.
func (b *builder) loadHost(ctx context.Context, tx pgx.Tx, h string) (netSrc, netPath [][]byte, err error) {
	var dropped int64
	if err := tx.QueryRow(ctx, "SELECT dropped_events FROM restrack.hosts WHERE host_id = $1", h).Scan(&dropped); err != nil {
		return nil, nil, err
	}
	b.tr.DroppedEvents += uint64(dropped)
	rows, err := tx.Query(ctx, `SELECT pid, start_ns, ppid, parent_start_ns, exe, argv, cwd, first_ns, last_ns, exited
		FROM restrack.processes WHERE host_id = $1 ORDER BY pid, start_ns`, h)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var pid, ppid int32
		var start, first, last int64
		var pstart *int64
		var exe, argv, cwd []byte
		var exited bool
		if err := rows.Scan(&pid, &start, &ppid, &pstart, &exe, &argv, &cwd, &first, &last, &exited); err != nil {
			rows.Close()
			return nil, nil, err
		}
		i := b.proc(hostProc{h, pid, uint64(start)})
		p := &b.tr.Processes[i]
		p.PPID, p.Exe, p.Cwd, p.FirstNs, p.LastNs, p.Exited = ppid, string(exe), string(cwd), uint64(first), uint64(last), exited
		if len(argv) > 0 {
			p.Argv = strings.Split(string(argv), "\x00")
		}
		if pstart != nil {
			b.parents = append(b.parents, parentRef{child: i, parent: hostProc{h, ppid, uint64(*pstart)}})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}

	names := map[int64]string{}
	paths := map[string]string{}
	b.byHostPath[h] = paths
	rows, err = tx.Query(ctx, "SELECT file_id, path, net_source, net_path FROM restrack.files WHERE host_id = $1", h)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var id int64
		var path, src, inner []byte
		if err := rows.Scan(&id, &path, &src, &inner); err != nil {
			rows.Close()
			return nil, nil, err
		}
		name := FileName(h, FileID{Path: string(path), Source: string(src), Inner: string(inner)})
		if b.ignored != nil && b.ignored(string(path)) {
			name = string(path)
		} else if src != nil {
			netSrc, netPath = append(netSrc, src), append(netPath, inner)
		}
		names[id] = name
		paths[string(path)] = name
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}

	rows, err = tx.Query(ctx, `SELECT pid, start_ns, file_id, op, write, count, failures, first_ns, last_ns
		FROM restrack.accesses WHERE host_id = $1`, h)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var pid int32
		var start, fid, count, failures, first, last int64
		var op string
		var write bool
		if err := rows.Scan(&pid, &start, &fid, &op, &write, &count, &failures, &first, &last); err != nil {
			return nil, nil, err
		}
		name, ok := names[fid]
		if !ok {
			// The publisher pushes a batch's files before its accesses,
			// in one transaction: an access without its file is damage.
			return nil, nil, fmt.Errorf("access of process %d names file %d, which host %s never published", pid, fid, h)
		}
		i := b.proc(hostProc{h, pid, uint64(start)})
		b.tr.Accesses = append(b.tr.Accesses, trace.Access{Proc: trace.ProcKey{StartNs: uint64(start)}, Path: name, Op: op, Write: write,
			Count: uint64(count), Failures: uint64(failures), FirstNs: uint64(first), LastNs: uint64(last), File: int32(i)})
	}
	return netSrc, netPath, rows.Err()
}

// finish gives every process its synthetic pid, now that the base is
// chosen, and links parents within each host.
func (b *builder) finish() {
	for i := range b.tr.Processes {
		b.tr.Processes[i].Key.PID = b.names.synth(i)
	}
	for _, pr := range b.parents {
		if j, ok := b.procs[pr.parent]; ok && j != pr.child {
			b.tr.Processes[pr.child].Parent = b.tr.Processes[j].Key
		}
	}
	// Access.File held the process index while loading; the planner
	// reads File as a file number, so it goes back to zero (paths).
	for i := range b.tr.Accesses {
		a := &b.tr.Accesses[i]
		a.Proc = b.tr.Processes[a.File].Key
		a.File = 0
	}
	b.names.files = b.byHostPath
}

// FileName is a file's name in a fleet plan: "//[SOURCE]/inner/path" for
// a network file, the same from every host; "//HOST/PATH" for a local one
// ("//WHERE/path", as in the network path notation). A path the shim could
// not make absolute stays relative ("HOST:path"), so the planner still
// flags it.
func FileName(host string, id FileID) string {
	switch {
	case id.Network():
		return "//[" + id.Source + "]" + id.Inner
	case strings.HasPrefix(id.Path, "/"):
		return "//" + host + id.Path
	}
	return host + ":" + id.Path
}
