// Package pgtest starts a throwaway PostgreSQL server for tests and the
// fleet benchmark: initdb in a fresh directory, a server listening only on
// a unix socket in that directory (no port another test could hold),
// stopped and removed at the end. PostgreSQL refuses to run as root, so under root the server runs as
// the unprivileged user nobody.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
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
	tb   testing.TB // nil outside tests: errors are returned
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

// ErrNoPostgres: PostgreSQL's binaries are not installed.
var ErrNoPostgres = errors.New("PostgreSQL is not installed (no pg_ctl)")

// Start initialises and starts a server; it is stopped and removed when
// the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := StartServer()
	if errors.Is(err, ErrNoPostgres) {
		Skip(tb, err.Error())
	}
	if err != nil {
		tb.Fatal(err)
	}
	s.tb = tb
	tb.Cleanup(s.Close)
	return s
}

// StartServer initialises and starts a server in a new temporary
// directory, for programs (the fleet benchmark); Close removes it.
func StartServer() (*Server, error) {
	bin, ok := binDir()
	if !ok {
		return nil, ErrNoPostgres
	}
	dir, err := os.MkdirTemp("", "restrack-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, Sock: filepath.Join(dir, "sock"), bin: bin}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := os.Mkdir(s.Sock, 0o755); err != nil {
		return fail(err)
	}
	if os.Geteuid() == 0 {
		const nobody = 65534
		s.cred = &syscall.Credential{Uid: nobody, Gid: nobody}
		for _, d := range []string{dir, s.Sock} {
			if err := os.Chown(d, nobody, nobody); err != nil {
				return fail(err)
			}
		}
		// The server reaches its directory through these: keep them
		// traversable (MkdirTemp made dir 0700, owned by nobody now).
		if err := os.Chmod(dir, 0o755); err != nil {
			return fail(err)
		}
	}
	if err := s.run("initdb", "-D", filepath.Join(dir, "data"), "-U", "restrack", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		return fail(err)
	}
	if err := s.start(); err != nil {
		return fail(err)
	}
	return s, nil
}

func (s *Server) run(name string, args ...string) error {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %v: %v\n%s", name, args, err, out)
	}
	return nil
}

func (s *Server) start() error {
	opts := "-c listen_addresses='' -k " + s.Sock + " -c fsync=off -c max_connections=" + strconv.Itoa(40)
	return s.run("pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-l", filepath.Join(s.Dir, "log"), "-o", opts, "-w", "-t", "60", "start")
}

// StartAgain starts the server again after Stop (the test fails if it
// cannot).
func (s *Server) StartAgain() {
	if err := s.start(); err != nil && s.tb != nil {
		s.tb.Fatal(err)
	}
}

// Stop stops the server at once (fast shutdown: clients are cut off).
func (s *Server) Stop() {
	_ = s.run("pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-m", "fast", "-w", "-t", "60", "stop")
}

// Close stops the server and removes its directory.
func (s *Server) Close() {
	s.Stop()
	os.RemoveAll(s.Dir)
}

// QueryRow runs query on a connection of its own and scans its one row
// into dest; any error fails the test.
func QueryRow(tb testing.TB, dsn, query string, args []any, dest ...any) {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, query, args...).Scan(dest...); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
}
