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
