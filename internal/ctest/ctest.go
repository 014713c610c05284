// Package ctest compiles the C programs under libcshim/tests for Go tests,
// once per test binary, into a temporary directory.
package ctest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// RepoRoot is the repository's top directory (where go.mod is).
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("cannot locate source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	mu    sync.Mutex
	built = map[string]string{}
	dir   string
)

// Build compiles sources (paths relative to the repo root) with extra cc
// flags into one executable and returns its path. Results are cached by
// name for the life of the test binary.
func Build(tb testing.TB, name string, sources []string, flags ...string) string {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		tb.Fatalf("C compiler %q not found (install gcc): %v", cc, err)
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "restrack-ctest-")
		if err != nil {
			tb.Fatal(err)
		}
		dir = d
	}
	root := RepoRoot(tb)
	out := filepath.Join(dir, name)
	args := []string{"-std=gnu11", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-pthread", "-I", filepath.Join(root, "libcshim"), "-o", out}
	args = append(args, flags...)
	for _, s := range sources {
		args = append(args, filepath.Join(root, s))
	}
	cmd := exec.Command(cc, args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", cc, strings.Join(args, " "), err, b)
	}
	built[name] = out
	return out
}

// CopySelf copies the running test binary into dir (mode 0755), where a
// process of another uid can run it: the temporary directories of `go
// test` are private to their user. Tests use it to act as another user.
func CopySelf(tb testing.TB, dir string) string {
	tb.Helper()
	bin := filepath.Join(dir, filepath.Base(os.Args[0]))
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		tb.Fatal(err)
	}
	return bin
}
