// Package pgtest starts a throwaway PostgreSQL server for tests: initdb in
// a fresh directory, a server listening only on a unix socket in that
// directory (no port another test could hold), stopped and removed at the
// end. PostgreSQL refuses to run as root, so under root the server runs as
// the unprivileged user nobody.
package pgtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// RequireEnv, when set to 1 (CI sets it), turns a missing prerequisite
// into a failure instead of a skip.
const RequireEnv = "RESTRACK_REQUIRE_FLEET"

// Skip skips the test with reason, or fails it when RequireEnv is set.
func Skip(tb testing.TB, reason string) {
	tb.Helper()
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("%s (%s=1: required here; run scripts/setup-debian.sh)", reason, RequireEnv)
	}
	tb.Skipf("%s (run scripts/setup-debian.sh; %s=1 makes this a failure)", reason, RequireEnv)
}

// Server is one running PostgreSQL.
type Server struct {
	Dir  string // data directory and socket directory's parent
	Sock string // the unix socket's directory
	bin  string
	cred *syscall.Credential
	tb   testing.TB
}

// DSN connects as the superuser to the default database.
func (s *Server) DSN() string {
	return fmt.Sprintf("host=%s port=5432 user=restrack dbname=postgres sslmode=disable connect_timeout=5", s.Sock)
}

// binDir finds Debian's versioned PostgreSQL binaries.
func binDir() (string, bool) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(real), true
		}
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(m) == 0 {
		return "", false
	}
	return filepath.Dir(m[len(m)-1]), true
}

// Start initialises and starts a server; it is stopped when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, ok := binDir()
	if !ok {
		Skip(tb, "PostgreSQL is not installed (no pg_ctl)")
	}
	dir, err := os.MkdirTemp("", "restrack-pg-")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{Dir: dir, Sock: filepath.Join(dir, "sock"), bin: bin, tb: tb}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Mkdir(s.Sock, 0o755); err != nil {
		tb.Fatal(err)
	}
	if os.Geteuid() == 0 {
		const nobody = 65534
		s.cred = &syscall.Credential{Uid: nobody, Gid: nobody}
		for _, d := range []string{dir, s.Sock} {
			if err := os.Chown(d, nobody, nobody); err != nil {
				tb.Fatal(err)
			}
		}
		// The server reaches its directory through these: keep them
		// traversable (MkdirTemp made dir 0700, owned by nobody now).
		if err := os.Chmod(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	s.run("initdb", "-D", filepath.Join(dir, "data"), "-U", "restrack", "--auth=trust", "-E", "UTF8", "--no-sync")
	s.StartAgain()
	tb.Cleanup(func() { s.Stop() })
	return s
}

func (s *Server) run(name string, args ...string) {
	s.tb.Helper()
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		s.tb.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// StartAgain starts the server (again, after Stop).
func (s *Server) StartAgain() {
	s.tb.Helper()
	opts := "-c listen_addresses='' -k " + s.Sock + " -c fsync=off -c max_connections=" + strconv.Itoa(40)
	s.run("pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-l", filepath.Join(s.Dir, "log"), "-o", opts, "-w", "-t", "60", "start")
}

// Stop stops the server at once (fast shutdown: clients are cut off).
func (s *Server) Stop() {
	cmd := exec.Command(filepath.Join(s.bin, "pg_ctl"), "-D", filepath.Join(s.Dir, "data"), "-m", "fast", "-w", "-t", "60", "stop")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	_ = cmd.Run()
	time.Sleep(10 * time.Millisecond)
}
