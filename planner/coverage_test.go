package planner

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 13: what the planner does with the shim's lookups, semaphores and
// paths it could not make absolute.

func TestALookupOfAFileAnotherAPWritesPullsThatAPInUnlessLookupsAreOff(t *testing.T) {
	// 10 checks that /run/app.pid exists (stat); 20 writes it.
	tr := newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/srv/watch").proc(20, 1, "/srv/app").
		access(10, "/run/app.pid", "stat", false, 3, 0).write(20, "/run/app.pid").trace()
	for _, tc := range []struct {
		name      string
		noLookups bool
		aps       []int32
	}{
		{"a lookup is a read: existence is shared state", false, []int32{10, 20}},
		{"--no-lookups leaves the lookup out of the graph", true, []int32{10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules := NewRules(true)
			rules.NoLookups = tc.noLookups
			pl := mustPlan(t, tr, "10", Options{Rules: rules})
			assert.Equal(t, tc.aps, apRoots(pl))
		})
	}
}

func TestEveryStatFamilyOpIsALookup(t *testing.T) {
	for _, op := range []string{"stat", "lstat", "fstatat", "stat64", "lstat64", "fstatat64", "__xstat", "__lxstat",
		"__fxstatat", "__xstat64", "__lxstat64", "__fxstatat64", "access", "faccessat", "statx", "readlink", "readlinkat"} {
		assert.True(t, isLookup(op), op)
	}
	for _, op := range []string{"open", "openat", "opendir", "execve", "sem_open"} {
		assert.False(t, isLookup(op), op)
	}
}

func TestANamedSemaphoreIsAnIPCTieEvenWhenOnlyOpened(t *testing.T) {
	// Both open the semaphore without writing anything: sem_open is a
	// channel, so sharing it is write-sharing.
	tr := newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/usr/bin/python3").proc(20, 1, "/usr/bin/python3").
		access(10, "/dev/shm/sem.mp-1", "sem_open", false, 1, 0).
		access(20, "/dev/shm/sem.mp-1", "sem_open", false, 1, 0).trace()
	rules := NewRules(false)
	pl := mustPlan(t, tr, "10", Options{Rules: rules})
	assert.Equal(t, []int32{10, 20}, apRoots(pl))
}

func TestAPathTheShimCouldNotMakeAbsoluteMakesThePlanIncompleteAndIsListed(t *testing.T) {
	tr := newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/usr/bin/tar").
		write(10, "deep_at.txt").write(10, "/srv/out.tar").
		access(10, "libdoesnotexist.so", "dlopen", false, 0, 1).trace()
	pl := mustPlan(t, tr, "10", Options{})
	assert.True(t, pl.Incomplete, "a file whose place is unknown cannot be moved")
	assert.Equal(t, []string{"deep_at.txt"}, pl.UnresolvedFiles, "a failed call moves nothing and is not listed")
	var b bytes.Buffer
	require.NoError(t, pl.WriteTable(&b))
	assert.Contains(t, b.String(), "WARNING: incomplete: 1 path could not be made absolute")
	assert.NotContains(t, b.String(), "events were lost")

	complete := mustPlan(t, newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/usr/bin/tar").write(10, "/srv/out.tar").trace(), "10", Options{})
	assert.False(t, complete.Incomplete)
	assert.Empty(t, complete.UnresolvedFiles)
}

func TestADirectoryOnlyLookedUpOnTheWayToOtherFilesIsNotAFileOfThePlan(t *testing.T) {
	// 10 (moving) and 20 both lstat every component, as sqlite and a
	// shell's cd do; 10 writes beneath /srv, 20 reads its config there.
	tr := newTrace().proc(1, 0, "/bin/sh").proc(10, 1, "/srv/app").proc(20, 1, "/srv/tool").
		access(10, "/srv", "lstat64", false, 4, 0).access(10, "/srv/data", "lstat64", false, 4, 0).
		access(20, "/srv", "stat", false, 2, 0).
		write(10, "/srv/data/db").read(20, "/srv/etc/app.conf").read(10, "/srv/etc/app.conf").
		access(10, "/srv/flag", "stat", false, 1, 0). // a file only looked up: still a read
		access(10, "/srv/conf.d", "opendir", false, 1, 0).access(10, "/srv/conf.d", "stat", false, 1, 0).
		access(10, "/srv/conf.d/a", "stat", false, 1, 0).trace()
	pl := mustPlan(t, tr, "10", Options{})
	files := map[string]bool{}
	for _, f := range pl.MoveFiles {
		files[f.Path] = true
	}
	for _, f := range pl.CopyFiles {
		files[f.Path] = true
	}
	assert.False(t, files["/srv"], "/srv is only the way to other files: %v", files)
	assert.False(t, files["/srv/data"], "nor /srv/data: %v", files)
	assert.True(t, files["/srv/data/db"], "what is beneath moves: %v", files)
	assert.True(t, files["/srv/flag"], "a lookup-only file is a read")
	assert.True(t, files["/srv/conf.d"], "a directory that was listed is a file of the plan")
	assert.True(t, files["/srv/etc/app.conf"])
	assert.Equal(t, []int32{10}, apRoots(pl), "20 shares only /srv's existence and a read: it stays")
}
