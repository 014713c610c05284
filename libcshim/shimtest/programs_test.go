//go:build linux

package shimtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/ring"
)

// access reports the strongest access any process recorded on path (as
// str1, or str2 of a rename/link), and the ops seen.
func accessOf(evs []event, path string) (uint8, []string) {
	var acc uint8
	var ops []string
	for _, e := range evs {
		if e.isProc() || e.Result < 0 {
			continue
		}
		if e.Path == path || (e.Path2 == path && e.Op != "symlink" && e.Op != "symlinkat") {
			if accessRank(e.Access) > accessRank(acc) {
				acc = e.Access
			}
			ops = append(ops, e.Op)
		}
	}
	return acc, ops
}

// accessRank orders the classes by strength: a lookup is weaker than a read.
func accessRank(a uint8) int {
	return map[uint8]int{N: 0, L: 1, R: 2, W: 3}[a]
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (scripts/setup-debian.sh installs it): %v", name, err)
	}
	return p
}

// TestRealProgramsShowTheirFilesWithTheRightAccess runs unmodified
// programs (Debian's, built with fortify) and checks that the files they
// read and write appear with the right class.
func TestRealProgramsShowTheirFilesWithTheRightAccess(t *testing.T) {
	type expect struct {
		path   string // relative to the work directory
		access uint8
	}
	for _, tc := range []struct {
		name  string
		setup map[string]string // files to create first
		cmd   []string
		want  []expect
	}{
		{"cp copies: reads the source, writes the copy", map[string]string{"src.txt": "data\n"},
			[]string{"cp", "src.txt", "dst.txt"}, []expect{{"src.txt", R}, {"dst.txt", W}}},
		{"mv renames: both names are written", map[string]string{"a.txt": "a\n"},
			[]string{"mv", "a.txt", "b.txt"}, []expect{{"a.txt", W}, {"b.txt", W}}},
		{"sed -i rewrites the file in place through a temporary", map[string]string{"s.txt": "hello\n"},
			[]string{"sed", "-i", "s/hello/bye/", "s.txt"}, []expect{{"s.txt", W}}},
		{"sort -o reads the input and writes the output", map[string]string{"in.txt": "b\na\n"},
			[]string{"sort", "-o", "out.txt", "in.txt"}, []expect{{"in.txt", R}, {"out.txt", W}}},
		{"tar reads the members and writes the archive", map[string]string{"d/one": "1", "d/two": "2"},
			[]string{"tar", "cf", "arch.tar", "d"}, []expect{{"d/one", R}, {"d/two", R}, {"d", R}, {"arch.tar", W}}},
		{"python3 open() for write and read", nil,
			[]string{"python3", "-c", "open('p.txt','w').write('x'); open('p.txt').read(); import os; os.rename('p.txt','q.txt')"},
			[]expect{{"p.txt", W}, {"q.txt", W}}},
		{"sqlite3 writes its database and journal", nil,
			[]string{"sqlite3", "db.sqlite", "create table t(x); insert into t values(1);"},
			[]expect{{"db.sqlite", W}, {"db.sqlite-journal", W}}},
		{"gcc reads the source through cc1 and writes the object through as", map[string]string{"x.c": "int f(void){return 1;}\n"},
			[]string{"gcc", "-c", "x.c", "-o", "x.o"}, []expect{{"x.c", R}, {"x.o", W}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			needTool(t, tc.cmd[0])
			te := newTrace(t, ring.Config{DataSize: 16 << 20})
			for name, data := range tc.setup {
				p := filepath.Join(te.dir, name)
				require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
				require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
			}
			res := te.run(tc.cmd[0], tc.cmd[1:]...)
			require.NoError(t, res.err, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
			evs := te.drain()
			require.Zero(t, te.reader.Counters().Dropped())
			for _, w := range tc.want {
				acc, ops := accessOf(evs, filepath.Join(te.dir, w.path))
				assert.Equal(t, w.access, acc, "%s: ops %v", w.path, ops)
			}
		})
	}
}

func TestGitCommitIsTraced(t *testing.T) {
	needTool(t, "git")
	te := newTrace(t, ring.Config{DataSize: 16 << 20})
	te.extra = []string{"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@e", "HOME=" + te.dir}
	require.NoError(t, os.WriteFile(filepath.Join(te.dir, "f.txt"), []byte("x\n"), 0o644))
	for _, args := range [][]string{{"init", "-q"}, {"add", "f.txt"}, {"commit", "-q", "-m", "m"}} {
		res := te.run("git", args...)
		require.NoError(t, res.err, res.stderr)
	}
	evs := te.drain()
	for _, w := range []struct {
		path   string
		access uint8
	}{{"f.txt", R}, {".git/index", W}, {".git/HEAD", W} /* git init writes it */} {
		acc, ops := accessOf(evs, filepath.Join(te.dir, w.path))
		assert.Equal(t, w.access, acc, "%s: %v", w.path, ops)
	}
	// Objects are written under .git/objects (through temporary files
	// renamed or linked into place).
	var objects int
	for _, e := range evs {
		if strings.HasPrefix(e.Path2, filepath.Join(te.dir, ".git/objects")+"/") && e.Access == W {
			objects++
		}
		if strings.HasPrefix(e.Path, filepath.Join(te.dir, ".git/objects")+"/") && e.Access == W {
			objects++
		}
	}
	assert.NotZero(t, objects)
}
