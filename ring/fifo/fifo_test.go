package fifo

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/ring"
)

// encode lays a record out as the shim writes it in FIFO mode.
func encode(typ, access uint8, op uint16, pid int32, result int32, s1, s2, s3 string) []byte {
	n := headerSize + len(s1) + len(s2) + len(s3) + 3
	b := make([]byte, n)
	le := binary.LittleEndian
	le.PutUint32(b[8:], uint32(n))
	b[12], b[13] = typ, access
	le.PutUint16(b[14:], op)
	le.PutUint64(b[16:], 111)
	le.PutUint64(b[24:], 222)
	le.PutUint32(b[32:], uint32(pid))
	le.PutUint32(b[36:], uint32(pid))
	le.PutUint32(b[40:], 1)
	le.PutUint32(b[44:], uint32(result))
	le.PutUint16(b[56:], uint16(len(s1)))
	le.PutUint16(b[58:], uint16(len(s2)))
	le.PutUint16(b[60:], uint16(len(s3)))
	copy(b[headerSize:], s1+"\x00"+s2+"\x00"+s3+"\x00")
	return b
}

func TestDecodeAcceptsAValidRecordAndRejectsCorruption(t *testing.T) {
	good := encode(ring.TypeEvent, ring.AccessWrite, 1, 42, -2, "/a/b", "/c", "")
	var rec ring.Record
	require.NoError(t, Decode(good, &rec))
	assert.Equal(t, "open", rec.Op.String())
	assert.Equal(t, int32(42), rec.PID)
	assert.Equal(t, int32(-2), rec.Result)
	assert.Equal(t, "/a/b", string(rec.Str1))
	assert.Equal(t, "/c", string(rec.Str2))
	assert.Equal(t, uint64(222), rec.StartNs)

	for _, tc := range []struct {
		name  string
		bytes func() []byte
	}{
		{"a record shorter than its header", func() []byte { return good[:40] }},
		{"a length field that disagrees with the bytes", func() []byte {
			b := append([]byte(nil), good...)
			binary.LittleEndian.PutUint32(b[8:], uint32(len(b)+64))
			return b
		}},
		{"string lengths that disagree with the record length", func() []byte {
			b := append([]byte(nil), good...)
			binary.LittleEndian.PutUint16(b[56:], 2)
			return b
		}},
		{"an unknown record type", func() []byte {
			b := append([]byte(nil), good...)
			b[12] = 9
			return b
		}},
		{"an unknown access class", func() []byte {
			b := append([]byte(nil), good...)
			b[13] = 7
			return b
		}},
		{"a path that is not NUL-terminated", func() []byte {
			b := append([]byte(nil), good...)
			b[headerSize+4] = 'x'
			return b
		}},
		{"a NUL inside an event path", func() []byte {
			b := append([]byte(nil), good...)
			b[headerSize+1] = 0
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.ErrorIs(t, Decode(tc.bytes(), &rec), ErrCorrupt)
		})
	}
}

func TestProcessRecordsMayCarryNULsInArgv(t *testing.T) {
	var rec ring.Record
	require.NoError(t, Decode(encode(ring.TypeProc, ring.AccessNone, 110, 7, 0, "/bin/x", "/", "x\x00-v"), &rec))
	assert.Equal(t, []string{"x", "-v"}, rec.Argv())
}

func TestTheReaderTakesOneRecordPerCallFromARealPipe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	require.NoError(t, Create(path))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "owner-only")
	r, err := Open(path)
	require.NoError(t, err)
	defer r.Close()
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	// Two records in one write: the reader still returns them one by one.
	a := encode(ring.TypeEvent, ring.AccessRead, 3, 1, 5, "/x", "", "")
	b := encode(ring.TypeEvent, ring.AccessWrite, 40, 2, 0, "/y", "/z", "")
	_, err = w.Write(append(a, b...))
	require.NoError(t, err)
	require.NoError(t, w.Close()) // no writer left: no EOF either (we hold it read-write)
	var rec ring.Record
	require.NoError(t, r.Next(&rec))
	assert.Equal(t, "/x", string(rec.Str1))
	require.NoError(t, r.Next(&rec))
	assert.Equal(t, "rename", rec.Op.String())
	assert.Equal(t, "/z", string(rec.Str2))
	assert.Equal(t, uint64(2), r.Records())
	require.NoError(t, r.SetDeadline(time.Now().Add(50*time.Millisecond)))
	err = r.Next(&rec)
	assert.True(t, errors.Is(err, os.ErrDeadlineExceeded), "an empty pipe blocks until the deadline: %v", err)
}

func TestOpenRejectsARegularFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "plain")
	require.NoError(t, os.WriteFile(p, nil, 0o600))
	_, err := Open(p)
	assert.Error(t, err)
}

func FuzzDecodeNeverPanics(f *testing.F) {
	f.Add(encode(ring.TypeEvent, ring.AccessRead, 1, 1, 3, "/etc/passwd", "", ""))
	f.Add(encode(ring.TypeProc, ring.AccessNone, 110, 1, 0, "/bin/sh", "/", "sh\x00-c"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var rec ring.Record
		if Decode(b, &rec) == nil {
			// A valid record's strings lie inside it.
			assert.LessOrEqual(t, len(rec.Str1)+len(rec.Str2)+len(rec.Str3)+headerSize+3, len(b))
		}
	})
}
