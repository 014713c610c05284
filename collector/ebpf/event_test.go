package ebpf

import (
	"bufio"
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/ring"
)

// defines reads the integer #defines of bpf/event.h.
func defines(tb testing.TB) map[string]int64 {
	tb.Helper()
	f, err := os.Open("bpf/event.h")
	require.NoError(tb, err)
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[0] != "#define" {
			continue
		}
		v, err := strconv.ParseInt(strings.Trim(fields[2], "()"), 0, 64)
		if err == nil {
			out[fields[1]] = v
		}
	}
	require.NoError(tb, sc.Err())
	return out
}

func TestTheBPFHeaderUsesTheRingsOpNumbersAndTheDecodersConstants(t *testing.T) {
	d := defines(t)
	want := map[string]int64{
		"RT_OP_OPEN": int64(ring.OpOpen), "RT_OP_OPENAT": int64(ring.OpOpenat), "RT_OP_CREAT": int64(ring.OpCreat),
		"RT_OP_OPENAT2": int64(ring.OpOpenat2), "RT_OP_RENAME": int64(ring.OpRename),
		"RT_OP_RENAMEAT": int64(ring.OpRenameat), "RT_OP_RENAMEAT2": int64(ring.OpRenameat2),
		"RT_OP_LINK": int64(ring.OpLink), "RT_OP_LINKAT": int64(ring.OpLinkat),
		"RT_OP_UNLINK": int64(ring.OpUnlink), "RT_OP_UNLINKAT": int64(ring.OpUnlinkat),
		"RT_OP_RMDIR": int64(ring.OpRmdir), "RT_OP_MKDIR": int64(ring.OpMkdir), "RT_OP_MKDIRAT": int64(ring.OpMkdirat),
		"RT_OP_TRUNCATE": int64(ring.OpTruncate), "RT_OP_EXECVE": int64(ring.OpExecve),
		"RT_OP_EXECVEAT": int64(ring.OpExecveat), "RT_OP_CHDIR": int64(ring.OpChdir), "RT_OP_FCHDIR": int64(ring.OpFchdir),
		"RT_OP_PROC_FORK": int64(ring.OpProcFork), "RT_OP_PROC_EXEC": int64(ring.OpProcExec),
		"RT_OP_PROC_EXIT": int64(ring.OpProcExit),
		"RT_OP_BIND":      int64(ring.OpBind), "RT_OP_CONNECT": int64(ring.OpConnect), "RT_OP_LISTEN": int64(ring.OpListen),
		"RT_OP_ACCEPT": int64(ring.OpAccept), "RT_OP_ACCEPT4": int64(ring.OpAccept4),
		"RT_EF_SOCKET": efSocket, "RT_SOCKADDR_MAX": 112,
		"RT_TYPE_EVENT": typeEvent, "RT_TYPE_PROC": typeProc,
		"RT_STR_MAX": strMax, "RT_AT_FDCWD": atFDCWD,
		"RT_EF_PATH1_FAULT": efPath1Fault, "RT_EF_PATH2_FAULT": efPath2Fault, "RT_EF_ARGV_TRUNCATED": efArgvTruncated,
		"RT_EF_BASE_INCOMPLETE": efBaseIncomplete,
		"RT_PROC_FOLLOW_ONLY":   procFollowOnly,
		"RT_CNT_EMITTED":        counterEmitted, "RT_CNT_LOST_RING": counterLostRing, "RT_CNT_LOST_INFLIGHT": counterLostArgs,
		"RT_CNT_LOST_PROC": counterLostProc, "RT_CNT_FAULT": counterFaults, "RT_COUNTER_MAX": counterCount,
	}
	for name, v := range want {
		got, ok := d[name]
		if assert.True(t, ok, "%s is defined in bpf/event.h", name) {
			assert.Equal(t, v, got, name)
		}
	}
	for name := range d {
		if strings.HasPrefix(name, "RT_OP_") {
			_, ok := want[name]
			assert.True(t, ok, "%s is checked against the ring package", name)
		}
	}
}

// sample builds a sample as the BPF side writes it.
func sample(typ, op uint16, pid int32, dfd1 int32, flags uint32, strs ...string) []byte {
	b := make([]byte, eventHeaderSize)
	le := binary.LittleEndian
	le.PutUint16(b[0:], typ)
	le.PutUint16(b[2:], op)
	for i, s := range strs {
		off := 4 + 2*i // len1..len3
		if i == 3 {
			off = 44 // len4
		}
		le.PutUint16(b[off:], uint16(len(s)))
	}
	le.PutUint32(b[12:], uint32(pid))
	le.PutUint32(b[16:], uint32(pid))
	le.PutUint32(b[28:], uint32(dfd1))
	dfd2 := int32(atFDCWD)
	le.PutUint32(b[32:], uint32(dfd2))
	le.PutUint32(b[36:], flags)
	le.PutUint64(b[48:], 42)
	le.PutUint64(b[56:], 1_234_567_890)
	for _, s := range strs {
		b = append(b, s...)
	}
	return b
}

func TestDecodingRejectsSamplesWhoseStringsOverrunThem(t *testing.T) {
	var ev rawEvent
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"a sample shorter than the header", make([]byte, eventHeaderSize-1)},
		{"a sample whose first string is longer than what follows", sample(typeEvent, 3, 1, atFDCWD, 0, "abc")[:eventHeaderSize+2]},
		{"a sample whose lengths add up past its end", func() []byte {
			b := sample(typeEvent, 3, 1, atFDCWD, 0, "ab", "cd")
			return b[:len(b)-1]
		}()},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Error(t, decodeEvent(c.b, &ev))
		})
	}
	require.NoError(t, decodeEvent(sample(typeEvent, 3, 7, atFDCWD, 0, "a", "b", "/base-a", "/base-b"), &ev))
	assert.Equal(t, "a", string(ev.Str1))
	assert.Equal(t, "b", string(ev.Str2))
	assert.Equal(t, "/base-a", string(ev.Str3))
	assert.Equal(t, "/base-b", string(ev.Str4))
	assert.Equal(t, int32(7), ev.PID)
	assert.Equal(t, uint64(42), ev.TimeNs)
}

func FuzzDecodeNeverPanics(f *testing.F) {
	f.Add(sample(typeEvent, 3, 1, atFDCWD, 0, "/etc/passwd"))
	f.Add(sample(typeProc, 112, 1, atFDCWD, 0, "/bin/sh", "", "sh\x00-c"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev rawEvent
		if decodeEvent(b, &ev) == nil {
			c := newConverter(fakeFS{})
			var out [2]ring.Record
			c.convert(&ev, &out)
		}
	})
}

func TestStartTimesAreRoundedToTheClockTicksProcStatReports(t *testing.T) {
	assert.Equal(t, uint64(1_230_000_000), startTicks(1_234_567_890))
	assert.Equal(t, uint64(1_230_000_000), startTicks(1_230_000_000))
}
