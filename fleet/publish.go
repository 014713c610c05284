package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/restrack/restrack/trace"
)

// Config tunes a Publisher.
type Config struct {
	DSN      string // PostgreSQL connection string (URL or key=value)
	HostID   string // validated by HostID
	StoreDir string // where the cursor and the status file live
	// Interval between publishing passes of Run (0: DefaultInterval).
	Interval time.Duration
	// BatchRows is the number of rows per transaction (0: DefaultBatchRows).
	BatchRows int
	// Timeout bounds connecting and each transaction (0: DefaultTimeout):
	// a database that hangs is an error and a retry, not a stuck publisher.
	Timeout time.Duration
	// Mounts, when set, replaces ReadMounts (tests).
	Mounts func() (Mounts, error)
	Logf   func(format string, args ...any)
}

// Defaults of Config.
const (
	DefaultInterval  = 10 * time.Second
	DefaultBatchRows = 5000
	DefaultTimeout   = 30 * time.Second
	// StatusFile is the publisher's last state, in the store directory,
	// for restrack status.
	StatusFile = "fleet-status.json"
)

// ErrHostTaken: another store already publishes under this host id. The
// second publisher is refused, not merged: two stores with one host id
// could hold two different processes with the same (pid, start) after a
// reboot, and silently merging them would join them into one.
var ErrHostTaken = errors.New("host id taken")

// Status is what restrack status and the metrics show of publishing.
type Status struct {
	HostID        string    `json:"host_id"`
	Database      string    `json:"database"` // the DSN without its password
	Pending       int       `json:"pending_rows"`
	PublishedRows uint64    `json:"published_rows"` // rows pushed since this publisher started
	Passes        uint64    `json:"passes"`
	Errors        uint64    `json:"errors"`
	LastAttempt   time.Time `json:"last_attempt"`
	LastSuccess   time.Time `json:"last_success"`         // zero: never
	LastError     string    `json:"last_error,omitempty"` // of the last attempt; "" when it succeeded
	PendingSince  time.Time `json:"pending_since"`        // first attempt that left rows unpublished; zero when none
	Refused       bool      `json:"refused,omitempty"`    // host id owned by another store: publishing stopped
	Collisions    uint64    `json:"hash_collisions"`      // paths whose 64-bit id collided with another path of this host
	UpdatedAt     time.Time `json:"updated_at"`
}

// Lag is how long changes have waited to be published: zero when nothing
// waits.
func (s Status) Lag(now time.Time) time.Duration {
	if s.Pending == 0 || s.PendingSince.IsZero() {
		return 0
	}
	return now.Sub(s.PendingSince)
}

// Publisher pushes one host's aggregates to the fleet database. It never
// touches the ring or the store's writer: it reads a trace through the
// store's query API and keeps its own cursor.
type Publisher struct {
	cfg Config
	cur *cursor

	mu     sync.Mutex
	status Status

	afterCommit func() // tests: called after each batch's commit
}

// NewPublisher loads the cursor from the store directory.
func NewPublisher(cfg Config) (*Publisher, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = DefaultBatchRows
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Mounts == nil {
		cfg.Mounts = ReadMounts
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if _, err := HostID(cfg.HostID); err != nil {
		return nil, err
	}
	if _, err := pgx.ParseConfig(cfg.DSN); err != nil {
		return nil, fmt.Errorf("publish DSN: %w", err)
	}
	cur, err := loadCursor(cfg.StoreDir)
	if err != nil {
		return nil, err
	}
	p := &Publisher{cfg: cfg, cur: cur}
	p.status = Status{HostID: cfg.HostID, Database: RedactDSN(cfg.DSN)}
	return p, nil
}

// Status is a copy of the publisher's state.
func (p *Publisher) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// RedactDSN drops the password from a DSN, for status lines and logs.
func RedactDSN(dsn string) string {
	c, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	host := c.Host
	if strings.HasPrefix(host, "/") {
		host = "unix:" + host
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s", c.User, host, c.Port, c.Database)
}

// row is one table row ready to push, with its cursor fingerprint.
type row struct {
	key, val uint64
	kind     byte // 'f' file, 'p' process, 'a' access
	i        int  // index into the pass's slices
}

type fileRow struct {
	id   int64
	path string
	net  FileID
}

// pass is one snapshot of the local trace turned into rows.
type pass struct {
	files      []fileRow
	procs      []trace.Process
	accs       []trace.Access
	accFile    []int64
	dropped    uint64
	rows       []row // every row, in push order: files, processes, accesses
	collisions uint64
	learned    bool // network identities seen for the first time: the cursor must keep them
}

// fileID is a path's 64-bit id within its host.
func fileID(path string) int64 { return int64(newFP('F').str(path).sum()) }

func (p *Publisher) snapshot(tr *trace.Trace) *pass {
	mounts, err := p.cfg.Mounts()
	if err != nil {
		p.cfg.Logf("publish: %v", err)
	}
	ps := &pass{procs: tr.Processes, accs: tr.Accesses, dropped: tr.DroppedEvents}
	seen := map[int64]string{}
	ps.accFile = make([]int64, len(tr.Accesses))
	for i := range tr.Accesses {
		path := tr.Accesses[i].Path
		id := fileID(path)
		ps.accFile[i] = id
		if prev, ok := seen[id]; ok {
			if prev != path {
				ps.collisions++
			}
			continue
		}
		seen[id] = path
		ident, known := p.cur.idents[path]
		if !known {
			if ident = mounts.Identify(path); ident.Network() {
				p.cur.idents[path] = ident
				ps.learned = true
			}
		}
		ps.files = append(ps.files, fileRow{id: id, path: path, net: ident})
	}
	for i, f := range ps.files {
		ps.rows = append(ps.rows, row{kind: 'f', i: i, key: uint64(f.id),
			val: newFP('f').str(f.path).str(f.net.Source).str(f.net.Inner).sum()})
	}
	for i := range ps.procs {
		pr := &ps.procs[i]
		fp := newFP('p').u64(uint64(pr.PPID), uint64(pr.Parent.PID), pr.Parent.StartNs, pr.FirstNs, pr.LastNs).
			str(pr.Exe).str(pr.Cwd).u64(uint64(len(pr.Argv)))
		for _, a := range pr.Argv {
			fp = fp.str(a)
		}
		if pr.Exited {
			fp = fp.u64(1)
		}
		ps.rows = append(ps.rows, row{kind: 'p', i: i, key: newFP('P').u64(uint64(pr.Key.PID), pr.Key.StartNs).sum(), val: fp.sum()})
	}
	dup := map[uint64]bool{}
	for i := range ps.accs {
		a := &ps.accs[i]
		w := uint64(0)
		if a.Write {
			w = 1
		}
		key := newFP('A').u64(uint64(a.Proc.PID), a.Proc.StartNs, uint64(ps.accFile[i]), w).str(a.Op).sum()
		if dup[key] {
			continue // two paths with one id: the first is kept (counted in collisions)
		}
		dup[key] = true
		ps.rows = append(ps.rows, row{kind: 'a', i: i, key: key,
			val: newFP('a').u64(a.Count, a.Failures, a.FirstNs, a.LastNs).sum()})
	}
	return ps
}

// pending is what the database does not hold yet according to the cursor.
func (p *Publisher) pending(ps *pass) []row {
	var out []row
	for _, r := range ps.rows {
		if v, ok := p.cur.rows[r.key]; !ok || v != r.val {
			out = append(out, r)
		}
	}
	return out
}

// Result is what one pass did.
type Result struct {
	Pushed  int // rows upserted
	Pending int // rows still unpublished after the pass (0 on success)
}

// Publish pushes what changed in tr since the cursor, in transactions of
// BatchRows rows; the cursor follows each commit. An error leaves the
// cursor at the last commit: the next pass goes on from there, and rows
// pushed twice are upserts that change nothing.
func (p *Publisher) Publish(ctx context.Context, tr *trace.Trace) (res Result, err error) {
	ps := p.snapshot(tr)
	if ps.learned {
		// Before any network I/O: a pass that fails to connect still
		// keeps what the mount table said.
		if err := p.cur.save(p.cfg.StoreDir); err != nil {
			return res, err
		}
	}
	todo := p.pending(ps)
	res.Pending = len(todo)
	now := time.Now()
	p.mu.Lock()
	p.status.Passes++
	p.status.LastAttempt = now
	p.status.Pending = len(todo)
	p.status.Collisions = ps.collisions
	if len(todo) > 0 && p.status.PendingSince.IsZero() {
		p.status.PendingSince = now
	}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.status.Pending = res.Pending
		p.status.PublishedRows += uint64(res.Pushed)
		switch {
		case err != nil && ctx.Err() != nil:
			// Stopped (the collector is shutting down), not failed: the
			// rows simply wait for the next publisher.
		case err != nil:
			p.status.Errors++
			p.status.LastError = err.Error()
			p.status.Refused = errors.Is(err, ErrHostTaken)
		default:
			p.status.LastError = ""
			p.status.LastSuccess = time.Now()
			p.status.PendingSince = time.Time{}
		}
		p.mu.Unlock()
		if serr := p.writeStatus(); serr != nil && err == nil {
			err = serr
		}
	}()

	cctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	conn, err := pgx.Connect(cctx, p.cfg.DSN)
	cancel()
	if err != nil {
		return res, fmt.Errorf("connect to the fleet database %s: %w (the local store keeps everything; publishing resumes when it is back)", RedactDSN(p.cfg.DSN), err)
	}
	defer conn.Close(context.Background())
	cctx, cancel = context.WithTimeout(ctx, p.cfg.Timeout)
	instance, err := Migrate(cctx, conn)
	cancel()
	if err != nil {
		return res, err
	}
	if instance != p.cur.Instance || p.cfg.HostID != p.cur.HostID {
		// Another database, a recreated one, or another host id: the
		// fingerprints say nothing about what it holds.
		p.cur.Instance, p.cur.HostID = instance, p.cfg.HostID
		clear(p.cur.rows) // identities stay: they describe the host, not the database
		todo = p.pending(ps)
		res.Pending = len(todo)
	}
	// Claim the host id even with nothing to push, so a conflicting
	// publisher learns it at once.
	if len(todo) == 0 {
		err := p.inTx(ctx, conn, func(tx pgx.Tx) error { return p.claim(ctx, tx, ps.dropped) })
		return res, err
	}
	lastSave := time.Now()
	for len(todo) > 0 {
		n := min(len(todo), p.cfg.BatchRows)
		batch := todo[:n]
		if err := p.inTx(ctx, conn, func(tx pgx.Tx) error {
			if err := p.claim(ctx, tx, ps.dropped); err != nil {
				return err
			}
			return p.push(ctx, tx, ps, batch)
		}); err != nil {
			if serr := p.cur.save(p.cfg.StoreDir); serr != nil {
				p.cfg.Logf("publish: %v", serr)
			}
			return res, err
		}
		for _, r := range batch {
			p.cur.rows[r.key] = r.val
		}
		if p.afterCommit != nil {
			p.afterCommit()
		}
		todo = todo[n:]
		res.Pushed += n
		res.Pending = len(todo)
		p.mu.Lock()
		p.status.Pending = len(todo)
		p.mu.Unlock()
		// Saving rewrites the whole cursor: about once a second, not per
		// batch. A crash re-pushes at most that second's rows.
		if time.Since(lastSave) > time.Second {
			if err := p.cur.save(p.cfg.StoreDir); err != nil {
				return res, err
			}
			lastSave = time.Now()
		}
	}
	return res, p.cur.save(p.cfg.StoreDir)
}

func (p *Publisher) inTx(ctx context.Context, conn *pgx.Conn, fn func(pgx.Tx) error) error {
	tctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	tx, err := conn.Begin(tctx)
	if err != nil {
		return fmt.Errorf("publish to %s: %w", RedactDSN(p.cfg.DSN), err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if err := fn(tx); err != nil {
		if errors.Is(err, ErrHostTaken) {
			return err
		}
		return fmt.Errorf("publish to %s: %w", RedactDSN(p.cfg.DSN), err)
	}
	if err := tx.Commit(tctx); err != nil {
		return fmt.Errorf("publish to %s: commit: %w", RedactDSN(p.cfg.DSN), err)
	}
	return nil
}

// claim records this store as the host id's publisher, or refuses when
// another store holds it.
func (p *Publisher) claim(ctx context.Context, tx pgx.Tx, dropped uint64) error {
	var got string
	err := tx.QueryRow(ctx, `INSERT INTO restrack.hosts AS h (host_id, publisher, dropped_events) VALUES ($1, $2, $3)
		ON CONFLICT (host_id) DO UPDATE SET dropped_events = excluded.dropped_events, last_published = now()
		WHERE h.publisher = excluded.publisher RETURNING h.publisher`, p.cfg.HostID, p.cur.Publisher, int64(dropped)).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		var owner string
		var last time.Time
		_ = tx.QueryRow(ctx, "SELECT publisher, last_published FROM restrack.hosts WHERE host_id = $1", p.cfg.HostID).Scan(&owner, &last)
		return fmt.Errorf("%w: host id %q is already published by another store (publisher %s, last published %s); this store (publisher %s, %s) is refused, not merged: give it its own -host-id, or delete that host's rows from restrack.hosts, processes, files and accesses if the other store is gone",
			ErrHostTaken, p.cfg.HostID, owner, last.UTC().Format(time.RFC3339), p.cur.Publisher, p.cfg.StoreDir)
	}
	return err
}

// push upserts one batch: one statement per table, the rows passed as
// arrays (one round trip each, whatever the batch size).
func (p *Publisher) push(ctx context.Context, tx pgx.Tx, ps *pass, batch []row) error {
	var (
		fID                            []int64
		fPath, fSrc, fInner            [][]byte
		pPID, pPPID                    []int32
		pStart, pPStart, pFirst, pLast []int64
		pHasParent, pExited            []bool
		pExe, pArgv, pCwd              [][]byte
		aPID                           []int32
		aStart, aFile                  []int64
		aOp                            []string
		aWrite                         []bool
		aCount, aFail, aFirst, aLast   []int64
	)
	for _, r := range batch {
		switch r.kind {
		case 'f':
			f := ps.files[r.i]
			fID = append(fID, f.id)
			fPath = append(fPath, []byte(f.path))
			if f.net.Network() {
				fSrc, fInner = append(fSrc, []byte(f.net.Source)), append(fInner, []byte(f.net.Inner))
			} else {
				fSrc, fInner = append(fSrc, nil), append(fInner, nil)
			}
		case 'p':
			pr := &ps.procs[r.i]
			pPID, pStart, pPPID = append(pPID, pr.Key.PID), append(pStart, int64(pr.Key.StartNs)), append(pPPID, pr.PPID)
			pHasParent = append(pHasParent, pr.Parent != (trace.ProcKey{}))
			pPStart = append(pPStart, int64(pr.Parent.StartNs))
			pExe, pCwd = append(pExe, []byte(pr.Exe)), append(pCwd, []byte(pr.Cwd))
			pArgv = append(pArgv, []byte(strings.Join(pr.Argv, "\x00")))
			pFirst, pLast, pExited = append(pFirst, int64(pr.FirstNs)), append(pLast, int64(pr.LastNs)), append(pExited, pr.Exited)
		case 'a':
			a := &ps.accs[r.i]
			aPID, aStart, aFile = append(aPID, a.Proc.PID), append(aStart, int64(a.Proc.StartNs)), append(aFile, ps.accFile[r.i])
			aOp, aWrite = append(aOp, a.Op), append(aWrite, a.Write)
			aCount, aFail = append(aCount, int64(a.Count)), append(aFail, int64(a.Failures))
			aFirst, aLast = append(aFirst, int64(a.FirstNs)), append(aLast, int64(a.LastNs))
		}
	}
	h := p.cfg.HostID
	if len(fID) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO restrack.files (host_id, file_id, path, net_source, net_path)
			SELECT $1, * FROM unnest($2::bigint[], $3::bytea[], $4::bytea[], $5::bytea[])
			ON CONFLICT (host_id, file_id) DO UPDATE SET path = excluded.path, net_source = excluded.net_source, net_path = excluded.net_path`,
			h, fID, fPath, fSrc, fInner); err != nil {
			return fmt.Errorf("files: %w", err)
		}
	}
	if len(pPID) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO restrack.processes (host_id, pid, start_ns, ppid, parent_start_ns, exe, argv, cwd, first_ns, last_ns, exited)
			SELECT $1, pid, start_ns, ppid, CASE WHEN has_parent THEN parent_start END, exe, argv, cwd, first_ns, last_ns, exited
			FROM unnest($2::integer[], $3::bigint[], $4::integer[], $5::boolean[], $6::bigint[], $7::bytea[], $8::bytea[], $9::bytea[], $10::bigint[], $11::bigint[], $12::boolean[])
				AS u(pid, start_ns, ppid, has_parent, parent_start, exe, argv, cwd, first_ns, last_ns, exited)
			ON CONFLICT (host_id, pid, start_ns) DO UPDATE SET ppid = excluded.ppid, parent_start_ns = excluded.parent_start_ns,
				exe = excluded.exe, argv = excluded.argv, cwd = excluded.cwd, first_ns = excluded.first_ns, last_ns = excluded.last_ns, exited = excluded.exited`,
			h, pPID, pStart, pPPID, pHasParent, pPStart, pExe, pArgv, pCwd, pFirst, pLast, pExited); err != nil {
			return fmt.Errorf("processes: %w", err)
		}
	}
	if len(aPID) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO restrack.accesses (host_id, pid, start_ns, file_id, op, write, count, failures, first_ns, last_ns)
			SELECT $1, * FROM unnest($2::integer[], $3::bigint[], $4::bigint[], $5::text[], $6::boolean[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])
			ON CONFLICT (host_id, pid, start_ns, file_id, op, write) DO UPDATE SET count = excluded.count, failures = excluded.failures,
				first_ns = excluded.first_ns, last_ns = excluded.last_ns`,
			h, aPID, aStart, aFile, aOp, aWrite, aCount, aFail, aFirst, aLast); err != nil {
			return fmt.Errorf("accesses: %w", err)
		}
	}
	return nil
}

// writeStatus leaves the publisher's state in the store directory for
// restrack status, which may run while no collector does.
func (p *Publisher) writeStatus() error {
	st := p.Status()
	st.UpdatedAt = time.Now()
	b, _ := json.MarshalIndent(st, "", "  ")
	tmp := filepath.Join(p.cfg.StoreDir, StatusFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write publish status: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(p.cfg.StoreDir, StatusFile)); err != nil {
		return fmt.Errorf("write publish status: %w", err)
	}
	return nil
}

// ReadStatus reads the status a publisher left in a store directory; ok
// is false when none ever published from it.
func ReadStatus(storeDir string) (st Status, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(storeDir, StatusFile))
	if errors.Is(err, os.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return st, false, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, false, fmt.Errorf("%s: %w", filepath.Join(storeDir, StatusFile), err)
	}
	return st, true, nil
}

// Run publishes every Interval until ctx ends, loading the trace with
// load (a read of the local store). Failures are retried with a growing
// pause (1 s doubling up to Interval); the cursor keeps what was done. A
// refused host id stops publishing: retrying cannot fix it.
func (p *Publisher) Run(ctx context.Context, load func(context.Context) (*trace.Trace, error)) error {
	backoff := time.Second
	for {
		tr, err := load(ctx)
		if err == nil {
			_, err = p.Publish(ctx, tr)
		}
		wait := p.cfg.Interval
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrHostTaken):
			p.cfg.Logf("publish: %v", err)
			return err
		case err != nil:
			p.cfg.Logf("publish: %v (retrying in %v)", err, backoff)
			wait = backoff
			backoff = min(2*backoff, p.cfg.Interval)
		default:
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}
