package pack

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/restrack/restrack/action"
	"github.com/restrack/restrack/planner"
)

// Options say what to pack and where.
type Options struct {
	Plan  *planner.Plan  // computed and enriched (Plan.Enrich) on this host
	Trace *planner.Trace // the plan's trace: the processes' cwd
	Host  planner.Host   // nil: planner.LocalHost
	Out   io.Writer      // the archive
	// Log receives the size estimate and warnings; Progress, when not
	// nil (a terminal), a progress line redrawn in place.
	Log, Progress io.Writer
	// NoFreeze reads the files while live moving processes keep running;
	// changes are still detected and reported.
	NoFreeze bool
	// Rereads is how many times a file that changed while it was read is
	// read again before it is reported as changed (default 2).
	Rereads int
}

// Summary is what pack did, for the closing lines and --json.
type Summary struct {
	Files         int      `json:"files"` // entries stored, parents included
	Regular       int      `json:"regular"`
	Directories   int      `json:"directories"`
	Symlinks      int      `json:"symlinks"`
	HardLinks     int      `json:"hard_links"`
	FIFOs         int      `json:"fifos"`
	Copies        int      `json:"copies"`    // Model 1 files: the originals stay
	Recreated     int      `json:"recreated"` // IPC objects listed, not stored
	Missing       []string `json:"missing"`   // gone from the host: not stored
	Skipped       []string `json:"skipped"`   // devices and other objects a tar cannot restore
	EstimateBytes int64    `json:"estimate_bytes"`
	ReadBytes     int64    `json:"read_bytes"`
	ArchiveBytes  int64    `json:"archive_bytes"`
	Frozen        string   `json:"frozen"`
	FrozenPIDs    []int32  `json:"frozen_pids"`
	Changed       []string `json:"changed"`
	Rereads       int      `json:"rereads"`
	Warnings      []string `json:"warnings"`
	Seconds       float64  `json:"seconds"`
}

type item struct {
	path    string
	role    string
	kind    string
	forPIDs []int32
}

// Pack writes the archive. On error the archive is incomplete; frozen
// processes are thawed on every path out, Ctrl-C included.
func Pack(ctx context.Context, o Options) (*Summary, error) {
	start := time.Now()
	if o.Host == nil {
		o.Host = planner.LocalHost{}
	}
	if o.Rereads == 0 {
		o.Rereads = 2
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	pl := o.Plan
	items := collect(pl)
	sum := &Summary{Missing: []string{}, Skipped: []string{}, Changed: []string{}, Warnings: []string{}, FrozenPIDs: []int32{}}
	for _, it := range items {
		if it.role == RoleRecreate {
			sum.Recreated++
			continue
		}
		if fi, err := os.Lstat(it.path); err == nil && fi.Mode().IsRegular() {
			sum.EstimateBytes += fi.Size()
		}
	}
	fmt.Fprintf(o.Log, "restrack pack: %d paths (%d IPC objects listed, not stored), about %s to read\n",
		len(items), sum.Recreated, Human(sum.EstimateBytes))

	m := &Manifest{Format: Format, Created: time.Now().UTC().Format(time.RFC3339), Plan: pl,
		Files: []File{}, Warnings: []string{}, Consistency: Consistency{Changed: []string{}, FrozenPIDs: []int32{}}}
	m.Host, _ = os.Hostname()
	m.Processes = processes(pl, o.Trace)

	// Consistency: the files the moving APs write hold still only while
	// their live processes are stopped.
	var live []planner.ProcKey
	for _, p := range pl.MoveProcesses {
		if p.Live {
			live = append(live, planner.ProcKey{PID: p.PID, StartNs: p.StartNs})
		}
	}
	written := false
	for _, f := range pl.MoveFiles {
		written = written || f.Written
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if len(live) > 0 && written {
		if o.NoFreeze {
			m.Consistency.Unfrozen = true
			warn(sum, o.Log, fmt.Sprintf("--no-freeze: %d live moving processes keep running while their files are read; a file that changes is read again and, if it keeps changing, reported", len(live)))
		} else {
			fz, err := freeze(live, o.Host)
			if err != nil {
				return nil, fmt.Errorf("refusing to pack: the moving APs write files and %d of their processes run, so their files must be read while they are frozen, and %w", len(live), err)
			}
			defer fz.thaw()
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
			defer signal.Stop(sigs)
			done := make(chan struct{})
			defer close(done)
			go func() {
				select {
				case <-sigs:
					fz.thaw() // first, before anything else can go wrong
					cancel()
				case <-done:
				}
			}()
			m.Consistency.Frozen = fz.method
			m.Consistency.FrozenPIDs = append(m.Consistency.FrozenPIDs, fz.pids...)
			sum.Frozen, sum.FrozenPIDs = fz.method, m.Consistency.FrozenPIDs
			fmt.Fprintf(o.Log, "restrack pack: froze %d live processes (%s) while reading\n", len(fz.pids), fz.method)
		}
	}

	cw := &countWriter{w: o.Out}
	zw, err := zstd.NewWriter(cw)
	if err != nil {
		return nil, err
	}
	w := &writer{tw: tar.NewWriter(zw), o: o, sum: sum, m: m, ctx: ctx, links: map[[2]uint64]string{}}
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("interrupted: processes thawed, the archive is incomplete")
		}
		if err := w.add(it); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("interrupted: processes thawed, the archive is incomplete")
			}
			return nil, err
		}
	}
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "\r\033[K")
	}
	m.Warnings = sum.Warnings
	m.Consistency.Changed = sum.Changed
	m.Consistency.Rereads = sum.Rereads
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	js = append(js, '\n')
	if err := w.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: ManifestName, Size: int64(len(js)), Mode: 0o644,
		ModTime: time.Now(), Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if _, err := w.tw.Write(js); err != nil {
		return nil, err
	}
	if err := w.tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	sum.ArchiveBytes = cw.n
	sum.Seconds = time.Since(start).Seconds()
	return sum, nil
}

func warn(sum *Summary, log io.Writer, msg string) {
	sum.Warnings = append(sum.Warnings, msg)
	fmt.Fprintf(log, "restrack pack: warning: %s\n", msg)
}

// collect lists the plan's paths and the directories above them, sorted so
// a directory comes before what it holds.
func collect(pl *planner.Plan) []item {
	byPath := map[string]*item{}
	add := func(it item) {
		if _, ok := byPath[it.path]; !ok {
			byPath[it.path] = &it
		}
	}
	for _, f := range pl.MoveFiles {
		add(item{path: f.Path, role: RoleMove, kind: f.Kind})
	}
	for _, f := range pl.CopyFiles {
		add(item{path: f.Path, role: RoleCopy, kind: f.Kind, forPIDs: f.ForPIDs})
	}
	for _, f := range pl.RecreateFiles {
		add(item{path: f.Path, role: RoleRecreate, kind: f.Kind})
	}
	for p := range byPath {
		if byPath[p].role == RoleRecreate {
			continue
		}
		for d := filepath.Dir(p); filepath.IsAbs(p) && d != "/" && d != "." && d != ""; d = filepath.Dir(d) {
			add(item{path: d, role: RoleParent, kind: planner.KindDirectory})
		}
	}
	out := make([]item, 0, len(byPath))
	for _, it := range byPath {
		out = append(out, *it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

func processes(pl *planner.Plan, tr *planner.Trace) []Process {
	cwd := map[planner.ProcKey]string{}
	if tr != nil {
		for _, p := range tr.Processes {
			cwd[p.Key] = p.Cwd
		}
	}
	out := make([]Process, 0, len(pl.MoveProcesses))
	for _, p := range pl.MoveProcesses {
		mp := Process{PID: p.PID, StartNs: p.StartNs, PPID: p.PPID, AP: p.AP, Exe: p.Exe, Argv: p.Argv, Live: p.Live,
			Cwd: cwd[planner.ProcKey{PID: p.PID, StartNs: p.StartNs}]}
		if mp.Argv == nil {
			mp.Argv = []string{}
		}
		if p.Live {
			mp.UID, mp.GID = action.IDs(p.PID)
		}
		out = append(out, mp)
	}
	return out
}

type writer struct {
	tw       *tar.Writer
	o        Options
	sum      *Summary
	m        *Manifest
	ctx      context.Context
	links    map[[2]uint64]string // (dev, inode) of a stored regular file with several links → its path
	lastDraw time.Time
}

func (w *writer) add(it item) error {
	mf := File{Path: it.path, PathBase64: b64IfInvalid(it.path), Role: it.role, ForPIDs: it.forPIDs, Kind: it.kind}
	if it.role == RoleRecreate {
		mf.Note = "IPC object: its process makes it again at the target"
		w.m.Files = append(w.m.Files, mf)
		return nil
	}
	if !filepath.IsAbs(it.path) {
		// The shim could not make it absolute: where it is, nobody knows.
		mf.Note = "not stored: the trace has no absolute path for it"
		w.sum.Skipped = append(w.sum.Skipped, it.path)
		w.warn(fmt.Sprintf("%s: the trace has no absolute path for it, not stored", quote(it.path)))
		w.m.Files = append(w.m.Files, mf)
		return nil
	}
	fi, err := os.Lstat(it.path)
	if errors.Is(err, fs.ErrNotExist) {
		mf.Missing = true
		w.sum.Missing = append(w.sum.Missing, it.path)
		if it.role != RoleParent {
			w.warn(fmt.Sprintf("%s is gone from this host: not stored (a temporary file the AP deleted?)", quote(it.path)))
		}
		w.m.Files = append(w.m.Files, mf)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", quote(it.path), err)
	}
	// A parent directory reached through an absolute symlink is stored as
	// the directory it leads to: an absolute link would point outside the
	// unpack root, where unpack never writes.
	if it.role == RoleParent && fi.Mode()&fs.ModeSymlink != 0 {
		if target, err := os.Readlink(it.path); err == nil && filepath.IsAbs(target) {
			if st, err := os.Stat(it.path); err == nil && st.IsDir() {
				fi = st
				mf.Note = "a symlink to " + target + " here: stored as the directory it leads to"
			}
		}
	}
	var st unix.Stat_t
	statPath := unix.Lstat
	if fi.IsDir() {
		statPath = unix.Stat // the directory a parent symlink leads to, as above
	}
	if err := statPath(it.path, &st); err != nil {
		return fmt.Errorf("%s: %w", quote(it.path), err)
	}
	hdr := &tar.Header{Name: entryName(it.path), Format: tar.FormatPAX, ModTime: fi.ModTime(), Mode: int64(fi.Mode().Perm()),
		Uid: int(st.Uid), Gid: int(st.Gid), AccessTime: time.Unix(st.Atim.Unix()), ChangeTime: time.Unix(st.Ctim.Unix())}
	mf.UID, mf.GID = int(st.Uid), int(st.Gid)
	mode := fi.Mode()
	if mode&fs.ModeSetuid != 0 {
		hdr.Mode |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		hdr.Mode |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		hdr.Mode |= 0o1000
	}
	mf.Mode = fmt.Sprintf("%04o", hdr.Mode)
	mf.Mtime = fi.ModTime().UTC().Format(time.RFC3339Nano)
	mf.Kind = kindOf(mode, it.kind)
	if mode.IsRegular() || mode.IsDir() {
		if err := xattrs(it.path, hdr, &mf); err != nil {
			w.warn(fmt.Sprintf("%s: extended attributes not stored: %v", quote(it.path), err))
		}
	}
	switch {
	case mode.IsDir():
		hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
		w.sum.Directories++
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(it.path)
		if err != nil {
			return fmt.Errorf("%s: %w", quote(it.path), err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		mf.Symlink, mf.Size = target, int64(len(target))
		w.sum.Symlinks++
	case mode&fs.ModeNamedPipe != 0:
		hdr.Typeflag = tar.TypeFifo
		w.sum.FIFOs++
	case mode.IsRegular():
		if uint64(st.Nlink) > 1 {
			key := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
			if first, ok := w.links[key]; ok {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, entryName(first)
				mf.HardLink, mf.Size = first, fi.Size()
				w.sum.HardLinks++
				break
			}
			w.links[key] = it.path
		}
		mf.Name = hdr.Name
		if err := w.regular(it.path, hdr, &mf); err != nil {
			return err
		}
		w.sum.Regular++
		w.count(it)
		w.m.Files = append(w.m.Files, mf)
		return nil
	default:
		mf.Note = "not stored: a " + mf.Kind + " cannot be carried in an archive (recreate it at the target)"
		w.sum.Skipped = append(w.sum.Skipped, it.path)
		w.warn(fmt.Sprintf("%s is a %s: not stored", quote(it.path), mf.Kind))
		w.m.Files = append(w.m.Files, mf)
		return nil
	}
	mf.Name = strings.TrimSuffix(hdr.Name, "/")
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", quote(it.path), err)
	}
	w.count(it)
	w.m.Files = append(w.m.Files, mf)
	return nil
}

// warn clears the progress line first: a warning never ends up glued to
// the end of it on the terminal.
func (w *writer) warn(msg string) {
	if w.o.Progress != nil {
		fmt.Fprint(w.o.Progress, "\r\033[K")
		w.lastDraw = time.Time{}
	}
	warn(w.sum, w.o.Log, msg)
}

func (w *writer) count(it item) {
	w.sum.Files++
	if it.role == RoleCopy {
		w.sum.Copies++
	}
	w.draw(false)
}

func (w *writer) draw(force bool) {
	if w.o.Progress == nil || !force && time.Since(w.lastDraw) < 100*time.Millisecond {
		return
	}
	w.lastDraw = time.Now()
	pct := 100.0
	if w.sum.EstimateBytes > 0 {
		pct = 100 * float64(w.sum.ReadBytes) / float64(w.sum.EstimateBytes)
	}
	fmt.Fprintf(w.o.Progress, "\r\033[Kpacking: %d files, %s of about %s (%.0f%%)", w.sum.Files, Human(w.sum.ReadBytes), Human(w.sum.EstimateBytes), pct)
}

// regular stores a regular file's content, reading it again when it
// changed during the read (size, mtime or ctime moved): the later entry of
// a name wins on extraction, and the manifest has the later checksum.
func (w *writer) regular(path string, hdr *tar.Header, mf *File) error {
	for attempt := 0; ; attempt++ {
		changed, err := w.readOnce(path, hdr, mf)
		if err != nil {
			return err
		}
		if !changed {
			return nil
		}
		if attempt == w.o.Rereads {
			mf.Changed = true
			w.sum.Changed = append(w.sum.Changed, path)
			w.warn(fmt.Sprintf("%s kept changing while it was read (%d reads): its content in the archive may be torn", quote(path), attempt+1))
			return nil
		}
		w.sum.Rereads++
	}
}

func (w *writer) readOnce(path string, hdr *tar.Header, mf *File) (changed bool, err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false, fmt.Errorf("%s: %w", quote(path), err)
	}
	defer f.Close()
	var before, after unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &before); err != nil {
		return false, fmt.Errorf("%s: %w", quote(path), err)
	}
	h := *hdr
	h.Size = before.Size
	if err := w.tw.WriteHeader(&h); err != nil {
		return false, fmt.Errorf("%s: %w", quote(path), err)
	}
	sha := sha256.New()
	n, err := io.Copy(io.MultiWriter(w.tw, sha), &ctxReader{ctx: w.ctx, r: io.LimitReader(f, before.Size), w: w})
	if err != nil {
		return false, fmt.Errorf("%s: read: %w", quote(path), err)
	}
	if n < before.Size { // it shrank: pad to the size the header promised
		changed = true
		zero := make([]byte, 32<<10)
		for left := before.Size - n; left > 0; {
			k := min(left, int64(len(zero)))
			w.tw.Write(zero[:k])
			sha.Write(zero[:k])
			left -= k
		}
	}
	if err := unix.Fstat(int(f.Fd()), &after); err != nil {
		return false, fmt.Errorf("%s: %w", quote(path), err)
	}
	changed = changed || after.Size != before.Size || after.Mtim != before.Mtim || after.Ctim != before.Ctim || after.Ino != before.Ino
	mf.Size = before.Size
	mf.SHA256 = hex.EncodeToString(sha.Sum(nil))
	mf.Sparse = before.Blocks*512 < before.Size
	return changed, nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
	w   *writer
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.w.sum.ReadBytes += int64(n)
	c.w.draw(false)
	return n, err
}

// xattrs stores a file's extended attributes as PAX SCHILY.xattr records,
// which GNU tar and bsdtar read too.
func xattrs(path string, hdr *tar.Header, mf *File) error {
	sz, err := unix.Llistxattr(path, nil)
	if err != nil || sz == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return err
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(path, buf)
	if err != nil {
		return err
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		vsz, err := unix.Lgetxattr(path, name, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		val := make([]byte, vsz)
		if vsz, err = unix.Lgetxattr(path, name, val); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+name] = string(val[:vsz])
		mf.Xattrs = append(mf.Xattrs, name)
	}
	return nil
}

func kindOf(m fs.FileMode, planned string) string {
	switch {
	case m.IsRegular():
		if planner.IsRecreated(planned) {
			return planned
		}
		return planner.KindRegular
	case m.IsDir():
		return planner.KindDirectory
	case m&fs.ModeSymlink != 0:
		return planner.KindSymlink
	case m&fs.ModeNamedPipe != 0:
		return planner.KindFIFO
	case m&fs.ModeSocket != 0:
		return planner.KindSocket
	case m&fs.ModeDevice != 0:
		return planner.KindDevice
	}
	return planner.KindUnknown
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Human prints a byte count the way people read it.
func Human(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// quote prints a path as is unless it would break a line or a terminal.
func quote(p string) string {
	if strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r == 0xfffd }) || !validUTF8(p) {
		return strconv.Quote(p)
	}
	return p
}
