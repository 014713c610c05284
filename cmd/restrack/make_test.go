package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/internal/ctest"
)

// makeWithoutGoOnPath runs make in the repository with a PATH that holds
// no go, as on a fresh machine whose Go sits in /usr/local/go/bin.
func makeWithoutGoOnPath(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	path := "/usr/bin:/bin"
	for _, d := range filepath.SplitList(path) {
		if _, err := os.Stat(filepath.Join(d, "go")); err == nil {
			t.Skipf("%s/go exists: this machine cannot show a PATH without go", d)
		}
	}
	cmd := exec.Command("make", append([]string{"-s", "--no-print-directory", "-C", ctest.RepoRoot(t)}, args...)...)
	cmd.Env = []string{"PATH=" + path, "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestMakeFindsGoOutsidePathAtTheFallbackPlace(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "go")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\nexit 0\n"), 0o755))
	out, err := makeWithoutGoOnPath(t, "print-go", "GO_FALLBACK="+fake)
	require.NoError(t, err, out)
	assert.Contains(t, out, "GO="+fake+" ")
}

func TestMakeWithoutAnyGoSaysWhatToInstall(t *testing.T) {
	out, err := makeWithoutGoOnPath(t, "-B", "cmds", "GO_FALLBACK=/nonexistent/go", "BUILD="+t.TempDir())
	require.Error(t, err)
	assert.Contains(t, out, "Go not found: not on PATH nor at /nonexistent/go")
	assert.Contains(t, out, "make GO=/path/to/go")
}

func TestMakeInstallPutsEverythingWhereRestrackFindsIt(t *testing.T) {
	root := ctest.RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "build", "restrack")); err != nil {
		t.Skip("build/ is not built (make test builds it first)")
	}
	prefix := t.TempDir()
	out, err := exec.Command("make", "-s", "--no-print-directory", "-C", root, "install", "PREFIX="+prefix).CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, f := range []string{"bin/restrack", "bin/collector", "lib/restrack/librestrack.so", "share/man/man1/restrack.1",
		"share/man/man1/restrack-ps.1", "share/bash-completion/completions/restrack", "share/zsh/site-functions/_restrack"} {
		_, err := os.Stat(filepath.Join(prefix, f))
		assert.NoError(t, err, f)
	}
	dir := t.TempDir()
	cmd := exec.Command(filepath.Join(prefix, "bin", "restrack"), "run", "--store", "s", "--", "true")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "RESTRACK_SHIM=") // the installed binary finds its own shim
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "records stored in s, 0 lost")
}
