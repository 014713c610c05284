package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPackAndUnpackCommands drives the two commands as a user would, on a
// real trace: the archive, its summary, the conflict exit status.
func TestPackAndUnpackCommands(t *testing.T) {
	dir := realTempDir(t)
	script := "echo $$ > pid; mkdir -p srv; echo 'port=1' > srv/app.conf; cat srv/app.conf > srv/copy.txt"
	r := mustRun(t, dir, "run", "--store", "s", "--", "sh", "-c", script)
	require.Equal(t, 0, r.code, r.stderr)
	pidb, err := os.ReadFile(filepath.Join(dir, "pid"))
	require.NoError(t, err)
	pid := strings.TrimSpace(string(pidb))

	r = mustRun(t, dir, "pack", "--store", "s", "--ap", pid, "-o", "app.tar.zst", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var sum struct {
		Regular       int   `json:"regular"`
		EstimateBytes int64 `json:"estimate_bytes"`
		ArchiveBytes  int64 `json:"archive_bytes"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &sum), r.stdout)
	assert.Equal(t, 3, sum.Regular, "pid, app.conf and copy.txt")
	assert.Positive(t, sum.ArchiveBytes)
	assert.Contains(t, r.stderr, "to read", "a size estimate comes first")

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"pack without -o is a usage error", []string{"pack", "--store", "s", "--ap", pid}, 2, "", "-o FILE is required"},
		{"pack of an unknown pid fails clearly", []string{"pack", "--store", "s", "--ap", "999999", "-o", "x.tar.zst"}, 1, "", "no process with pid 999999"},
		{"unpack without --root is a usage error", []string{"unpack", "app.tar.zst"}, 2, "", "--root DIR are required"},
		{"unpack restores every file", []string{"unpack", "app.tar.zst", "--root", "target"}, 0, "created", ""},
		{"unpack again finds them in place", []string{"unpack", "--root", "target", "app.tar.zst"}, 0, "0 created", ""},
		{"unpack of something that is not an archive fails clearly", []string{"unpack", "pid", "--root", "t2"}, 1, "", "corrupted archive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRun(t, dir, tt.args...)
			assert.Equal(t, tt.code, r.code, r.stderr)
			assert.Contains(t, r.stdout, tt.stdout)
			assert.Contains(t, r.stderr, tt.stderr)
		})
	}
	t.Run("a changed file at the target is a conflict: exit 1, listed, left alone; --force replaces it", func(t *testing.T) {
		conf := filepath.Join(dir, "target", dir, "srv", "app.conf")
		require.NoError(t, os.WriteFile(conf, []byte("port=2\n"), 0o644))
		r := mustRun(t, dir, "unpack", "app.tar.zst", "--root", "target")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stdout, "conflict")
		assert.Contains(t, r.stderr, "--force replaces them")
		b, _ := os.ReadFile(conf)
		assert.Equal(t, "port=2\n", string(b))
		r = mustRun(t, dir, "unpack", "app.tar.zst", "--root", "target", "--dry-run")
		assert.Equal(t, 1, r.code, "a dry run that would stop on conflicts says so by its status")
		r = mustRun(t, dir, "unpack", "app.tar.zst", "--root", "target", "--force")
		assert.Equal(t, 0, r.code, r.stderr)
		b, _ = os.ReadFile(conf)
		assert.Equal(t, "port=1\n", string(b))
	})
}
