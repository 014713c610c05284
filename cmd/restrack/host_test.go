package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/internal/ctest"
)

// hostScript runs inside a private mount namespace: /etc is an overlay
// whose writes land in $T/etc-upper, /run a fresh tmpfs, so that
// /etc/ld.so.preload, the unit directory and the well-known socket are the
// namespace's own and the machine is never changed.
const hostScript = `set -eu
mount -t overlay overlay -o lowerdir=/etc,upperdir=$T/etc-upper,workdir=$T/etc-work /etc
mount -t tmpfs tmpfs /run
state() { sha256sum /etc/ld.so.preload 2>/dev/null || echo "no /etc/ld.so.preload"; find /etc/systemd/system -mindepth 1 -printf '%P %y %m %s\n' | sort; }
state > $T/before
restrack() { RESTRACK_TEST_MAIN=1 "$RT" host --systemctl=false --lib-dir $T/lib --state-dir $T/state --store $T/store "$@"; }
restrack enable --shim "$SHIM" --collector "$COLL" 2> $T/enable.err
# The collector as systemd would start it, from the unit's own line.
ES=$(sed -n 's/^ExecStart=//p' /etc/systemd/system/restrack-collector.service)
LD_PRELOAD= $ES 2> $T/collector.err & CPID=$!
for i in $(seq 100); do [ -S /run/restrack/collector.sock ] && break; sleep 0.1; done
run() { name=$1; shift; "$@" > $T/out-$name 2>&1; echo "rc=$?" >> $T/out-$name; }
run root cat $T/marker-root
run nobody setpriv --reuid=65534 --regid=65534 --clear-groups cat $T/marker-nobody
run test setpriv --reuid=$TESTUID --regid=$TESTGID --clear-groups cat $T/marker-test
run suid setpriv --reuid=65534 --regid=65534 --clear-groups $T/suid $T/marker-suid
restrack status --json > $T/status.json
kill -TERM $CPID; wait $CPID || true
restrack disable 2> $T/disable.err
state > $T/after
`

func TestHostEnableTracesEveryUIDAndASetuidProgramAndDisableRestoresEveryFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a private mount namespace")
	}
	for _, tool := range []string{"unshare", "setpriv", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	u, err := user.Lookup("restrack-test")
	require.NoError(t, err, "run scripts/setup-debian.sh: it creates the test user")
	root := ctest.RepoRoot(t)
	coll := filepath.Join(root, "build", "collector")
	if _, err := os.Stat(coll); err != nil {
		t.Skip("build/collector is missing: run make")
	}

	// Everything the other uids touch lives in a world-readable directory.
	T, err := os.MkdirTemp("", "restrack-host-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(T) })
	require.NoError(t, os.Chmod(T, 0o755))
	for _, d := range []string{"etc-upper", "etc-work"} {
		require.NoError(t, os.Mkdir(filepath.Join(T, d), 0o755))
	}
	for _, m := range []string{"root", "nobody", "test", "suid"} {
		require.NoError(t, os.WriteFile(filepath.Join(T, "marker-"+m), []byte("marker of "+m+"\n"), 0o644))
	}
	suidSrc := ctest.Build(t, "setuid_probe", []string{"libcshim/tests/setuid_probe.c"})
	b, err := os.ReadFile(suidSrc)
	require.NoError(t, err)
	suid := filepath.Join(T, "suid")
	require.NoError(t, os.WriteFile(suid, b, 0o755))
	require.NoError(t, os.Chown(suid, 0, 0))
	require.NoError(t, os.Chmod(suid, 0o4755|os.ModeSetuid))

	// The same programs without the shim: what "behave exactly as without
	// the shim" compares against.
	baseline := map[string]string{}
	for name, argv := range map[string][]string{
		"root":   {"cat", filepath.Join(T, "marker-root")},
		"nobody": {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cat", filepath.Join(T, "marker-nobody")},
		"test":   {"setpriv", "--reuid=" + u.Uid, "--regid=" + u.Gid, "--clear-groups", "cat", filepath.Join(T, "marker-test")},
		"suid":   {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", suid, filepath.Join(T, "marker-suid")},
	} {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		baseline[name] = string(out) + "rc=" + itoa(code) + "\n"
	}
	require.Contains(t, baseline["suid"], "ruid=65534 euid=0", "the probe is setuid root")

	cmd := exec.Command("unshare", "-m", "--propagation", "private", "bash", "-c", hostScript)
	// No RESTRACK_* variable reaches the traced programs: only what the
	// script itself passes to restrack.
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "T=" + T, "RT=" + os.Args[0], "SHIM=" + mustShim(t),
		"COLL=" + coll, "TESTUID=" + u.Uid, "TESTGID=" + u.Gid}
	out, err := cmd.CombinedOutput()
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(T, name))
		return string(b)
	}
	require.NoError(t, err, "%s\nenable: %s\ncollector: %s\ndisable: %s", out, read("enable.err"), read("collector.err"), read("disable.err"))

	for name, want := range baseline {
		assert.Equal(t, want, read("out-"+name), "%s behaves exactly as without the shim", name)
	}
	assert.Equal(t, read("before"), read("after"), "disable put /etc/ld.so.preload and the unit directory back byte for byte")
	assert.Contains(t, read("enable.err"), "enabled")
	assert.Contains(t, read("disable.err"), "disabled")

	var st hostState
	require.NoError(t, json.Unmarshal([]byte(read("status.json")), &st), read("status.json"))
	assert.True(t, st.Enabled)
	assert.True(t, st.Preload, "the shim is in the namespace's /etc/ld.so.preload")
	assert.True(t, st.Answers, "the collector answered at the well-known socket")
	regs := map[uint32]uint64{}
	for _, s := range st.UIDs {
		regs[s.UID] = s.Registered
		assert.Zero(t, s.Untraced, "uid %d: no process went untraced", s.UID)
	}
	for _, uid := range []uint32{0, 65534, uint32(atoiT(t, u.Uid))} {
		assert.NotZero(t, regs[uid], "uid %d registered with the root collector: %v", uid, st.UIDs)
	}

	// Every program's read is in the store, with no RESTRACK_* variable set.
	evs := mustEvents(t, T, filepath.Join(T, "store"))
	seen := map[string]bool{}
	for _, e := range evs {
		if strings.HasPrefix(e.Path, filepath.Join(T, "marker-")) && strings.Contains(e.Op, "open") && e.Result >= 0 {
			seen[filepath.Base(e.Path)] = true
		}
	}
	for _, m := range []string{"root", "nobody", "test", "suid"} {
		assert.True(t, seen["marker-"+m], "the open by %s's program is stored: %v", m, seen)
	}
}

func itoa(i int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(i)) }

func fmtInt(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func atoiT(t *testing.T, s string) int {
	t.Helper()
	var v int
	require.NoError(t, json.Unmarshal([]byte(s), &v))
	return v
}
