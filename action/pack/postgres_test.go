package pack_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/action/internal/tracetest"
	"github.com/restrack/restrack/action/pack"
	"github.com/restrack/restrack/planner"
)

// TestPostgreSQLPlanIsActionable is issue 15's scenario, traced for real:
// initdb, pg_ctl start, three psql sessions. The plan for the last psql
// brings the server it talked to; the server is the one live AP, labelled
// by what it runs; the one-shot tools are history; the shared memory
// segments and the socket are recreated, never packed; pack freezes the
// running server while it reads, and the server answers afterwards.
func TestPostgreSQLPlanIsActionable(t *testing.T) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	require.NotEmpty(t, bins, "PostgreSQL is needed for this test: sudo ./scripts/setup-debian.sh installs it")
	bin := filepath.Dir(bins[len(bins)-1])
	pg, err := user.Lookup("postgres")
	require.NoError(t, err, "the postgres user comes with the postgresql package (setup-debian.sh)")
	require.Equal(t, 0, os.Geteuid(), "initdb refuses root: the test runs the workload as the postgres user, which needs root")

	// A directory the postgres user owns (t.TempDir's parents are 0700).
	dir, err := os.MkdirTemp("", "restrack-pack-pg-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	script := fmt.Sprintf(`set -e
B=%[1]s
D=%[2]s/data
$B/initdb -D $D -A trust >%[2]s/initdb.log 2>&1
$B/pg_ctl -D $D -o "-k %[2]s -c listen_addresses=''" -l %[2]s/pg.log -w start >/dev/null
for i in 1 2 3; do
	sh -c 'echo $$ > %[2]s/psql.pid; exec "$0" "$@"' $B/psql -h %[2]s -d postgres -c "select $i" >/dev/null
done
`, bin, dir)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "w.sh"), []byte(script), 0o644))
	require.NoError(t, exec.Command("chown", "-R", pg.Uid+":"+pg.Gid, dir).Run())
	t.Cleanup(func() {
		_ = exec.Command("runuser", "-u", "postgres", "--", bin+"/pg_ctl", "-D", dir+"/data", "stop", "-m", "immediate").Run()
	})

	build := tracetest.Build(t)
	storeDir := filepath.Join(dir, "store")
	out, err := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(build, "restrack"), "run", "--no-wait",
		"--shim", filepath.Join(build, "librestrack.so"), "--store", storeDir, "--", "sh", filepath.Join(dir, "w.sh")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	psql := tracetest.WaitFile(t, filepath.Join(dir, "psql.pid"))
	tr, pl := tracetest.Plan(t, storeDir, psql)

	require.Len(t, pl.LiveAPs, 1, "the server is the one thing running: %+v", pl.APs)
	var server planner.AP
	for _, a := range pl.APs {
		if a.Live {
			server = a
		}
	}
	t.Run("the live AP is labelled by the server it runs, not an early postgres -V", func(t *testing.T) {
		assert.True(t, strings.HasPrefix(server.Label, "postgres -D data"), "label %q", server.Label)
		assert.Contains(t, server.LivePIDs, server.LabelPID)
	})
	t.Run("psql and initdb are history: exited APs", func(t *testing.T) {
		assert.Contains(t, pl.ExitedAPs, int32(atoi(t, psql)))
		var initdb bool
		for _, a := range pl.APs {
			initdb = initdb || !a.Live && strings.HasPrefix(a.Label, "initdb")
		}
		assert.True(t, initdb, "initdb wrote the data directory the server reads: its AP moves, exited")
	})
	t.Run("shared memory and the socket are recreated, never moved as files", func(t *testing.T) {
		kinds := map[string]int{}
		for _, f := range pl.RecreateFiles {
			kinds[f.Kind]++
			if f.Kind == planner.KindShm {
				assert.True(t, strings.HasPrefix(f.Path, "/dev/shm/PostgreSQL."), f.Path)
			}
		}
		assert.Positive(t, kinds[planner.KindShm], "the server's /dev/shm/PostgreSQL.* segments")
		assert.Equal(t, 1, kinds[planner.KindSocket], "its unix socket")
		for _, f := range pl.MoveFiles {
			assert.False(t, strings.HasPrefix(f.Path, "/dev/shm/"), "%s is in move_files", f.Path)
		}
	})
	t.Run("pack freezes the running server, reads its files, and the server answers after", func(t *testing.T) {
		archive := filepath.Join(t.TempDir(), "pg.tar.zst")
		f, err := os.Create(archive)
		require.NoError(t, err)
		defer f.Close()
		sum, err := pack.Pack(context.Background(), pack.Options{Plan: pl, Trace: tr, Out: f})
		require.NoError(t, err)
		assert.NotEmpty(t, sum.Frozen)
		assert.Empty(t, sum.Changed)
		assert.Equal(t, len(pl.RecreateFiles), sum.Recreated)
		out, err := exec.Command("runuser", "-u", "postgres", "--", bin+"/psql", "-h", dir, "-d", "postgres", "-tAc", "select 42").CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Equal(t, "42\n", string(out))
	})
}
