package migrate

import (
	"fmt"
	"os"
	"strings"
)

// HostDirs are what a chroot at the target borrows from the host it runs
// on, read-only: the same directories the planner's default ignore rules
// call host-provided, so the plan never carried them.
var HostDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// HostFiles are the host's own name-service and loader files, bound
// read-only one by one (binding /etc whole would hide the application's
// files under it).
var HostFiles = []string{"/etc/ld.so.cache", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/hosts",
	"/etc/resolv.conf", "/etc/localtime", "/etc/host.conf", "/etc/gai.conf"}

// ChrootPrelude is the shell text that, run as root inside a private mount
// namespace (unshare --mount --propagation private), makes a root
// directory a place a program can run: the host's system directories and
// files bound read-only, /dev bound, /proc mounted. Directories that are
// symlinks on this host (/bin → usr/bin on merged-/usr systems) become the
// same symlinks. The mounts vanish with the namespace. r is the root as a
// shell word: Quote(dir), or "$ROOT".
func ChrootPrelude(r string) string {
	var b strings.Builder
	for _, d := range HostDirs {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
			continue
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(d)
			if err != nil {
				continue
			}
			fmt.Fprintf(&b, "[ -e %s%s ] || [ -L %s%s ] || ln -s %s %s%s\n", r, Quote(d), r, Quote(d), Quote(target), r, Quote(d))
		case fi.IsDir():
			fmt.Fprintf(&b, "mkdir -p %s%s && mount --bind -o ro %s %s%s\n", r, Quote(d), Quote(d), r, Quote(d))
		}
	}
	for _, f := range HostFiles {
		if fi, err := os.Stat(f); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		fmt.Fprintf(&b, "mkdir -p %s/etc && { [ -e %s%s ] || : > %s%s; } && mount --bind -o ro %s %s%s\n", r, r, Quote(f), r, Quote(f), Quote(f), r, Quote(f))
	}
	fmt.Fprintf(&b, "mkdir -p %s/dev %s/proc %s/tmp && mount --rbind /dev %s/dev && mount -t proc proc %s/proc\n", r, r, r, r, r)
	return b.String()
}

// Quote makes s one shell word, whatever bytes it holds: single quotes
// when it is printable, else bash's $'…' with every byte escaped, so a
// newline or invalid UTF-8 in a path survives a script and its review.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	printable := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			printable = false
			break
		}
	}
	if printable {
		safe := true
		for _, c := range s {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/._-+=:,@%", c)) {
				safe = false
				break
			}
		}
		if safe {
			return s
		}
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	var b strings.Builder
	b.WriteString("$'")
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "\\x%02x", c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}
