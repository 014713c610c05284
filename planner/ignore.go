package planner

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// DefaultIgnore lists what every host provides, so a plan never asks to
// move it: the kernel's pseudo file systems (so `> /dev/null` joins nobody
// with anybody), the system library and binary directories the loader and
// the shell read, and the loader cache. A rule is a path prefix, or a glob
// over the whole path when it holds a glob metacharacter, or — without any
// slash — a glob over the last element ("*.pyc", "librestrack.so").
var DefaultIgnore = []string{
	"/proc", "/sys", "/dev",
	"/lib", "/lib32", "/lib64", "/libx32",
	"/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libx32", "/usr/libexec",
	"/bin", "/sbin", "/usr/bin", "/usr/sbin",
	"/usr/share/locale", "/usr/share/zoneinfo", "/usr/share/i18n", "/usr/share/terminfo",
	"/etc/ld.so.cache", "/etc/ld.so.preload", "/etc/localtime",
	// The host's identity, name service and trust store: the target host
	// has its own, and carrying this one over would be wrong, not merely
	// useless. (An application that ships its own keeps them: --keep.)
	"/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/hosts", "/etc/host.conf",
	"/etc/resolv.conf", "/etc/gai.conf", "/etc/services", "/etc/protocols",
	"/etc/ssl/certs", "/usr/share/ca-certificates",
	// restrack's own shim, loaded into every traced process wherever it
	// was built: it is the tracer, not the application.
	"librestrack.so",
}

// DefaultKeep re-includes paths under an ignored directory that are really
// inter-process channels: POSIX shared memory and message queues live under
// /dev, and sharing them is write-sharing (Model 2), never host furniture.
var DefaultKeep = []string{"/dev/shm", "/dev/mqueue"}

// DefaultHostSockets are the directories where host daemons (D-Bus,
// journald, the X server, nscd…) put their AF_UNIX sockets. A socket under
// one of them is the host's, even when a traced process bound it: clients
// that connect to it are tied to nobody, and the plan lists it as a socket
// the target host must provide. `--keep PATH` makes one an application's.
var DefaultHostSockets = []string{"/run", "/var/run", "/tmp/.X11-unix"}

// Rules decide which paths the planner ignores. A keep rule beats an ignore
// rule, so `--keep /usr/lib/myapp` rescues one directory from a default.
type Rules struct {
	ignore   []rule
	keep     []rule
	hostSock []rule // socket paths only: host daemons' sockets
	// NoLookups drops stat-family lookups (access "lookup") from the graph.
	// By default a lookup counts as a read: a process that checks whether
	// a lock, a pid file or a config exists depends on that answer. A plan
	// without them is smaller and may miss exactly such a dependency.
	NoLookups bool
	// Sources says where the rules came from, for the plan's header.
	Sources []string
}

type rule struct {
	pattern string
	glob    bool
	base    bool // matches the last path element
}

func newRule(p string) (rule, error) {
	p = strings.TrimSpace(p)
	if p == "" {
		return rule{}, fmt.Errorf("empty ignore rule")
	}
	if !strings.Contains(p, "/") {
		if _, err := path.Match(p, ""); err != nil {
			return rule{}, fmt.Errorf("ignore rule %q: %w", p, err)
		}
		return rule{pattern: p, base: true}, nil
	}
	if !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "*") {
		return rule{}, fmt.Errorf("ignore rule %q: a rule is an absolute path, a glob, or a file name without a slash", p)
	}
	if strings.ContainsAny(p, "*?[") {
		if _, err := path.Match(p, ""); err != nil {
			return rule{}, fmt.Errorf("ignore rule %q: %w", p, err)
		}
		return rule{pattern: p, glob: true}, nil
	}
	if len(p) > 1 {
		p = strings.TrimRight(p, "/")
	}
	return rule{pattern: p}, nil
}

// match: a prefix rule matches the path itself and everything under it
// (never a sibling that merely shares the prefix: /devices is not /dev).
func (r rule) match(p string) bool {
	if r.base {
		ok, _ := path.Match(r.pattern, p[strings.LastIndexByte(p, '/')+1:])
		return ok
	}
	if r.glob {
		ok, _ := path.Match(r.pattern, p)
		return ok
	}
	if r.pattern == "/" {
		return true
	}
	return p == r.pattern || (strings.HasPrefix(p, r.pattern) && p[len(r.pattern)] == '/')
}

// NewRules returns the default rules, or no rules at all when defaults is false.
func NewRules(defaults bool) *Rules {
	r := &Rules{}
	if defaults {
		for _, p := range DefaultIgnore {
			r.ignore = append(r.ignore, mustRule(p))
		}
		for _, p := range DefaultKeep {
			r.keep = append(r.keep, mustRule(p))
		}
		for _, p := range DefaultHostSockets {
			r.hostSock = append(r.hostSock, mustRule(p))
		}
		r.Sources = append(r.Sources, "defaults")
	}
	return r
}

func mustRule(p string) rule {
	r, err := newRule(p)
	if err != nil {
		panic(err)
	}
	return r
}

// Ignore adds an ignore rule.
func (r *Rules) Ignore(p string) error {
	x, err := newRule(p)
	if err != nil {
		return err
	}
	r.ignore = append(r.ignore, x)
	return nil
}

// Keep adds a keep rule, which overrides every ignore rule.
func (r *Rules) Keep(p string) error {
	x, err := newRule(p)
	if err != nil {
		return err
	}
	r.keep = append(r.keep, x)
	return nil
}

// Load reads a rules file: one rule a line, `!` before a path keeps it,
// `#` starts a comment. name is only used in errors.
func (r *Rules) Load(rd io.Reader, name string) error {
	sc := bufio.NewScanner(rd)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var err error
		if rest, ok := strings.CutPrefix(line, "!"); ok {
			err = r.Keep(rest)
		} else {
			err = r.Ignore(line)
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", name, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	r.Sources = append(r.Sources, name)
	return nil
}

// LoadFile is Load on a file.
func (r *Rules) LoadFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("ignore rules: %w", err)
	}
	defer f.Close()
	return r.Load(f, name)
}

// Ignored reports whether the planner leaves p out of the dependency graph.
func (r *Rules) Ignored(p string) bool {
	if r == nil {
		return false
	}
	hit := false
	for _, x := range r.ignore {
		if x.match(p) {
			hit = true
			break
		}
	}
	if !hit {
		return false
	}
	for _, x := range r.keep {
		if x.match(p) {
			return false
		}
	}
	return true
}

// HostSocket reports whether the AF_UNIX socket at p belongs to the host (a
// daemon's socket under /run…) rather than to an application.
func (r *Rules) HostSocket(p string) bool {
	if r == nil || !matchAny(r.hostSock, p) {
		return false
	}
	return !matchAny(r.keep, p)
}

func matchAny(rules []rule, p string) bool {
	for _, x := range rules {
		if x.match(p) {
			return true
		}
	}
	return false
}
