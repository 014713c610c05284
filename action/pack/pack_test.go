package pack_test

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/restrack/restrack/action/internal/tracetest"
	"github.com/restrack/restrack/action/migrate"
	"github.com/restrack/restrack/action/pack"
	"github.com/restrack/restrack/planner"
)

// appScript makes its data on the first run and reports on it on every
// run: the report is the application's output, which must be the same
// when it runs again from an unpacked archive.
const appScript = `#!/bin/bash
set -eu
d=$1
data=$d/app/data
if [ ! -e "$data/a.txt" ]; then
	mkdir -p "$data"
	printf 'hello\n' > "$data/a.txt"
	chmod 0640 "$data/a.txt"
	ln "$data/a.txt" "$data/hard.txt"
	ln -s a.txt "$data/sym"
	truncate -s 8M "$data/sparse.bin"
	printf x | dd of="$data/sparse.bin" bs=1 seek=4000000 conv=notrunc 2>/dev/null
	printf 'newline\n' > "$data/new"$'\n'"line"
	printf 'bytes\n' > "$data/bad"$'\xff'"name"
	mkfifo "$data/ctl.fifo"
fi
cat "$data/a.txt" "$data/hard.txt" "$data/sym" "$data/new"$'\n'"line" "$data/bad"$'\xff'"name"
sha256sum < "$data/sparse.bin"
[ -p "$data/ctl.fifo" ] && echo fifo ok
`

func writeApp(t *testing.T) (dir, script string) {
	dir = t.TempDir()
	script = filepath.Join(dir, "app.sh")
	require.NoError(t, os.WriteFile(script, []byte(appScript), 0o755))
	return dir, script
}

func mustPack(t *testing.T, pl *planner.Plan, tr *planner.Trace, opts pack.Options) (string, *pack.Summary) {
	t.Helper()
	archive := filepath.Join(t.TempDir(), "app.tar.zst")
	out, err := os.Create(archive)
	require.NoError(t, err)
	defer out.Close()
	opts.Plan, opts.Trace, opts.Out = pl, tr, out
	sum, err := pack.Pack(context.Background(), opts)
	require.NoError(t, err)
	return archive, sum
}

func TestPackUnpackRoundTrip(t *testing.T) {
	dir, script := writeApp(t)
	storeDir := tracetest.Run(t, dir, "bash", script, dir)
	tr := tracetest.Load(t, storeDir)
	_, pl := tracetest.Plan(t, storeDir, fmt.Sprint(tracetest.Root(t, tr)))
	data := filepath.Join(dir, "app", "data")
	xattrOK := unix.Setxattr(filepath.Join(data, "a.txt"), "user.restrack", []byte("kept"), 0) == nil

	archive, sum := mustPack(t, pl, tr, pack.Options{})
	assert.Empty(t, sum.Changed)
	assert.Equal(t, "", sum.Frozen, "nothing runs: nothing to freeze")
	root := filepath.Join(t.TempDir(), "target")
	res, err := pack.Unpack(pack.UnpackOptions{Archive: archive, Root: root})
	require.NoError(t, err)
	assert.Empty(t, res.Errors)

	at := func(p string) string { return filepath.Join(root, p) }
	names := []string{"a.txt", "hard.txt", "sparse.bin", "new\nline", "bad\xffname"}
	for _, n := range names {
		t.Run("the content, mode and mtime of "+fmt.Sprintf("%q", n)+" come back", func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(data, n))
			require.NoError(t, err)
			got, err := os.ReadFile(at(filepath.Join(data, n)))
			require.NoError(t, err)
			assert.Equal(t, want, got)
			wi, _ := os.Lstat(filepath.Join(data, n))
			gi, err := os.Lstat(at(filepath.Join(data, n)))
			require.NoError(t, err)
			assert.Equal(t, wi.Mode(), gi.Mode())
			assert.True(t, wi.ModTime().Equal(gi.ModTime()), "mtime %v, want %v", gi.ModTime(), wi.ModTime())
		})
	}
	t.Run("a hard link is stored once and restored as a link", func(t *testing.T) {
		a, _ := os.Stat(at(filepath.Join(data, "a.txt")))
		h, _ := os.Stat(at(filepath.Join(data, "hard.txt")))
		assert.True(t, os.SameFile(a, h))
		assert.Equal(t, 1, sum.HardLinks)
	})
	t.Run("a symlink stays a symlink with its target", func(t *testing.T) {
		target, err := os.Readlink(at(filepath.Join(data, "sym")))
		require.NoError(t, err)
		assert.Equal(t, "a.txt", target)
	})
	t.Run("a sparse file stays sparse", func(t *testing.T) {
		var st unix.Stat_t
		require.NoError(t, unix.Stat(at(filepath.Join(data, "sparse.bin")), &st))
		assert.Equal(t, int64(8<<20), st.Size)
		assert.Less(t, st.Blocks*512, st.Size/4, "the holes must not be written")
	})
	t.Run("a FIFO comes back as a FIFO", func(t *testing.T) {
		fi, err := os.Lstat(at(filepath.Join(data, "ctl.fifo")))
		require.NoError(t, err)
		assert.NotZero(t, fi.Mode()&fs.ModeNamedPipe)
	})
	t.Run("extended attributes are kept where the file system has them", func(t *testing.T) {
		if !xattrOK {
			t.Logf("this file system refuses user xattrs: nothing to check")
			return
		}
		buf := make([]byte, 64)
		n, err := unix.Getxattr(at(filepath.Join(data, "a.txt")), "user.restrack", buf)
		require.NoError(t, err)
		assert.Equal(t, "kept", string(buf[:n]))
	})
	t.Run("the manifest lists each moving process with its argv and cwd", func(t *testing.T) {
		m := res.Manifest
		require.NotEmpty(t, m.Processes)
		var found bool
		for _, p := range m.Processes {
			if len(p.Argv) == 3 && p.Argv[1] == script {
				found = true
				assert.Equal(t, dir, p.Cwd)
			}
		}
		assert.True(t, found, "the app's own process is in the manifest")
		for _, f := range m.Files {
			if f.Kind == planner.KindRegular && f.HardLink == "" && !f.Missing {
				assert.Len(t, f.SHA256, 64, "%s has a checksum", f.Path)
			}
		}
	})
	t.Run("unpacking again finds everything in place and writes nothing", func(t *testing.T) {
		res, err := pack.Unpack(pack.UnpackOptions{Archive: archive, Root: root})
		require.NoError(t, err)
		for _, a := range res.Actions {
			assert.Contains(t, []string{"same", "skip"}, a.Do, "%q", a.Path)
		}
	})

	t.Run("the application run from the unpacked root prints what it printed at the source", func(t *testing.T) {
		want, err := exec.Command("bash", script, dir).Output()
		require.NoError(t, err)
		got := runInRoot(t, root, "bash "+migrate.Quote(script)+" "+migrate.Quote(dir))
		assert.Equal(t, string(want), got)
		assert.Contains(t, got, "fifo ok")
	})
}

// runInRoot runs a shell command chrooted into root, the host's system
// directories bound read-only, in a private mount namespace.
func runInRoot(t *testing.T, root, command string) string {
	t.Helper()
	require.Equal(t, 0, os.Geteuid(), "running the application from the unpacked root needs chroot and bind mounts: run the tests as root (CI does)")
	script := migrate.ChrootPrelude(migrate.Quote(root)) + "exec chroot " + migrate.Quote(root) + " /bin/sh -c " + migrate.Quote(command) + "\n"
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return string(out)
}

// TestPackFreezesLiveWriters: a live process appends to a file the AP
// writes; pack stops it while reading, so the stored file is consistent,
// and it runs again afterwards.
func TestPackFreezesLiveWriters(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "live.log")
	pidFile := filepath.Join(dir, "writer.pid")
	script := filepath.Join(dir, "writer.sh")
	require.NoError(t, os.WriteFile(script, []byte(`#!/bin/bash
# A writer that outlives restrack run: it appends to its log until killed.
head -c 4000000 /dev/zero | tr '\0' 'x' > "$1"
# One open, then plain writes: the loop appends as fast as it can.
( exec 0</dev/null 1>/dev/null 2>&1 3>>"$1"; while :; do printf '%01000d\n' 0 >&3; done ) &
echo $! > "$2"
# Wait until the loop wrote: its open is then in the trace.
size=$(stat -c %s "$1")
while [ "$(stat -c %s "$1")" = "$size" ]; do sleep 0.01; done
`), 0o755))
	storeDir := tracetest.Run(t, dir, "bash", script, log, pidFile)
	pid := tracetest.WaitFile(t, pidFile)
	t.Cleanup(func() { exec.Command("kill", "-9", pid).Run() })
	tr := tracetest.Load(t, storeDir)
	_, pl := tracetest.Plan(t, storeDir, fmt.Sprint(tracetest.Root(t, tr)))
	require.NotEmpty(t, pl.LiveAPs, "the writer still runs: its AP is live")

	t.Run("pack freezes the live writer and the file holds still while read", func(t *testing.T) {
		_, sum := mustPack(t, pl, tr, pack.Options{})
		assert.NotEmpty(t, sum.Frozen)
		assert.Contains(t, sum.FrozenPIDs, int32(atoi(t, pid)))
		assert.Empty(t, sum.Changed)
		assert.Zero(t, sum.Rereads, "a frozen writer changes nothing")
		assert.True(t, running(t, pid), "the writer runs again after pack")
	})
	t.Run("with --no-freeze a file changing during the read is caught", func(t *testing.T) {
		_, sum := mustPack(t, pl, tr, pack.Options{NoFreeze: true})
		assert.Empty(t, sum.Frozen)
		assert.True(t, sum.Rereads > 0 || len(sum.Changed) > 0, "a file appended to during the read must be read again or reported: %+v", sum)
		assert.True(t, running(t, pid))
	})
	t.Run("an error while frozen still thaws the writer", func(t *testing.T) {
		_, err := pack.Pack(context.Background(), pack.Options{Plan: pl, Trace: tr, Out: failingWriter{}})
		require.Error(t, err)
		assert.True(t, running(t, pid), "the writer must never be left stopped")
	})
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, fmt.Errorf("disk full") }

func atoi(t *testing.T, s string) int {
	var n int
	_, err := fmt.Sscan(s, &n)
	require.NoError(t, err)
	return n
}

// running: the process exists and is not stopped, a moment later too.
func running(t *testing.T, pid string) bool {
	for i := 0; i < 2; i++ {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return false
		}
		s := string(b)
		if st := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]; st == "T" || st == "t" {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// archiveOf packs a small tree without a trace: a plan that moves the given files.
func archiveOf(t *testing.T, files map[string]string) (string, string) {
	dir := t.TempDir()
	pl := &planner.Plan{}
	for name, content := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		pl.MoveFiles = append(pl.MoveFiles, planner.MoveFile{Path: p, FileState: planner.FileState{Kind: planner.KindRegular}})
	}
	archive, _ := mustPack(t, pl, nil, pack.Options{})
	return archive, dir
}

// rewrite decompresses an archive, lets edit change each entry, and
// compresses it again: a way to forge bad archives.
func rewrite(t *testing.T, archive string, edit func(h *tar.Header, body []byte) []byte) string {
	in, err := os.Open(archive)
	require.NoError(t, err)
	defer in.Close()
	zr, err := zstd.NewReader(in)
	require.NoError(t, err)
	defer zr.Close()
	tr := tar.NewReader(zr)
	out := filepath.Join(t.TempDir(), "forged.tar.zst")
	f, err := os.Create(out)
	require.NoError(t, err)
	defer f.Close()
	zw, err := zstd.NewWriter(f)
	require.NoError(t, err)
	tw := tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		body, err := io.ReadAll(tr)
		require.NoError(t, err)
		body = edit(h, body)
		h.Size = int64(len(body))
		require.NoError(t, tw.WriteHeader(h))
		_, err = tw.Write(body)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	return out
}

func TestUnpackRefusesBadArchives(t *testing.T) {
	archive, _ := archiveOf(t, map[string]string{"conf": "port=1\n", "data": strings.Repeat("payload ", 1000)})
	raw, err := os.ReadFile(archive)
	require.NoError(t, err)
	corrupted := filepath.Join(t.TempDir(), "corrupted.tar.zst")
	bad := append([]byte{}, raw...)
	for i := len(bad) / 3; i < len(bad)/3+16; i++ {
		bad[i] ^= 0xff
	}
	require.NoError(t, os.WriteFile(corrupted, bad, 0o644))
	truncated := filepath.Join(t.TempDir(), "truncated.tar.zst")
	require.NoError(t, os.WriteFile(truncated, raw[:len(raw)/2], 0o644))

	tests := []struct {
		name    string
		archive string
		want    string
	}{
		{"a corrupted archive is a clear error", corrupted, "corrupted archive"},
		{"an archive cut short is a clear error", truncated, "archive"},
		{"a file whose bytes differ from the manifest's checksum is refused", rewrite(t, archive, func(h *tar.Header, b []byte) []byte {
			if strings.HasSuffix(h.Name, "/conf") {
				return []byte("port=2\n")
			}
			return b
		}), "checksum mismatch"},
		{"an entry climbing out of the root is refused", rewrite(t, archive, func(h *tar.Header, b []byte) []byte {
			if strings.HasSuffix(h.Name, "/conf") {
				h.Name = "root/../../escaped"
			}
			return b
		}), "escape"},
		{"an archive without a manifest is not taken for one", rewrite(t, archive, func(h *tar.Header, b []byte) []byte {
			if h.Name == pack.ManifestName {
				h.Name = "root/other.json"
			}
			return b
		}), "no manifest.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "target")
			_, err := pack.Unpack(pack.UnpackOptions{Archive: tt.archive, Root: root})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			entries, _ := os.ReadDir(root)
			assert.Empty(t, entries, "a bad archive writes nothing")
			_, err = os.Lstat(filepath.Join(filepath.Dir(root), "escaped"))
			assert.ErrorIs(t, err, fs.ErrNotExist)
		})
	}
}

func TestUnpackNeverWritesThroughASymlinkOutOfTheRoot(t *testing.T) {
	archive, dir := archiveOf(t, map[string]string{"conf": "port=1\n"})
	// A forged archive: the file's directory replaced by a symlink to an
	// absolute directory outside the root, then the file under it.
	outside := t.TempDir()
	forged := rewrite(t, archive, func(h *tar.Header, b []byte) []byte {
		if h.Typeflag == tar.TypeDir && strings.TrimSuffix(h.Name, "/") == "root"+dir {
			h.Typeflag, h.Linkname, h.Name = tar.TypeSymlink, outside, "root"+dir
		}
		if h.Name == pack.ManifestName {
			var m pack.Manifest
			require.NoError(t, json.Unmarshal(b, &m))
			for i := range m.Files {
				if m.Files[i].Path == dir {
					m.Files[i].Kind, m.Files[i].Symlink = planner.KindSymlink, outside
				}
			}
			b, _ = json.Marshal(m)
		}
		return b
	})
	root := filepath.Join(t.TempDir(), "target")
	_, err := pack.Unpack(pack.UnpackOptions{Archive: forged, Root: root})
	require.Error(t, err)
	_, err = os.Lstat(filepath.Join(outside, "conf"))
	assert.ErrorIs(t, err, fs.ErrNotExist, "nothing may be written through a symlink leading out of the root")
}

func TestUnpackConflicts(t *testing.T) {
	archive, dir := archiveOf(t, map[string]string{"conf": "port=1\n", "same": "same\n"})
	root := filepath.Join(t.TempDir(), "target")
	conf := filepath.Join(root, dir, "conf")
	require.NoError(t, os.MkdirAll(filepath.Dir(conf), 0o755))
	require.NoError(t, os.WriteFile(conf, []byte("port=9\n"), 0o644))

	t.Run("a different existing file is a conflict: listed, and nothing is written", func(t *testing.T) {
		res, err := pack.Unpack(pack.UnpackOptions{Archive: archive, Root: root})
		var ce *pack.ConflictError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, []string{filepath.Join(dir, "conf")}, res.Conflicts)
		b, _ := os.ReadFile(conf)
		assert.Equal(t, "port=9\n", string(b))
		_, err = os.Stat(filepath.Join(root, dir, "same"))
		assert.ErrorIs(t, err, fs.ErrNotExist, "not even the files without conflict")
	})
	t.Run("--dry-run lists what it would do and writes nothing", func(t *testing.T) {
		res, err := pack.Unpack(pack.UnpackOptions{Archive: archive, Root: root, DryRun: true})
		require.NoError(t, err)
		do := map[string]string{}
		for _, a := range res.Actions {
			do[filepath.Base(a.Path)] = a.Do
		}
		assert.Equal(t, "conflict", do["conf"])
		assert.Equal(t, "create", do["same"])
		_, err = os.Stat(filepath.Join(root, dir, "same"))
		assert.ErrorIs(t, err, fs.ErrNotExist)
	})
	t.Run("--force replaces it", func(t *testing.T) {
		_, err := pack.Unpack(pack.UnpackOptions{Archive: archive, Root: root, Force: true})
		require.NoError(t, err)
		b, _ := os.ReadFile(conf)
		assert.Equal(t, "port=1\n", string(b))
	})
}
