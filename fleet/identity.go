package fleet

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// validHostID keeps host ids printable in "HOST:PID" and in file names
// ("HOST:/path") without quoting or ambiguity: no colon, no space, and not
// starting with '[' (which marks a network file).
var validHostID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// MachineIDFile is where HostID looks when no host id is given.
var MachineIDFile = "/etc/machine-id"

// HostID returns the host id to publish under: flagValue when set, else
// the machine id. An id that could not name a host in a plan is an error.
func HostID(flagValue string) (string, error) {
	id := flagValue
	if id == "" {
		b, err := os.ReadFile(MachineIDFile)
		if err != nil {
			return "", fmt.Errorf("no host id: %v (give one with -host-id NAME)", err)
		}
		id = strings.TrimSpace(string(b))
		if id == "" {
			return "", fmt.Errorf("no host id: %s is empty (give one with -host-id NAME)", MachineIDFile)
		}
	}
	if !validHostID.MatchString(id) {
		return "", fmt.Errorf("host id %q: want 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	return id, nil
}

// networkFS lists the filesystem types whose files other hosts can reach:
// their identity is the export, not the local path. FUSE filesystems are
// named fuse.NAME in mountinfo; only the network ones are listed.
var networkFS = map[string]bool{
	"nfs": true, "nfs4": true, "cifs": true, "smb3": true, "smbfs": true, "9p": true,
	"ceph": true, "glusterfs": true, "lustre": true, "gpfs": true, "afs": true, "ocfs2": true, "gfs2": true,
	"fuse.sshfs": true, "fuse.glusterfs": true, "fuse.ceph-fuse": true, "fuse.s3fs": true, "fuse.rclone": true,
	"fuse.gcsfuse": true, "fuse.juicefs": true, "fuse.cephfs": true,
}

// Mount is one line of /proc/self/mountinfo that matters for identity.
type Mount struct {
	Root       string // the path inside the filesystem mounted here (a bind or subdir mount is not "/")
	MountPoint string
	FSType     string
	Source     string
}

// Mounts is a mount table, most specific mount point first.
type Mounts []Mount

// ReadMounts parses /proc/self/mountinfo: the mounts as this process (the
// collector, the publisher) sees them. It is read once per publishing
// cycle, never by the shim.
func ReadMounts() (Mounts, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read the mount table: %w (network files will be treated as local)", err)
	}
	defer f.Close()
	return ParseMountInfo(f)
}

// ParseMountInfo parses the mountinfo format (proc(5)). Later lines win
// over earlier ones on the same mount point: a mount over a mount hides it.
func ParseMountInfo(r io.Reader) (Mounts, error) {
	var ms Mounts
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" && i >= 6 {
				sep = i
				break
			}
		}
		if sep < 0 || len(fields) < sep+3 {
			return nil, fmt.Errorf("mountinfo line %d: %q is not in the proc(5) format", line, sc.Text())
		}
		ms = append(ms, Mount{Root: unescapeMount(fields[3]), MountPoint: unescapeMount(fields[4]),
			FSType: fields[sep+1], Source: unescapeMount(fields[sep+2])})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	// Longest mount point first; among equal ones the later mount (the
	// visible one) first. SliceStable on the reversed list keeps that.
	for i, j := 0, len(ms)-1; i < j; i, j = i+1, j-1 {
		ms[i], ms[j] = ms[j], ms[i]
	}
	sort.SliceStable(ms, func(i, j int) bool { return len(ms[i].MountPoint) > len(ms[j].MountPoint) })
	return ms, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space…).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// FileID is the fleet-wide identity of a path one host used.
type FileID struct {
	Path   string // as the host's processes named it
	Source string // the network export ("server:/export"); "" for a local file
	Inner  string // the path inside the export, "/" first; "" for a local file
}

// Network tells whether other hosts may reach the same file.
func (f FileID) Network() bool { return f.Source != "" }

// Identify maps a path one host's processes used to its fleet identity:
// under a network mount, the mount's source and the path inside it (with
// the mount's own root: a subdirectory mount of an export is the same
// export); anywhere else the path itself, which only names a file on that
// host.
func (ms Mounts) Identify(p string) FileID {
	id := FileID{Path: p}
	for _, m := range ms {
		rel, ok := under(p, m.MountPoint)
		if !ok {
			continue
		}
		if !networkFS[m.FSType] {
			return id // the most specific mount is local
		}
		id.Source = normalizeSource(m.FSType, m.Source)
		id.Inner = path.Join("/", m.Root, rel)
		return id
	}
	return id
}

// under reports whether p is mp or below it, and the rest of p.
func under(p, mp string) (string, bool) {
	if mp == "/" {
		return p, strings.HasPrefix(p, "/")
	}
	if p == mp {
		return "/", true
	}
	if strings.HasPrefix(p, mp) && p[len(mp)] == '/' {
		return p[len(mp):], true
	}
	return "", false
}

// normalizeSource makes one export's name the same from every host: the
// login an sshfs mount used does not change the file, nor does a trailing
// slash.
func normalizeSource(fstype, src string) string {
	if fstype == "fuse.sshfs" {
		if at := strings.LastIndex(src, "@"); at >= 0 && at < strings.Index(src+":", ":") {
			src = src[at+1:]
		}
	}
	if host, dir, ok := strings.Cut(src, ":"); ok && len(dir) > 1 {
		src = host + ":" + strings.TrimRight(dir, "/")
	}
	return src
}
