package fleet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/fleet"
	"github.com/restrack/restrack/internal/pgtest"
	"github.com/restrack/restrack/planner"
	"github.com/restrack/restrack/trace"
)

type hostTrace struct {
	host   string
	mounts fleet.Mounts
	tr     *trace.Trace
}

func proc(pid int32, argv ...string) trace.Process {
	return trace.Process{Key: trace.ProcKey{PID: pid, StartNs: 5000}, PPID: 1, Exe: "/usr/bin/" + argv[0], Argv: argv}
}

func access(pid int32, path string, write bool) trace.Access {
	return trace.Access{Proc: trace.ProcKey{PID: pid, StartNs: 5000}, Path: path, Op: "openat", Write: write, Count: 1}
}

// fourHosts: alpha's service writes a log on an sshfs export that beta's
// tail reads through another mount point; delta only reads a config on the
// same export; gamma shares nothing. alpha and beta both use a local
// /var/state, which is two files. alpha and beta's processes have the same
// pid.
func fourHosts() []hostTrace {
	export := func(mp string) fleet.Mounts {
		return fleet.Mounts{{Root: "/", MountPoint: mp, FSType: "fuse.sshfs", Source: "srv:/export"}}
	}
	return []hostTrace{
		{"alpha", export("/mnt/a"), &trace.Trace{
			Processes: []trace.Process{proc(100, "svc")},
			Accesses:  []trace.Access{access(100, "/mnt/a/shared/log", true), access(100, "/var/state", true), access(100, "/usr/lib/libc.so.6", false)}}},
		{"beta", export("/data"), &trace.Trace{
			Processes: []trace.Process{proc(100, "tail", "-F", "log")},
			Accesses: []trace.Access{access(100, "/data/shared/log", false), access(100, "/var/state", false),
				access(100, "/data/shared/cfg", false), access(100, "/usr/lib/libc.so.6", false)},
			DroppedEvents: 2}},
		{"gamma", nil, &trace.Trace{
			Processes: []trace.Process{proc(300, "cron")},
			Accesses:  []trace.Access{access(300, "/var/state", true)}}},
		{"delta", export("/srv/e"), &trace.Trace{
			Processes: []trace.Process{proc(400, "report")},
			Accesses:  []trace.Access{access(400, "/srv/e/shared/cfg", false)}}},
	}
}

func publishAll(t *testing.T, dsn string, hosts []hostTrace) {
	t.Helper()
	for _, h := range hosts {
		mounts := h.mounts
		p, err := fleet.NewPublisher(fleet.Config{DSN: dsn, HostID: h.host, StoreDir: t.TempDir(),
			Mounts: func() (fleet.Mounts, error) { return mounts, nil }})
		require.NoError(t, err)
		_, err = p.Publish(context.Background(), h.tr)
		require.NoError(t, err)
	}
}

func TestFleetPlanCrossesHostsThroughANetworkFile(t *testing.T) {
	pg := pgtest.Start(t)
	publishAll(t, pg.DSN(), fourHosts())
	rules := planner.NewRules(true)
	ld, err := fleet.Load(context.Background(), pg.DSN(), fleet.LoadOptions{AP: "beta:100", Ignored: rules.Ignored})
	require.NoError(t, err)
	assert.Equal(t, []string{"beta", "alpha", "delta"}, ld.Hosts, "gamma shares no network file: it is never read")
	assert.Equal(t, uint64(2), ld.Trace.DroppedEvents)

	pl, err := planner.Compute(ld.Trace, planner.Options{AP: ld.AP, Rules: rules})
	require.NoError(t, err)
	var table bytes.Buffer
	require.NoError(t, pl.WriteTable(&table))
	text := ld.Names.Table(table.String())
	assert.Contains(t, text, "Migration plan for AP beta:100 (tail -F log)")
	assert.Contains(t, text, "AP alpha:100 moves because it writes //[srv:/export]/shared/log, which AP beta:100 (moving) reads")
	assert.Regexp(t, `//\[srv:/export\]/shared/cfg\s.*delta:400`, text, "Model 1: a copy stays for delta's report")
	assert.Contains(t, text, "\n  beta:100    1          tail -F log  AP beta:100 is", "the columns stay aligned")
	assert.Contains(t, text, "\n  alpha:100   1          svc          AP alpha:100 moves")
	assert.Contains(t, text, "//alpha/var/state")
	assert.Contains(t, text, "//beta/var/state")
	assert.Contains(t, text, "/usr/lib/libc.so.6", "an ignored path keeps its own name")

	lines, err := pl.ExplainFile(ld.Names.File("alpha:/mnt/a/shared/log"))
	require.NoError(t, err)
	assert.Contains(t, ld.Names.Text(strings.Join(lines, "\n")), "AP alpha:100 moves because it writes //[srv:/export]/shared/log")

	var js bytes.Buffer
	require.NoError(t, pl.WriteJSON(&js))
	var out bytes.Buffer
	require.NoError(t, ld.Names.JSON(js.Bytes(), &out))
	var got struct {
		AP struct {
			PID  int32
			Host string
		} `json:"ap"`
		APs []struct {
			Root  int32  `json:"root_pid"`
			Host  string `json:"host"`
			Cause *struct {
				ByAP   int32 `json:"by_ap"`
				ByProc struct {
					PID  int32
					Host string
				} `json:"by_proc"`
			} `json:"cause"`
		} `json:"aps"`
		MoveProcesses []struct {
			PID  int32  `json:"pid"`
			Host string `json:"host"`
			AP   int32  `json:"ap"`
		} `json:"move_processes"`
		CopyFiles []struct {
			Path    string   `json:"path"`
			ForPIDs []int32  `json:"for_pids"`
			ForHost []string `json:"for_pids_hosts"`
		} `json:"copy_files"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &got), out.String())
	assert.Equal(t, int32(100), got.AP.PID)
	assert.Equal(t, "beta", got.AP.Host)
	require.Len(t, got.APs, 2)
	assert.Equal(t, "alpha", got.APs[1].Host)
	assert.Equal(t, int32(100), got.APs[1].Root)
	assert.Equal(t, "beta", got.APs[1].Cause.ByProc.Host)
	assert.Equal(t, int32(100), got.APs[1].Cause.ByAP)
	require.Len(t, got.MoveProcesses, 2)
	for _, p := range got.MoveProcesses {
		assert.Equal(t, int32(100), p.PID)
		assert.Equal(t, int32(100), p.AP)
	}
	require.Len(t, got.CopyFiles, 1)
	assert.Equal(t, []int32{400}, got.CopyFiles[0].ForPIDs)
	assert.Equal(t, []string{"delta"}, got.CopyFiles[0].ForHost)
	assert.NotContains(t, out.String(), "1100000", "no synthetic pid is left")
}

func TestFleetLoadErrorsNameTheRemedy(t *testing.T) {
	pg := pgtest.Start(t)
	_, err := fleet.Load(context.Background(), pg.DSN(), fleet.LoadOptions{AP: "alpha:1"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "publish first")
	publishAll(t, pg.DSN(), fourHosts()[:1])
	tests := []struct{ name, ap, want string }{
		{"a pid without a host", "100", "HOST:PID"},
		{"an unknown host", "omega:100", `no host "omega"`},
		{"an unknown pid", "alpha:7", "no process with pid 7 on host alpha"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fleet.Load(context.Background(), pg.DSN(), fleet.LoadOptions{AP: tt.ap})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
