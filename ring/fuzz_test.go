package ring

import (
	"encoding/binary"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// memReader builds a reader over a ring held in a plain byte slice, so the
// decoder can be fuzzed without files or mmap.
func memReader(mem []byte, tail uint64, clock *fakeClock) *Reader {
	m := &mapping{path: "fuzz", mem: mem, hdr: (*Header)(unsafe.Pointer(&mem[0]))}
	m.dataSize = MinDataSize
	m.nslots = MinDataSize / SlotSize
	m.data = mem[HeaderSize : HeaderSize+MinDataSize]
	m.hdr.Tail = tail
	return &Reader{m: m, abandonTimeout: time.Second, now: clock.now, lastAbandoned: ^uint64(0)}
}

// validRing returns the bytes of a data area holding one good record at
// slot 0 (as the Go writer lays it out) and its tail.
func validRing(tb testing.TB) ([]byte, uint64) {
	path := mustCreate(tb, Config{DataSize: MinDataSize})
	w := mustWriter(tb, path)
	require.NoError(tb, w.Append(&Record{Type: TypeEvent, Access: AccessWrite, Op: OpRename, Str1: []byte("/a/b"), Str2: []byte("/c")}))
	require.NoError(tb, w.Append(&Record{Type: TypeProc, Op: OpProcStart, Str1: []byte("/bin/sh"), Str2: []byte("/"), Str3: []byte("sh\x00-c")}))
	return append([]byte(nil), w.m.data[:4*SlotSize]...), atomic64(&w.m.hdr.Tail)
}

func atomic64(p *uint64) uint64 { return *p }

func FuzzDrainNeverPanicsOrStalls(f *testing.F) {
	seed, tail := validRing(f)
	f.Add(seed, tail)
	f.Add(seed[:SlotSize], uint64(1))
	f.Add([]byte{}, uint64(0))
	f.Add(seed, uint64(1<<40))
	f.Fuzz(func(t *testing.T, data []byte, tail uint64) {
		mem := make([]byte, HeaderSize+MinDataSize)
		copy(mem[HeaderSize:], data)
		// Stamp the slots the input declares as records so the decoder's
		// validation, not just the stamp check, is exercised.
		for pos := uint64(0); pos*SlotSize+8 <= uint64(len(data)) && pos < 8; pos++ {
			if data[pos*SlotSize]&1 == 1 {
				binary.LittleEndian.PutUint64(mem[HeaderSize+pos*SlotSize:], stamp(pos))
			}
		}
		clock := &fakeClock{t: time.Unix(0, 0)}
		r := memReader(mem, tail, clock)
		b := NewBatch(64, 0)
		for round := 0; round < 4; round++ {
			before := r.Cursor()
			r.Drain(b)
			require.GreaterOrEqual(t, r.Cursor(), before)
			require.LessOrEqual(t, r.Cursor()-before, uint64(MinDataSize/SlotSize), "never reads more than a ring")
			for _, rec := range b.Records {
				require.True(t, rec.Type == TypeEvent || rec.Type == TypeProc)
				require.LessOrEqual(t, len(rec.Str1)+len(rec.Str2)+len(rec.Str3)+3+64, MaxRecordSize)
			}
			clock.advance(2 * time.Second) // let abandonment kick in
		}
	})
}

func TestFuzzSeedDecodesBothRecords(t *testing.T) {
	seed, tail := validRing(t)
	mem := make([]byte, HeaderSize+MinDataSize)
	copy(mem[HeaderSize:], seed)
	r := memReader(mem, tail, &fakeClock{})
	b := NewBatch(8, 0)
	r.Drain(b)
	require.Len(t, b.Records, 2)
	require.Equal(t, "/c", string(b.Records[0].Str2))
	require.Equal(t, []string{"sh", "-c"}, b.Records[1].Argv())
}
