package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// host enable/disable on a directory tree of its own (no namespace, no
// systemctl): what disable puts back, and what it leaves alone.
func hostArgs(t *testing.T, dir string, extra ...string) []string {
	return append([]string{"--systemctl=false", "--lib-dir", filepath.Join(dir, "lib"),
		"--preload-file", filepath.Join(dir, "etc", "ld.so.preload"), "--unit-dir", filepath.Join(dir, "units"),
		"--state-dir", filepath.Join(dir, "state"), "--store", filepath.Join(dir, "store"),
		"--socket", filepath.Join(dir, "rdv.sock"), "--shim", mustShim(t), "--collector", mustShim(t)}, extra...)
}

func TestHostDisablePutsBackAnExistingPreloadListByteForByte(t *testing.T) {
	dir := realTempDir(t)
	pre := filepath.Join(dir, "etc", "ld.so.preload")
	require.NoError(t, os.MkdirAll(filepath.Dir(pre), 0o755))
	orig := []byte("/usr/lib/other.so\n# a comment, no newline at the end")
	require.NoError(t, os.WriteFile(pre, orig, 0o640))

	var out, errb bytes.Buffer
	require.Equal(t, 0, runHost(append(hostArgs(t, dir), "enable"), &out, &errb), errb.String())
	b, err := os.ReadFile(pre)
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(b, orig), "the program's entries stay, ours is added")
	assert.Contains(t, string(b), filepath.Join(dir, "lib", "librestrack.so"))
	assert.FileExists(t, filepath.Join(dir, "units", hostUnitName))
	assert.Equal(t, 1, runHost(append(hostArgs(t, dir), "enable"), &out, &errb), "enabling twice is refused")

	require.Equal(t, 0, runHost(append(hostArgs(t, dir), "disable"), &out, &errb), errb.String())
	b, err = os.ReadFile(pre)
	require.NoError(t, err)
	assert.Equal(t, orig, b, "byte for byte")
	fi, err := os.Stat(pre)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm(), "and its mode")
	assert.NoFileExists(t, filepath.Join(dir, "units", hostUnitName))
	assert.NoFileExists(t, filepath.Join(dir, "lib", "librestrack.so"))
	assert.NoDirExists(t, filepath.Join(dir, "state"), "the manifest is gone once everything is back")
	assert.Equal(t, 1, runHost(append(hostArgs(t, dir), "disable"), &out, &errb), "nothing to undo is said")
}

func TestHostDisableTakesOutOnlyItsLineFromAListEditedSinceEnable(t *testing.T) {
	dir := realTempDir(t)
	pre := filepath.Join(dir, "etc", "ld.so.preload")
	var out, errb bytes.Buffer
	require.Equal(t, 0, runHost(append(hostArgs(t, dir), "enable"), &out, &errb), errb.String())
	b, err := os.ReadFile(pre)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(pre, append(b, "/usr/lib/added-later.so\n"...), 0o644))
	require.Equal(t, 0, runHost(append(hostArgs(t, dir), "disable"), &out, &errb), errb.String())
	b, err = os.ReadFile(pre)
	require.NoError(t, err)
	assert.Equal(t, "/usr/lib/added-later.so\n", string(b), "the admin's later entry is kept")
	assert.Contains(t, errb.String(), "changed since enable")
}

func TestHostStatusSaysWhatIsInstalledAndThatNoCollectorAnswers(t *testing.T) {
	dir := realTempDir(t)
	var out, errb bytes.Buffer
	require.Equal(t, 0, runHost(append(hostArgs(t, dir), "status"), &out, &errb), errb.String())
	assert.Contains(t, out.String(), "not enabled")
	assert.Contains(t, out.String(), "does not answer")
	out.Reset()
	require.Equal(t, 0, runHost(append(hostArgs(t, dir), "enable"), &out, &errb), errb.String())
	require.Equal(t, 0, runHost(append(hostArgs(t, dir), "status"), &out, &errb), errb.String())
	assert.Contains(t, out.String(), "host tracing: enabled")
	assert.Contains(t, out.String(), "preload entry: true")
	assert.Equal(t, 2, runHost(append(hostArgs(t, dir), "frobnicate"), &out, &errb))
}
