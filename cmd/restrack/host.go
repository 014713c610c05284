package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/restrack/restrack/collector"
	"github.com/restrack/restrack/internal/usock"
)

// restrack host: host-wide tracing (design §12). enable installs exactly
// what it needs — the shim in a system directory, the collector binary
// beside it, a systemd unit running the collector on the well-known
// rendezvous socket, and the shim's line in /etc/ld.so.preload — and keeps
// a manifest with a copy of every file it changed; disable puts every one
// of them back byte for byte; status says what is installed and whether
// the collector answers. Every path can be moved (flags), so that a test
// can do all of it in a private mount namespace without touching the
// machine.

func init() {
	register("host", "trace every process of every user on this host (enable|disable|status)", func(args []string) int {
		return runHost(args, os.Stdout, os.Stderr)
	})
}

type hostPaths struct {
	libDir     string // the installed shim and collector
	preload    string // /etc/ld.so.preload
	unitDir    string // systemd units
	stateDir   string // the manifest and backups
	store      string // the collector's store
	socket     string // the rendezvous socket
	ringDir    string // per-uid rings
	shimSrc    string
	collSrc    string
	systemctl  bool
	json       bool
	unitName   string
	shimTarget string
	collTarget string
	unitTarget string
}

const hostUnitName = "restrack-collector.service"

// hostManifest records what enable did, so that disable can undo exactly
// that, and nothing else.
type hostManifest struct {
	Version int         `json:"version"`
	Enabled time.Time   `json:"enabled"`
	Files   []hostEntry `json:"files"`
	Unit    string      `json:"unit"`
	Socket  string      `json:"socket"`
	Store   string      `json:"store"`
	Preload string      `json:"preload"`
	Shim    string      `json:"shim"`
}

// hostEntry is one file enable wrote: whether it existed before (and where
// its old bytes are kept), and the hash of what enable left there.
type hostEntry struct {
	Path    string      `json:"path"`
	Existed bool        `json:"existed"`
	Mode    os.FileMode `json:"mode,omitempty"`
	Backup  string      `json:"backup,omitempty"`
	Wrote   string      `json:"wrote_sha256"`
}

func runHost(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restrack host", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var p hostPaths
	fs.StringVar(&p.libDir, "lib-dir", "/usr/local/lib/restrack", "where the shim and the collector are installed")
	fs.StringVar(&p.preload, "preload-file", "/etc/ld.so.preload", "the loader's preload list the shim is added to")
	fs.StringVar(&p.unitDir, "unit-dir", "/etc/systemd/system", "where the collector's systemd unit goes")
	fs.StringVar(&p.stateDir, "state-dir", "/var/lib/restrack/host", "the manifest and the backups of every file enable changed")
	fs.StringVar(&p.store, "store", "/var/lib/restrack/store", "the host collector's store `DIR`")
	fs.StringVar(&p.socket, "socket", collector.DefaultRendezvousSocket, "the rendezvous socket (the shim's built-in default; change it only for tests)")
	fs.StringVar(&p.ringDir, "ring-dir", "/run/restrack/rings", "the per-uid rings")
	fs.StringVar(&p.shimSrc, "shim", "", "the shim to install (default: $RESTRACK_SHIM, else librestrack.so next to restrack)")
	fs.StringVar(&p.collSrc, "collector", "", "the collector binary to install (default: collector next to restrack)")
	fs.BoolVar(&p.systemctl, "systemctl", true, "run systemctl (daemon-reload, enable --now, disable --now); --systemctl=false only writes files")
	fs.BoolVar(&p.json, "json", false, "status as JSON")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: restrack host [flags] enable|disable|status\n\n"+
			"enable installs the shim in --lib-dir, a systemd unit running the collector on the\n"+
			"well-known socket, and the shim's line in /etc/ld.so.preload: from then on every new\n"+
			"process of every user is traced into --store. disable puts every file back byte for\n"+
			"byte. status says what is installed and whether the collector answers. Needs root.\n\n")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(stderr, "restrack host: say enable, disable or status\n")
		return 2
	}
	action := fs.Arg(0)
	// Flags may follow the action too.
	if code, ok := parseNoArgs(fs, fs.Args()[1:]); !ok {
		return code
	}
	p.unitName = hostUnitName
	p.shimTarget = filepath.Join(p.libDir, "librestrack.so")
	p.collTarget = filepath.Join(p.libDir, "restrack-collector")
	p.unitTarget = filepath.Join(p.unitDir, p.unitName)
	var err error
	switch action {
	case "enable":
		err = hostEnable(&p, stderr)
	case "disable":
		err = hostDisable(&p, stderr)
	case "status":
		err = hostStatus(&p, stdout)
	default:
		fmt.Fprintf(stderr, "restrack host: unknown action %q: say enable, disable or status\n", action)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "restrack host %s: %v\n", action, err)
		return errorStatus(err)
	}
	return 0
}

func (p *hostPaths) manifestPath() string { return filepath.Join(p.stateDir, "manifest.json") }

func readManifest(p *hostPaths) (*hostManifest, error) {
	b, err := os.ReadFile(p.manifestPath())
	if err != nil {
		return nil, err
	}
	var m hostManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest %s is damaged: %w", p.manifestPath(), err)
	}
	return &m, nil
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// hostUnit is the collector's systemd unit. The collector itself is not
// traced (it would ask itself for a ring): LD_PRELOAD is emptied, and the
// shim finds no collector while it starts.
func hostUnit(p *hostPaths) string {
	return fmt.Sprintf(`# Written by restrack host enable; restrack host disable removes it.
[Unit]
Description=restrack collector: traces every process of every user (restrack host)
Documentation=file://%s
After=local-fs.target

[Service]
Type=simple
Environment=LD_PRELOAD=
ExecStart=%s -rendezvous %s -ring-dir %s -store %s -socket %s
Restart=on-failure
RestartSec=2

[Install]
WantedBy=multi-user.target
`, p.manifestPath(), p.collTarget, p.socket, p.ringDir, p.store, filepath.Join(p.store, "collector.sock"))
}

// hostWriter writes files and records each in the manifest, keeping the
// old bytes first.
type hostWriter struct {
	p *hostPaths
	m *hostManifest
}

func (w *hostWriter) write(path string, data []byte, mode os.FileMode) error {
	e := hostEntry{Path: path, Wrote: sha(data)}
	if old, err := os.ReadFile(path); err == nil {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		e.Existed, e.Mode = true, fi.Mode().Perm()
		e.Backup = filepath.Join(w.p.stateDir, "backup", fmt.Sprintf("%d-%s", len(w.m.Files), filepath.Base(path)))
		if err := os.WriteFile(e.Backup, old, 0o600); err != nil {
			return fmt.Errorf("back up %s: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// Recorded before the write: a failure halfway leaves a manifest
	// disable can still follow.
	w.m.Files = append(w.m.Files, e)
	if err := w.save(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".restrack-tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil { // not the umask's
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func (w *hostWriter) save() error {
	b, err := json.MarshalIndent(w.m, "", "  ")
	if err != nil {
		return err
	}
	tmp := w.p.manifestPath() + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, w.p.manifestPath())
}

func hostEnable(p *hostPaths, stderr io.Writer) error {
	if m, err := readManifest(p); err == nil {
		return fmt.Errorf("already enabled on %s (manifest %s): run restrack host disable first", m.Enabled.Format(time.RFC3339), p.manifestPath())
	}
	shimSrc, err := findShim(p.shimSrc)
	if err != nil {
		return err
	}
	collSrc := p.collSrc
	if collSrc == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		collSrc = filepath.Join(filepath.Dir(exe), "collector")
	}
	shimBytes, err := os.ReadFile(shimSrc)
	if err != nil {
		return err
	}
	collBytes, err := os.ReadFile(collSrc)
	if err != nil {
		return fmt.Errorf("the collector binary: %w (build it with make, or pass --collector PATH)", err)
	}
	if err := os.MkdirAll(filepath.Join(p.stateDir, "backup"), 0o700); err != nil {
		return err
	}
	m := &hostManifest{Version: 1, Enabled: time.Now().UTC(), Unit: p.unitTarget, Socket: p.socket,
		Store: p.store, Preload: p.preload, Shim: p.shimTarget}
	w := &hostWriter{p: p, m: m}
	// The collector first, the preload entry last: a process started in
	// between must find the collector answering, not a socket missing.
	if err := w.write(p.shimTarget, shimBytes, 0o755); err != nil {
		return err
	}
	if err := w.write(p.collTarget, collBytes, 0o755); err != nil {
		return err
	}
	if err := w.write(p.unitTarget, []byte(hostUnit(p)), 0o644); err != nil {
		return err
	}
	if p.systemctl {
		if err := systemctl(stderr, "daemon-reload"); err != nil {
			return err
		}
		if err := systemctl(stderr, "enable", "--now", p.unitName); err != nil {
			return err
		}
		if err := waitSocket(p.socket, 10*time.Second); err != nil {
			return fmt.Errorf("the collector did not come up (%w): see journalctl -u %s; the preload entry was not added, restrack host disable undoes the rest", err, p.unitName)
		}
	}
	old, err := os.ReadFile(p.preload)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if !preloadHas(old, p.shimTarget) {
		next := append([]byte{}, old...)
		if len(next) > 0 && next[len(next)-1] != '\n' {
			next = append(next, '\n')
		}
		next = append(next, p.shimTarget+"\n"...)
		if err := w.write(p.preload, next, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "restrack host: enabled: %s is preloaded into every new process; the collector (%s) stores into %s\n",
		p.shimTarget, p.unitName, p.store)
	if !p.systemctl {
		fmt.Fprintf(stderr, "restrack host: --systemctl=false: start the collector yourself (%s)\n", p.unitTarget)
	}
	return nil
}

func preloadHas(b []byte, path string) bool {
	for _, f := range strings.Fields(string(b)) {
		if f == path {
			return true
		}
	}
	return false
}

func hostDisable(p *hostPaths, stderr io.Writer) error {
	m, err := readManifest(p)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("not enabled (no manifest at %s): nothing to undo", p.manifestPath())
	}
	if err != nil {
		return err
	}
	// The preload entry first: no new process asks the collector
	// while it goes away.
	var problems []string
	restore := func(e hostEntry) {
		cur, err := os.ReadFile(e.Path)
		switch {
		case errors.Is(err, os.ErrNotExist) && !e.Existed:
			return
		case err != nil && !errors.Is(err, os.ErrNotExist):
			problems = append(problems, fmt.Sprintf("%s: %v", e.Path, err))
			return
		case err == nil && sha(cur) != e.Wrote:
			if e.Path == m.Preload {
				// Someone edited the list since: take out our line only.
				if err := os.WriteFile(e.Path, withoutLine(cur, m.Shim), 0o644); err != nil {
					problems = append(problems, fmt.Sprintf("%s: %v", e.Path, err))
				}
				fmt.Fprintf(stderr, "restrack host: %s changed since enable: removed only the shim's line\n", e.Path)
				return
			}
			problems = append(problems, fmt.Sprintf("%s changed since enable: left as it is, restore %s by hand", e.Path, e.Backup))
			return
		}
		if !e.Existed {
			if err := os.Remove(e.Path); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", e.Path, err))
			}
			return
		}
		old, err := os.ReadFile(e.Backup)
		if err == nil {
			tmp := e.Path + ".restrack-tmp"
			if err = os.WriteFile(tmp, old, e.Mode); err == nil {
				if err = os.Chmod(tmp, e.Mode); err == nil {
					err = os.Rename(tmp, e.Path)
				}
			}
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("restore %s from %s: %v", e.Path, e.Backup, err))
		}
	}
	for i := len(m.Files) - 1; i >= 0; i-- {
		if m.Files[i].Path == m.Preload {
			restore(m.Files[i])
		}
	}
	if p.systemctl {
		if err := systemctl(stderr, "disable", "--now", filepath.Base(m.Unit)); err != nil {
			problems = append(problems, err.Error())
		}
	}
	for i := len(m.Files) - 1; i >= 0; i-- {
		if m.Files[i].Path != m.Preload {
			restore(m.Files[i])
		}
	}
	if p.systemctl {
		if err := systemctl(stderr, "daemon-reload"); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("not everything was put back (the manifest %s stays):\n  %s", p.manifestPath(), strings.Join(problems, "\n  "))
	}
	if err := os.RemoveAll(p.stateDir); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "restrack host: disabled: every file enable changed is as it was; the store %s is kept\n", m.Store)
	return nil
}

func withoutLine(b []byte, path string) []byte {
	var out [][]byte
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if strings.TrimSpace(string(l)) != path {
			out = append(out, l)
		}
	}
	return bytes.Join(out, nil)
}

// hostState is what status reports.
type hostState struct {
	Enabled  bool                 `json:"enabled"`
	Manifest string               `json:"manifest"`
	Files    []hostFileState      `json:"files,omitempty"`
	Preload  bool                 `json:"preload_entry"`
	Socket   string               `json:"socket"`
	Answers  bool                 `json:"collector_answers"`
	Error    string               `json:"collector_error,omitempty"`
	UIDs     []collector.UIDStats `json:"uids,omitempty"`
}

type hostFileState struct {
	Path      string `json:"path"`
	Present   bool   `json:"present"`
	Unchanged bool   `json:"unchanged_since_enable"`
}

func hostStatus(p *hostPaths, stdout io.Writer) error {
	st := hostState{Manifest: p.manifestPath(), Socket: p.socket}
	m, err := readManifest(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	store := p.store
	if m != nil {
		st.Enabled, st.Socket, store = true, m.Socket, m.Store
		for _, e := range m.Files {
			fs := hostFileState{Path: e.Path}
			if b, err := os.ReadFile(e.Path); err == nil {
				fs.Present, fs.Unchanged = true, sha(b) == e.Wrote
			}
			st.Files = append(st.Files, fs)
		}
		if b, err := os.ReadFile(m.Preload); err == nil {
			st.Preload = preloadHas(b, m.Shim)
		}
	}
	if c, err := net.DialTimeout("unix", st.Socket, time.Second); err == nil {
		c.Close()
		st.Answers = true
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = usock.Query(ctx, filepath.Join(store, "collector.sock"), "rendezvous", nil, &st.UIDs)
		cancel()
	} else {
		st.Error = err.Error()
	}
	if p.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	if !st.Enabled {
		fmt.Fprintf(stdout, "host tracing: not enabled (no manifest at %s)\n", st.Manifest)
	} else {
		fmt.Fprintf(stdout, "host tracing: enabled (manifest %s)\n", st.Manifest)
		for _, f := range st.Files {
			state := "present"
			switch {
			case !f.Present:
				state = "MISSING"
			case !f.Unchanged:
				state = "changed since enable"
			}
			fmt.Fprintf(stdout, "  %-50s %s\n", f.Path, state)
		}
		fmt.Fprintf(stdout, "  preload entry: %v\n", st.Preload)
	}
	if st.Answers {
		fmt.Fprintf(stdout, "collector: answers at %s\n", st.Socket)
		for _, u := range st.UIDs {
			fmt.Fprintf(stdout, "  uid %-6d %d processes registered", u.UID, u.Registered)
			if u.Untraced > 0 {
				fmt.Fprintf(stdout, ", %d NOT traced: %s", u.Untraced, u.Reason)
			}
			fmt.Fprintln(stdout)
		}
	} else {
		fmt.Fprintf(stdout, "collector: does not answer at %s (%s)\n", st.Socket, st.Error)
	}
	return nil
}

func systemctl(stderr io.Writer, args ...string) error {
	cmd := exec.Command("systemctl", args...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("systemctl %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

func waitSocket(path string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
