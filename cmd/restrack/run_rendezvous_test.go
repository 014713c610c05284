package main

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// restrack run hands rings out the way the host collector does, so a
// command that changes user keeps every descendant traced.
func TestRunKeepsTracingACommandThatDropsPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runuser")
	}
	if _, err := exec.LookPath("runuser"); err != nil {
		t.Skip("no runuser")
	}
	if st, err := os.Stat(mustShim(t)); err != nil || st.Mode().Perm()&0o005 != 0o005 {
		t.Skip("the shim is not readable by nobody (build it with make)")
	}
	dir := realTempDir(t)
	r := mustRun(t, dir, "run", "--", "runuser", "-u", "nobody", "--", "cat", "/etc/hostname")
	require.Equal(t, 0, r.code, r.stderr)
	want, err := os.ReadFile("/etc/hostname")
	require.NoError(t, err)
	assert.Equal(t, string(want), r.stdout, "cat ran as nobody and printed the file")
	assert.NotContains(t, r.stderr, "not traced")

	evs := mustEvents(t, dir, "restrack-data")
	var cat *eventJSON
	for i, e := range evs {
		if e.Path == "/etc/hostname" && strings.Contains(e.Op, "open") {
			cat = &evs[i]
		}
	}
	require.NotNil(t, cat, "nobody's cat is traced: %v", evs)
	assert.GreaterOrEqual(t, cat.Result, int32(0))
	var runuser bool
	for _, e := range evs {
		if e.PID == cat.PPID || e.PID == cat.PID && e.Path == "/usr/bin/cat" {
			runuser = true
		}
	}
	assert.True(t, runuser, "runuser (root) is traced too")
	_, err = os.Stat(filepath.Join(dir, "restrack-data"))
	require.NoError(t, err)

	// events --uid keeps the records of the ring the collector verified.
	nobody, err := user.Lookup("nobody")
	require.NoError(t, err)
	hasCat := func(evs []eventJSON) bool {
		for _, e := range evs {
			if e.PID == cat.PID && e.Path == "/etc/hostname" {
				return true
			}
		}
		return false
	}
	asNobody := mustEvents(t, dir, "restrack-data", "--uid", nobody.Uid)
	assert.True(t, hasCat(asNobody), "cat ran as nobody: --uid %s shows it", nobody.Uid)
	for _, e := range asNobody {
		assert.NotEqual(t, cat.PPID, e.PID, "runuser ran as root: not under --uid %s", nobody.Uid)
	}
	assert.False(t, hasCat(mustEvents(t, dir, "restrack-data", "--uid", "0")), "--uid 0 leaves nobody's cat out")
	r = mustRun(t, dir, "events", "--store", "restrack-data", "--uid", "-5")
	assert.Equal(t, 2, r.code, "a negative uid is a usage error: %s", r.stderr)
}
