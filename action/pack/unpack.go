package pack

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// UnpackOptions say where to restore an archive and how.
type UnpackOptions struct {
	Archive string // the archive file: it is read twice (verify, then write)
	Root    string // every path is restored under it; created when missing
	DryRun  bool   // verify and list, write nothing
	Force   bool   // replace existing files that differ
	Log     io.Writer
}

// Action is what unpack did, or would do, with one path.
type Action struct {
	Path       string  `json:"path"`
	PathBase64 string  `json:"path_base64,omitempty"`
	Do         string  `json:"do"` // create, replace, same, conflict, skip, error
	Kind       string  `json:"kind"`
	Role       string  `json:"role"`
	ForPIDs    []int32 `json:"for_pids,omitempty"` // copies: the original stays at the source for these APs
	Detail     string  `json:"detail,omitempty"`
}

// UnpackResult lists every path and what happened to it.
type UnpackResult struct {
	Root      string    `json:"root"`
	DryRun    bool      `json:"dry_run"`
	Actions   []Action  `json:"actions"`
	Conflicts []string  `json:"conflicts"` // differing files left alone (no --force)
	Errors    []string  `json:"errors"`
	Warnings  []string  `json:"warnings"`
	Copies    int       `json:"copies"` // Model 1 files: their originals stay at the source
	Manifest  *Manifest `json:"-"`
}

// ConflictError: existing files differ from the archive's and --force was
// not given; nothing was written.
type ConflictError struct{ Paths []string }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%d existing files differ from the archive's (listed above); nothing was written: --force replaces them", len(e.Paths))
}

// entry is what the verify pass learned of one archive entry.
type entry struct {
	index int // position in the archive: the last entry of a name wins
	sha   string
	size  int64
}

// Unpack verifies the whole archive first — every entry listed in the
// manifest, every checksum right — and only then writes, so a corrupt
// archive writes nothing.
func Unpack(o UnpackOptions) (*UnpackResult, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	m, last, err := verifyArchive(o.Archive)
	if err != nil {
		return nil, err
	}
	res := &UnpackResult{Root: o.Root, DryRun: o.DryRun, Actions: []Action{}, Conflicts: []string{}, Errors: []string{}, Warnings: []string{}, Manifest: m}
	if err := os.MkdirAll(o.Root, 0o755); err != nil && !o.DryRun {
		return nil, err
	}
	var root *os.Root
	if _, err := os.Stat(o.Root); err == nil {
		if root, err = os.OpenRoot(o.Root); err != nil {
			return nil, err
		}
		defer root.Close()
	}
	byName := map[string]*File{}
	plan := make([]Action, len(m.Files))
	for i := range m.Files {
		f := &m.Files[i]
		p := manifestPath(f)
		a := Action{Path: p, PathBase64: f.PathBase64, Kind: f.Kind, Role: f.Role, ForPIDs: f.ForPIDs}
		if f.Role == RoleCopy {
			res.Copies++
		}
		switch {
		case f.Role == RoleRecreate:
			a.Do, a.Detail = "skip", "IPC object: its process makes it again"
		case f.Missing:
			a.Do, a.Detail = "skip", "was gone from the source host when packed"
		case f.Name == "":
			a.Do, a.Detail = "skip", f.Note
		default:
			byName[storedName(f)] = f
			a.Do, a.Detail = existing(root, f)
			if a.Do == "conflict" {
				res.Conflicts = append(res.Conflicts, p)
			}
		}
		plan[i] = a
	}
	res.Actions = plan
	if o.DryRun {
		return res, nil
	}
	if len(res.Conflicts) > 0 && !o.Force {
		return res, &ConflictError{Paths: res.Conflicts}
	}

	// Second pass: write. Every entry is checked again as it is written,
	// so an archive changed between the passes cannot slip through.
	fh, err := os.Open(o.Archive)
	if err != nil {
		return res, err
	}
	defer fh.Close()
	zr, err := zstd.NewReader(fh, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return res, corrupt(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	actionOf := map[string]int{}
	for i, a := range res.Actions {
		if n := storedName(&m.Files[i]); n != "" && a.Do != "skip" {
			actionOf[n] = i
		}
	}
	type dirMeta struct {
		rel string
		hdr tar.Header
	}
	var dirs []dirMeta
	for idx := 0; ; idx++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, corrupt(err)
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if name == ManifestName || last[name].index != idx {
			continue // superseded by a later read of the same file
		}
		i, ok := actionOf[name]
		if !ok {
			continue
		}
		a := &res.Actions[i]
		if a.Do == "same" || a.Do == "conflict" && !o.Force {
			continue
		}
		f := byName[name]
		rel := strings.TrimPrefix(name, RootPrefix)
		if err := restore(root, rel, hdr, tr, f, a.Do == "conflict"); err != nil {
			a.Do, a.Detail = "error", err.Error()
			res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", quote(a.Path), err))
			continue
		}
		if a.Do == "conflict" {
			a.Do = "replace"
		}
		if hdr.Typeflag == tar.TypeDir && a.Do == "create" {
			dirs = append(dirs, dirMeta{rel, *hdr})
		}
		res.Warnings = append(res.Warnings, applyMeta(root, rel, hdr, f)...)
	}
	// Directories last and deepest first: writing into one changes its mtime.
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].rel > dirs[j].rel })
	for _, d := range dirs {
		_ = root.Chtimes(d.rel, d.hdr.AccessTime, d.hdr.ModTime)
	}
	if len(res.Errors) > 0 {
		return res, fmt.Errorf("%d paths could not be restored (listed above)", len(res.Errors))
	}
	return res, nil
}

func corrupt(err error) error {
	return fmt.Errorf("corrupted archive: %w", err)
}

// storedName is a file's archive entry, "" when it was not stored. It is
// derived from the exact path, since a JSON string mangles invalid UTF-8.
func storedName(f *File) string {
	if f.Name == "" {
		return ""
	}
	return entryName(manifestPath(f))
}

// manifestPath is a file's path, exact even when it is not UTF-8.
func manifestPath(f *File) string {
	if f.PathBase64 != "" {
		if b, err := base64.StdEncoding.DecodeString(f.PathBase64); err == nil {
			return string(b)
		}
	}
	return f.Path
}

// verifyArchive reads the archive through once: names are safe, the
// manifest is there and of our format, every stored file is listed, and
// every checksum matches. It returns the manifest and, per name, its last
// entry.
func verifyArchive(file string) (*Manifest, map[string]entry, error) {
	fh, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	defer fh.Close()
	zr, err := zstd.NewReader(fh, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, nil, corrupt(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	last := map[string]entry{}
	var manifest []byte
	for idx := 0; ; idx++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, corrupt(err)
		}
		if hdr.Name == ManifestName {
			if manifest, err = io.ReadAll(io.LimitReader(tr, 1<<30)); err != nil {
				return nil, nil, corrupt(err)
			}
			continue
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if err := safeName(name); err != nil {
			return nil, nil, err
		}
		if hdr.Typeflag == tar.TypeLink {
			if err := safeName(hdr.Linkname); err != nil {
				return nil, nil, fmt.Errorf("hard link %q: %w", name, err)
			}
		}
		e := entry{index: idx, size: hdr.Size}
		if hdr.Typeflag == tar.TypeReg {
			h := sha256.New()
			n, err := io.Copy(h, tr)
			if err != nil {
				return nil, nil, corrupt(fmt.Errorf("%s: %w", name, err))
			}
			e.sha, e.size = hex.EncodeToString(h.Sum(nil)), n
		}
		last[name] = e
	}
	if manifest == nil {
		return nil, nil, fmt.Errorf("%s holds no %s: not a restrack pack archive, or cut short", file, ManifestName)
	}
	var m Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, nil, corrupt(fmt.Errorf("%s: %w", ManifestName, err))
	}
	if m.Format != Format {
		return nil, nil, fmt.Errorf("archive format %q, this restrack reads %q", m.Format, Format)
	}
	listed := map[string]bool{}
	for i := range m.Files {
		f := &m.Files[i]
		name := storedName(f)
		if name == "" {
			continue
		}
		listed[name] = true
		e, ok := last[name]
		if !ok {
			return nil, nil, corrupt(fmt.Errorf("%s is in the manifest but not in the archive", quote(manifestPath(f))))
		}
		if f.SHA256 != "" && f.HardLink == "" && (e.sha != f.SHA256 || e.size != f.Size) {
			return nil, nil, corrupt(fmt.Errorf("checksum mismatch for %s: the archive holds sha256 %s (%d bytes), the manifest says %s (%d bytes)",
				quote(manifestPath(f)), e.sha, e.size, f.SHA256, f.Size))
		}
	}
	for name := range last {
		if !listed[name] {
			return nil, nil, corrupt(fmt.Errorf("entry %q is not in the manifest", name))
		}
	}
	return &m, last, nil
}

// safeName: an entry name lies under root/ and stays there: no "..", no
// absolute path, nothing unclean.
func safeName(name string) error {
	rel, ok := strings.CutPrefix(name, RootPrefix)
	if !ok || rel == "" {
		return fmt.Errorf("archive entry %q lies outside %s: refused", name, RootPrefix)
	}
	if strings.HasPrefix(rel, "/") || path.Clean(rel) != rel || rel == ".." || strings.HasPrefix(rel, "../") || strings.Contains(rel, "/../") || strings.ContainsRune(rel, 0) {
		return fmt.Errorf("archive entry %q would escape the unpack root: refused", name)
	}
	return nil
}

// existing says what restoring f would do to what is there now.
func existing(root *os.Root, f *File) (do, detail string) {
	if root == nil {
		return "create", ""
	}
	rel := strings.TrimPrefix(storedName(f), RootPrefix)
	fi, err := root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return "create", ""
	}
	if err != nil {
		return "conflict", err.Error()
	}
	switch f.Kind {
	case "directory":
		if fi.IsDir() {
			return "same", "directory exists"
		}
	case "symlink":
		if t, err := root.Readlink(rel); err == nil && fi.Mode()&fs.ModeSymlink != 0 && t == f.Symlink {
			return "same", ""
		}
	case "fifo":
		if fi.Mode()&fs.ModeNamedPipe != 0 {
			return "same", ""
		}
	default:
		if !fi.Mode().IsRegular() {
			break
		}
		if fi.Size() == f.Size && f.SHA256 != "" {
			if sum, err := fileSHA(root, rel); err == nil && sum == f.SHA256 {
				return "same", ""
			}
		}
		if f.HardLink != "" && fi.Size() == f.Size {
			return "same", "hard link already in place"
		}
		return "conflict", fmt.Sprintf("differs: %d bytes here, %d in the archive", fi.Size(), f.Size)
	}
	return "conflict", fmt.Sprintf("a %s is there, the archive holds a %s", modeName(fi.Mode()), f.Kind)
}

func modeName(m fs.FileMode) string {
	return kindOf(m, "")
}

func fileSHA(root *os.Root, rel string) (string, error) {
	fh, err := root.Open(rel)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// restore writes one entry. Every operation goes through root, which
// refuses any path that leaves it, symlinks included (an absolute symlink
// or one climbing out is never followed).
func restore(root *os.Root, rel string, hdr *tar.Header, r io.Reader, f *File, replace bool) error {
	if dir := path.Dir(rel); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if replace && hdr.Typeflag != tar.TypeReg {
		if fi, err := root.Lstat(rel); err == nil && !fi.IsDir() {
			if err := root.Remove(rel); err != nil {
				return err
			}
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := root.Mkdir(rel, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		return nil
	case tar.TypeSymlink:
		return root.Symlink(hdr.Linkname, rel)
	case tar.TypeLink:
		return root.Link(strings.TrimPrefix(hdr.Linkname, RootPrefix), rel)
	case tar.TypeFifo:
		d, err := root.Open(path.Dir(rel))
		if err != nil {
			return err
		}
		defer d.Close()
		return mkfifoat(int(d.Fd()), path.Base(rel), uint32(hdr.Mode&0o7777))
	case tar.TypeReg:
		return writeRegular(root, rel, hdr, r, f)
	}
	return fmt.Errorf("entry type %q not supported", hdr.Typeflag)
}

// writeRegular writes into a temporary file beside the target, checks its
// checksum, and renames it over the target: a reader never sees half a
// file, and a mismatch leaves what was there.
func writeRegular(root *os.Root, rel string, hdr *tar.Header, r io.Reader, f *File) error {
	tmp := path.Join(path.Dir(rel), fmt.Sprintf(".restrack-unpack-%d-%d", os.Getpid(), time.Now().UnixNano()))
	out, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			root.Remove(tmp)
		}
	}()
	h := sha256.New()
	var n int64
	if f.Sparse {
		n, err = copySparse(out, io.TeeReader(r, h))
	} else {
		n, err = io.Copy(out, io.TeeReader(r, h))
	}
	if err != nil {
		return err
	}
	if err := out.Truncate(n); err != nil {
		return err
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != f.SHA256 {
		return fmt.Errorf("checksum mismatch while writing (the archive changed since it was verified?): %s, want %s", sum, f.SHA256)
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := root.Rename(tmp, rel); err != nil {
		return err
	}
	ok = true
	return nil
}

// copySparse leaves every all-zero block a hole, so a file that was
// sparse at the source is sparse again.
func copySparse(out *os.File, r io.Reader) (int64, error) {
	buf := make([]byte, 4096)
	var n int64
	for {
		k, err := io.ReadFull(r, buf)
		if k > 0 {
			if bytes.Count(buf[:k], []byte{0}) == k {
				if _, err := out.Seek(int64(k), io.SeekCurrent); err != nil {
					return n, err
				}
			} else if _, err := out.Write(buf[:k]); err != nil {
				return n, err
			}
			n += int64(k)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// applyMeta sets mode, owner, extended attributes and times. An owner or
// an attribute this user may not set is a warning, not a failure: the
// content is right, and the warning names what is not.
func applyMeta(root *os.Root, rel string, hdr *tar.Header, f *File) (warnings []string) {
	if hdr.Typeflag == tar.TypeLink {
		return nil
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := root.Chmod(rel, fs.FileMode(hdr.Mode&0o777)|specialBits(hdr.Mode)); err != nil {
			warnings = append(warnings, fmt.Sprintf("%s: mode: %v", rel, err))
		}
	}
	if err := root.Lchown(rel, hdr.Uid, hdr.Gid); err != nil {
		warnings = append(warnings, fmt.Sprintf("/%s: owner %d:%d not set: %v (unpack as root to keep owners)", rel, hdr.Uid, hdr.Gid, err))
	}
	if hdr.Typeflag != tar.TypeSymlink {
		var names []string
		for k := range hdr.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				names = append(names, name)
			}
		}
		if len(names) > 0 {
			fh, err := root.Open(rel)
			if err == nil {
				for _, name := range names {
					if err := unix.Fsetxattr(int(fh.Fd()), name, []byte(hdr.PAXRecords["SCHILY.xattr."+name]), 0); err != nil {
						warnings = append(warnings, fmt.Sprintf("/%s: xattr %s not set: %v", rel, name, err))
					}
				}
				fh.Close()
			}
		}
		if hdr.Typeflag != tar.TypeDir {
			if err := root.Chtimes(rel, hdr.AccessTime, hdr.ModTime); err != nil {
				warnings = append(warnings, fmt.Sprintf("/%s: times: %v", rel, err))
			}
		}
	}
	return warnings
}

func specialBits(mode int64) fs.FileMode {
	var m fs.FileMode
	if mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}
