// Package pack writes a migration plan's files into one archive (tar,
// compressed with zstd) with a manifest that says what each file is, and
// restores such an archive under a root directory, checking every byte.
//
// Archive layout: every file of the plan under "root/" + its absolute path
// without the leading slash, in the order parents first, then
// "manifest.json" last (it holds the checksums, known only once every file
// was read). A name may appear twice: a file that changed while it was
// read is read again and stored again, and the later entry wins, as it
// does for tar(1).
package pack

import (
	"encoding/base64"
	"strings"
	"unicode/utf8"

	"github.com/restrack/restrack/planner"
)

// Format names the archive layout; unpack refuses another.
const Format = "restrack-pack/1"

// ManifestName is the manifest's entry name; files live under RootPrefix.
const (
	ManifestName = "manifest.json"
	RootPrefix   = "root/"
)

// Manifest is manifest.json.
type Manifest struct {
	Format      string        `json:"format"`
	Created     string        `json:"created"` // RFC 3339, UTC
	Host        string        `json:"host"`
	Consistency Consistency   `json:"consistency"`
	Processes   []Process     `json:"processes"`
	Files       []File        `json:"files"`
	Warnings    []string      `json:"warnings"`
	Plan        *planner.Plan `json:"plan"`
}

// Consistency says how the files were read.
type Consistency struct {
	// Frozen: "cgroup" (cgroup v2 freezer), "sigstop", or "" when no
	// moving process was live (nothing could change the files).
	Frozen     string  `json:"frozen"`
	FrozenPIDs []int32 `json:"frozen_pids"`
	// Unfrozen: --no-freeze was given and live processes kept running.
	Unfrozen bool `json:"unfrozen"`
	// Changed lists the files that changed while being read, even after
	// re-reading: their content is whatever the last read saw.
	Changed []string `json:"changed"`
	Rereads int      `json:"rereads"`
}

// Process is one moving process, with what it takes to start it again.
type Process struct {
	PID     int32    `json:"pid"`
	StartNs uint64   `json:"start_ns"`
	PPID    int32    `json:"ppid"`
	AP      int32    `json:"ap"`
	Exe     string   `json:"exe"`
	Argv    []string `json:"argv"`
	Cwd     string   `json:"cwd"`
	Live    bool     `json:"live"`
	// UID and GID are read from /proc while the process runs; an exited
	// process's are unknown (null): the trace does not record them.
	UID *uint32 `json:"uid"`
	GID *uint32 `json:"gid"`
}

// File roles.
const (
	RoleMove     = "move"     // moves; nothing of it stays in use at the source
	RoleCopy     = "copy"     // Model 1: moves, and the original stays for the APs in ForPIDs
	RoleRecreate = "recreate" // IPC object: listed, never stored; its process makes it again
	RoleParent   = "parent"   // a directory holding a file of the plan: stored for its mode, owner and times only
)

// File is one path of the plan.
type File struct {
	Path       string   `json:"path"`
	PathBase64 string   `json:"path_base64,omitempty"` // when Path is not valid UTF-8
	Name       string   `json:"name,omitempty"`        // archive entry; empty when not stored
	Role       string   `json:"role"`
	ForPIDs    []int32  `json:"for_pids,omitempty"` // copies: the staying APs the original stays for
	Kind       string   `json:"kind"`
	Missing    bool     `json:"missing,omitempty"` // gone from the host when packed: not stored
	Size       int64    `json:"size"`
	Mode       string   `json:"mode,omitempty"` // permission and special bits, octal
	UID        int      `json:"uid"`
	GID        int      `json:"gid"`
	Mtime      string   `json:"mtime,omitempty"` // RFC 3339 with nanoseconds
	SHA256     string   `json:"sha256,omitempty"`
	Symlink    string   `json:"symlink,omitempty"`  // a symlink's target, as stored
	HardLink   string   `json:"hardlink,omitempty"` // the path of the file it is a hard link of, stored once
	Sparse     bool     `json:"sparse,omitempty"`   // had holes: unpack leaves zero blocks unwritten
	Xattrs     []string `json:"xattrs,omitempty"`   // names of the extended attributes stored
	Changed    bool     `json:"changed,omitempty"`  // still changing after the re-reads
	Note       string   `json:"note,omitempty"`
}

// entryName is a path's name in the archive.
func entryName(path string) string {
	return RootPrefix + strings.TrimLeft(path, "/")
}

func b64IfInvalid(p string) string {
	if utf8.ValidString(p) {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(p))
}

func validUTF8(s string) bool { return utf8.ValidString(s) }
