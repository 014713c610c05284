package fleet

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const mountinfoA = `22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 22 0:40 / /mnt/a rw,nosuid,nodev,relatime shared:20 - fuse.sshfs alice@10.0.0.5:/srv/export rw,user_id=0,group_id=0
31 30 0:41 / /mnt/a/scratch rw,relatime shared:21 - tmpfs tmpfs rw
32 22 0:42 /projects /work rw,relatime - nfs4 fs1:/home rw,vers=4.2
33 22 0:43 / /my\040data rw,relatime - 9p share rw,trans=virtio
`

const mountinfoB = `22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda2 rw
40 22 0:50 / /data rw,nosuid,nodev,relatime shared:30 - fuse.sshfs 10.0.0.5:/srv/export/ rw
41 22 0:51 / /home rw,relatime - nfs4 fs1:/home rw
42 22 0:52 / /data rw,relatime - tmpfs tmpfs rw
`

func TestIdentify(t *testing.T) {
	a, err := ParseMountInfo(strings.NewReader(mountinfoA))
	require.NoError(t, err)
	b, err := ParseMountInfo(strings.NewReader(mountinfoB))
	require.NoError(t, err)
	tests := []struct {
		name   string
		mounts Mounts
		path   string
		want   FileID
	}{
		{"a local file is its path", a, "/etc/app.conf", FileID{Path: "/etc/app.conf"}},
		{"an sshfs file is its export and the path inside, without the login", a, "/mnt/a/shared/log",
			FileID{Path: "/mnt/a/shared/log", Source: "10.0.0.5:/srv/export", Inner: "/shared/log"}},
		{"a local mount inside a network mount is local", a, "/mnt/a/scratch/x", FileID{Path: "/mnt/a/scratch/x"}},
		{"a subdirectory mount adds its root to the inner path", a, "/work/p1/main.c",
			FileID{Path: "/work/p1/main.c", Source: "fs1:/home", Inner: "/projects/p1/main.c"}},
		{"the mount point itself is the export's root", a, "/mnt/a", FileID{Path: "/mnt/a", Source: "10.0.0.5:/srv/export", Inner: "/"}},
		{"escaped mount points are unescaped", a, "/my data/f", FileID{Path: "/my data/f", Source: "share", Inner: "/f"}},
		{"a prefix that is not a path element is not under the mount", a, "/mnt/abc", FileID{Path: "/mnt/abc"}},
		{"a mount over a mount hides it", b, "/data/x", FileID{Path: "/data/x"}},
		{"the same export through a trailing slash is the same source", b, "/home/p1/main.c",
			FileID{Path: "/home/p1/main.c", Source: "fs1:/home", Inner: "/p1/main.c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.mounts.Identify(tt.path))
		})
	}
	// The point of it all: one file seen through two mount points.
	assert.Equal(t, a.Identify("/work/p1/main.c").Inner, b.Identify("/home/projects/p1/main.c").Inner)
}

func TestParseMountInfoRefusesGarbage(t *testing.T) {
	_, err := ParseMountInfo(strings.NewReader("not a mountinfo line\n"))
	require.Error(t, err)
}

func TestHostID(t *testing.T) {
	tests := []struct {
		name, flag string
		ok         bool
	}{
		{"a plain name is a host id", "web-1.example", true},
		{"a colon would make HOST:PID ambiguous", "a:b", false},
		{"spaces are refused", "a b", false},
		{"a leading bracket would look like a network file", "[x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := HostID(tt.flag)
			assert.Equal(t, tt.ok, err == nil, "%v", err)
		})
	}
}
