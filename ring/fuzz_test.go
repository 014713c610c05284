package ring

import (
	"encoding/binary"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// memReader builds a reader over a one-sub-ring ring held in a plain byte
// slice, so the decoder can be fuzzed without files or mmap.
func memReader(data []byte, tail uint64, clock *fakeClock) *Reader {
	_, _, off := layout(1)
	mem := make([]byte, off+MinDataSize)
	h := (*Header)(unsafe.Pointer(&mem[0]))
	initHeader(h, MinDataSize, 1, 0, time.Millisecond, false)
	h.Magic = Magic
	copy(mem[off:], data)
	m := &mapping{path: "fuzz", mem: mem, hdr: h}
	if err := m.takeGeometry(uint64(len(mem))); err != nil {
		panic(err)
	}
	m.subs[0].Tail = tail
	return newReader(nil, m, Options{AbandonTimeout: time.Second, now: clock.now})
}

// validRing returns the bytes of a data area holding two good records from
// slot 0 (as the Go writer lays them out) and its tail.
func validRing(tb testing.TB) ([]byte, uint64) {
	path := mustCreate(tb, Config{DataSize: MinDataSize})
	w := mustWriter(tb, path)
	require.NoError(tb, w.Append(&Record{Type: TypeEvent, Access: AccessWrite, Op: OpRename, Str1: []byte("/a/b"), Str2: []byte("/c")}))
	require.NoError(tb, w.Append(&Record{Type: TypeProc, Op: OpProcStart, Str1: []byte("/bin/sh"), Str2: []byte("/"), Str3: []byte("sh\x00-c")}))
	return append([]byte(nil), w.m.data[:4*SlotSize]...), w.m.subs[0].Tail
}

func FuzzDrainNeverPanicsOrStalls(f *testing.F) {
	seed, tail := validRing(f)
	f.Add(seed, tail)
	f.Add(seed[:SlotSize], uint64(1))
	f.Add([]byte{}, uint64(0))
	f.Add(seed, uint64(1<<40))
	f.Fuzz(func(t *testing.T, data []byte, tail uint64) {
		data = append([]byte(nil), data[:min(len(data), MinDataSize)]...)
		// Stamp the slots the input declares as records so the decoder's
		// validation, not just the stamp check, is exercised.
		for pos := uint64(0); pos*SlotSize+8 <= uint64(len(data)) && pos < 8; pos++ {
			if data[pos*SlotSize]&1 == 1 {
				binary.LittleEndian.PutUint64(data[pos*SlotSize:], stamp(pos))
			}
		}
		clock := &fakeClock{t: time.Unix(0, 0)}
		r := memReader(data, tail, clock)
		b := NewBatch(64, 0)
		for round := 0; round < 4; round++ {
			before := r.subs[0].cursor
			r.Drain(b)
			require.GreaterOrEqual(t, r.subs[0].cursor, before)
			require.LessOrEqual(t, r.subs[0].cursor-before, uint64(MinDataSize/SlotSize), "never reads more than a ring")
			r.Release(b.End)
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
	r := memReader(seed, tail, &fakeClock{})
	b := NewBatch(8, 0)
	r.Drain(b)
	require.Len(t, b.Records, 2)
	require.Equal(t, "/c", string(b.Records[0].Str2))
	require.Equal(t, []string{"sh", "-c"}, b.Records[1].Argv())
}
