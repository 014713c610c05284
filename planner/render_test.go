package planner

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bigTrace: an AP (2) writing n files spread over many directories under
// a deep, long root, which a partner (3) also writes and a reader (4)
// only reads, so every kind of row and node is there.
func bigTrace(n int) *Trace {
	b := newTrace().proc(1, 0, "/bin/sh").
		proc(2, 1, "/opt/a-service-with-a-long-name/bin/the-service-daemon", "the-service-daemon", "--config", "/etc/the-service/a-long-configuration-file.conf").
		proc(3, 1, "/usr/local/bin/partner").proc(4, 1, "/usr/local/bin/reader")
	root := "/srv/applications/production/the-service-with-a-long-name/var/lib/state"
	for i := range n {
		p := fmt.Sprintf("%s/shard-%03d/bucket-%02d/object-%06d.data", root, i%97, i%13, i)
		b.write(2, p)
		if i%5 == 0 {
			b.write(3, p)
		}
	}
	b.read(2, "/etc/the-service/a-long-configuration-file.conf").read(4, "/etc/the-service/a-long-configuration-file.conf")
	return b.trace()
}

func TestTheTableFitsTheWidthWithPathsElidedInTheMiddle(t *testing.T) {
	pl := mustPlan(t, bigTrace(300), "2", Options{Rules: NewRules(true)})
	for _, width := range []int{80, 100, 132} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			var b bytes.Buffer
			require.NoError(t, pl.WriteTableWidth(&b, width))
			for i, line := range strings.Split(b.String(), "\n") {
				assert.LessOrEqual(t, utf8.RuneCountInString(line), width, "line %d: %q", i+1, line)
			}
			out := b.String()
			assert.Contains(t, out, "/srv/applicatio", "an elided path keeps its start")
			assert.Contains(t, out, "object-000299.data", "… and its file name")
			assert.Contains(t, out, "(Model 2): they all move", "a reason stays whole on its line")
		})
	}
}

func TestElideMiddleAndWrapWords(t *testing.T) {
	assert.Equal(t, "/srv…d/file.txt", elideMiddle("/srv/a/b/c/d/file.txt", 15), "the end of a path (its name) gets more room")
	assert.Equal(t, "short", elideMiddle("short", 15))
	assert.Equal(t, []string{"one two", "three", "abcdefghij", "klm"}, wrapWords("one two three abcdefghijklm", 10))
	assert.Equal(t, "a long heading\n    that wraps\n", wrapText("a long heading that wraps", 15, "    "))
}

var dotFileNode = regexp.MustCompile(`(?m)^\s+f\d+ \[shape=note`)

func TestDOTGroupsFilesByDirectoryPastTheThresholdAndSaysSo(t *testing.T) {
	pl := mustPlan(t, bigTrace(20000), "2", Options{Rules: NewRules(true)})
	var b bytes.Buffer
	require.NoError(t, pl.WriteDOT(&b))
	dot := b.String()
	nodes := len(dotFileNode.FindAllString(dot, -1))
	assert.LessOrEqual(t, nodes, dotMaxFiles, "file nodes drawn")
	assert.Greater(t, nodes, 1)
	assert.Contains(t, dot, "20001 files drawn as")
	assert.Contains(t, dot, "restrack plan --json lists each file")
	assert.Contains(t, dot, `/srv/applications/production/the-service-with-a-long-name/var/lib/state/\n20000 files"`,
		"97 shard directories are too many: one level up")
	assert.Less(t, strings.Count(dot, "\n"), 400, "a picture Graphviz renders in seconds")
	if _, err := exec.LookPath("dot"); err == nil {
		// A guard against a hang, not a speed assertion.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "dot", "-Tsvg")
		cmd.Stdin = &b
		out, err := cmd.Output()
		require.NoError(t, err)
		assert.Contains(t, string(out), "<svg")
	}
}

func TestDOTDrawsCopiesInsideTheMovesClusterWithALegend(t *testing.T) {
	pl := mustPlan(t, bigTrace(3), "2", Options{Rules: NewRules(true)})
	var b bytes.Buffer
	require.NoError(t, pl.WriteDOT(&b))
	dot := b.String()
	cluster := dot[strings.Index(dot, "subgraph cluster_moving"):]
	cluster = cluster[:strings.Index(cluster, "\n  }\n")]
	assert.Contains(t, cluster, "/etc/the-service/a-long-configuration-file.conf\\n(moves, copy stays)", "a copied file moves: it is drawn in the cluster")
	assert.Contains(t, cluster, "object-000000.data")
	assert.Contains(t, dot, "subgraph cluster_legend")
	assert.Contains(t, dot, `label="AP that stays"`)
	assert.Equal(t, 4, len(dotFileNode.FindAllString(dot, -1)), "few files: one node each")
}

func TestDirPrefix(t *testing.T) {
	for _, tt := range []struct {
		path  string
		depth int
		want  string
	}{
		{"/a/b/c/f", 3, "/a/b/c"}, {"/a/b/c/f", 2, "/a/b"}, {"/a/b/c/f", 9, "/a/b/c"}, {"/a/b/c/f", 0, "/"}, {"/f", 1, "/"},
	} {
		assert.Equal(t, tt.want, dirPrefix(tt.path, tt.depth), "%s %d", tt.path, tt.depth)
	}
}

// BenchmarkWriteDOT20kFiles: a 20,000-file plan drawn grouped by directory
// (what --dot prints) beside one node per file (what it printed before);
// the lines metric is what Graphviz has to lay out.
func BenchmarkWriteDOT20kFiles(b *testing.B) {
	pl := mustPlan(b, bigTrace(20000), "2", Options{Rules: NewRules(true)})
	for _, bc := range []struct {
		name string
		max  int
	}{{"grouped", dotMaxFiles}, {"per-file", 1 << 30}} {
		b.Run(bc.name, func(b *testing.B) {
			var lines int
			for b.Loop() {
				var buf bytes.Buffer
				if err := pl.writeDOT(&buf, bc.max); err != nil {
					b.Fatal(err)
				}
				lines = strings.Count(buf.String(), "\n")
			}
			b.ReportMetric(float64(lines), "lines")
		})
	}
}
