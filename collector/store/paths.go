package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"unsafe"
)

// pathIndex gives each distinct path its id, in memory: the writer holds
// every path of the store here (it hands out the ids, and the path log has
// no index on disk). Paths lie back to back in big blocks (no pointer per
// path for the garbage collector to scan, no allocation per path); an
// open-addressed table maps a path's hash to its id. A lookup is one
// hash, one probe (usually one cache miss) and, on a hit, one comparison.
// About 1.3× the path bytes + 24 bytes per path: a trace of ten million
// distinct 60-byte paths holds ~1 GB, where the files table of schema 6
// held the same on disk twice (table and index).
type pathIndex struct {
	seed maphash.Seed
	// blocks hold the paths, back to back; a path never spans two. Blocks
	// are never copied or moved: doubling one arena copied it at every
	// growth, a third of the writer's time in a trace of new paths.
	blocks []bigMem
	used   int // bytes used in the last block
	// off[i] locates the path of id i+1: block<<blockShift | offset in
	// bits 16 and up, its length (0xffff: see long) in the low 16.
	off  []uint64
	long map[int64]int // lengths of paths of 64 KiB and more
	// slots holds hash>>32 << 32 | id; 0 is empty. At most half full.
	// A path's first slot is its hash's top bits (hash >> shift).
	slots []uint64
	shift uint
	n     int
	sink  uint64 // touch's loads go here, so the compiler keeps them
	// The memory of off and slots (bigAlloc), freed when replaced.
	offMem, slotsMem bigMem
}

func newPathIndex() *pathIndex { return &pathIndex{seed: maphash.MakeSeed()} }

// free returns the index's memory; the index is empty after.
func (x *pathIndex) free() {
	if x == nil {
		return
	}
	for i := range x.blocks {
		x.blocks[i].free()
	}
	x.offMem.free()
	x.slotsMem.free()
	*x = pathIndex{seed: x.seed}
}

// bigMem is memory from bigAlloc.
type bigMem struct {
	b      []byte
	mapped bool
}

func (m *bigMem) free() {
	bigFree(m.b, m.mapped)
	*m = bigMem{}
}

// u64s reinterprets the memory as uint64s (bigAlloc's memory is page- or
// heap-aligned).
func (m bigMem) u64s() []uint64 {
	return unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(m.b))), len(m.b)/8)
}

func allocBig(n int) bigMem {
	b, mapped := bigAlloc(n)
	return bigMem{b, mapped}
}

// nextID is the id the next new path gets.
func (x *pathIndex) nextID() int64 { return int64(len(x.off)) + 1 }

func (x *pathIndex) path(id int64) []byte {
	o := x.off[id-1]
	at, n := o>>16, int(o&0xffff)
	if n == 0xffff {
		n = x.long[id]
	}
	b := x.blocks[at>>blockShift].b
	at &= 1<<blockShift - 1
	return b[at : at+uint64(n)]
}

// blockShift: paths are stored in blocks of 4 MiB (two huge pages).
const blockShift = 22

// hash is the tag id takes: the hash's top half.
func (x *pathIndex) hash(p []byte) uint64 { return maphash.Bytes(x.seed, p) >> 32 << 32 }

// touch loads the first slot of each tag, for a block of lookups about to
// come: a table larger than the caches costs a memory access per lookup,
// and loads that depend on nothing run in parallel, where the lookups'
// own (each behind a hash and a comparison) would wait one after the
// other.
func (x *pathIndex) touch(tags []uint64) {
	if len(x.slots) == 0 {
		return
	}
	var sum uint64
	for _, t := range tags {
		sum += x.slots[t>>x.shift]
	}
	x.sink = sum
}

// id returns the id of p, adding it with the next id when it is new.
func (x *pathIndex) id(p []byte) (int64, bool) {
	return x.idOf(p, x.hash(p))
}

// idOf is id with the tag of p already computed (hash).
func (x *pathIndex) idOf(p []byte, tag uint64) (int64, bool) {
	if 2*(x.n+1) > len(x.slots) {
		x.grow()
	}
	mask := uint64(len(x.slots) - 1)
	// The slot comes from the tag's top bits: growing the table then
	// needs no path's bytes (grow).
	for i := tag >> x.shift; ; i = (i + 1) & mask {
		e := x.slots[i]
		if e == 0 {
			id := x.add(p)
			x.slots[i] = tag | uint64(id)
			x.n++
			return id, true
		}
		if e&^0xffffffff == tag {
			if id := int64(e & 0xffffffff); bytes.Equal(x.path(id), p) {
				return id, false
			}
		}
	}
}

// add stores p with the next id, without indexing it.
func (x *pathIndex) add(p []byte) int64 {
	if len(x.off) == cap(x.off) {
		// Doubling: append grows big slices by a quarter.
		m := allocBig(8 * (2*cap(x.off) + 1024))
		x.off = append(m.u64s()[:0], x.off...)
		x.offMem.free()
		x.offMem = m
	}
	if len(x.blocks) == 0 || x.used+len(p) > len(x.blocks[len(x.blocks)-1].b) {
		x.blocks = append(x.blocks, allocBig(max(1<<blockShift, len(p))))
		x.used = 0
	}
	id := int64(len(x.off)) + 1
	n := uint64(len(p))
	if n >= 0xffff {
		if x.long == nil {
			x.long = map[int64]int{}
		}
		x.long[id], n = len(p), 0xffff
	}
	x.off = append(x.off, (uint64(len(x.blocks)-1)<<blockShift|uint64(x.used))<<16|n)
	x.used += copy(x.blocks[len(x.blocks)-1].b[x.used:], p)
	return id
}

// load adds the paths of a path-log chunk (ids first … first+n-1) as the
// writer opens the store.
func (x *pathIndex) load(n, first int64, payload []byte) error {
	if first < x.nextID() {
		return fmt.Errorf("path ids %d… come after id %d: %w", first, x.nextID()-1, errBadFileDelta)
	}
	if first+n > 1<<32-1 {
		return fmt.Errorf("path id %d is beyond 2^32: %w", first+n, errBadFileDelta)
	}
	// Ids a failed writer never used stay empty: no path has them.
	for x.nextID() < first {
		x.add(nil)
	}
	return decodeFileDelta(first, n, payload, func(id int64, p []byte) error {
		if _, isNew := x.id(p); !isNew {
			return fmt.Errorf("path id %d repeats an earlier path: %w", id, errBadFileDelta)
		}
		return nil
	})
}

func (x *pathIndex) grow() {
	old, oldMem := x.slots, x.slotsMem
	x.slotsMem = allocBig(8 * max(1024, 2*len(old)))
	x.slots = x.slotsMem.u64s()
	defer oldMem.free()
	x.shift = 64 - uint(bits.TrailingZeros(uint(len(x.slots))))
	mask := uint64(len(x.slots) - 1)
	for _, e := range old {
		if e == 0 {
			continue
		}
		i := e &^ 0xffffffff >> x.shift
		for x.slots[i] != 0 {
			i = (i + 1) & mask
		}
		x.slots[i] = e
	}
}

// appendPath encodes one path of a path-log chunk.
func appendPath(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

var errBadFileDelta = errors.New("malformed path chunk")

// decodeFileDelta calls fn with each of the n paths of a path-log chunk
// (or a file_deltas row of schema 5-6), ids first, first+1… The path
// aliases b.
func decodeFileDelta(first, n int64, b []byte, fn func(id int64, path []byte) error) error {
	for i := range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return fmt.Errorf("paths %d…: %w", first, errBadFileDelta)
		}
		if err := fn(first+i, b[k:k+int(l)]); err != nil {
			return err
		}
		b = b[k+int(l):]
	}
	if len(b) != 0 {
		return fmt.Errorf("paths %d…: %w", first, errBadFileDelta)
	}
	return nil
}

// readPaths calls fn with every committed path of the snapshot st, in id
// order. The path aliases a buffer reused for the next chunk.
func readPaths(dir string, st logState, fn func(id int64, path []byte) error) error {
	return readLogChunks(dir, pathsLog, pathsMagic, st, 0, func(n, first int64, payload []byte) error {
		return decodeFileDelta(first, n, payload, fn)
	})
}
