package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/maphash"
	"math/bits"
	"os"
	"unsafe"
)

// pathIndex gives each distinct path its id, in memory: the writer knows
// every path of the store (it hands out the ids, and the path log has no
// index on disk). The paths' bytes are not copied: committed ones are read
// from the path log itself, mapped read-only (page cache the kernel can
// reclaim, not heap), the batch's new ones from the chunk being built for
// it. An open-addressed table maps a path's hash to its id. A lookup is
// one hash, one probe (usually one cache miss) and, on a hit, one
// comparison. The writer's own memory is 24 bytes per path (slot and
// offset): 240 MB for ten million paths.
type pathIndex struct {
	seed maphash.Seed
	// file holds the committed bytes of paths-GEN.log (pathfile_*.go).
	file pathFile
	// pending is the chunk of the batch's new paths (header, then
	// payload), to be written at byte base of the log.
	pending []byte
	base    uint64
	// off[i] locates the path of id i+1: its bytes' offset in the log
	// in bits 16 and up, its length (0xffff: see long) in the low 16.
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
	x.file.close()
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
	at, n := o>>16, uint64(o&0xffff)
	if n == 0xffff {
		n = uint64(x.long[id])
	}
	if at >= x.base {
		return x.pending[at-x.base : at-x.base+n]
	}
	return x.file.b[at : at+n]
}

// beginBatch starts the chunk of a batch's new paths in buf (the chunk
// header's room, from appendLog.begin), to be written at byte base.
func (x *pathIndex) beginBatch(buf []byte, base int64) {
	x.pending, x.base = buf, uint64(base)
}

// committed notes that the log now holds length bytes (the batch's chunk
// was written and committed, or there was none).
func (x *pathIndex) committed(length int64) error {
	if uint64(length) > x.base {
		if err := x.file.extend(length, x.pending); err != nil {
			return err
		}
	}
	x.pending, x.base = nil, uint64(length)
	return nil
}

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

// add appends p to the batch's chunk with the next id, without indexing
// it.
func (x *pathIndex) add(p []byte) int64 {
	x.pending = binary.AppendUvarint(x.pending, uint64(len(p)))
	id := x.setOff(x.base+uint64(len(x.pending)), len(p))
	x.pending = append(x.pending, p...)
	return id
}

// setOff records where the path of the next id lies.
func (x *pathIndex) setOff(at uint64, n int) int64 {
	if len(x.off) == cap(x.off) {
		// Doubling: append grows big slices by a quarter.
		m := allocBig(8 * (2*cap(x.off) + 1024))
		x.off = append(m.u64s()[:0], x.off...)
		x.offMem.free()
		x.offMem = m
	}
	id := int64(len(x.off)) + 1
	if n >= 0xffff {
		if x.long == nil {
			x.long = map[int64]int{}
		}
		x.long[id], n = n, 0xffff
	}
	x.off = append(x.off, at<<16|uint64(n))
	return id
}

// insert indexes id, the next id, under tag: p is new.
func (x *pathIndex) insert(p []byte, tag uint64, id int64) error {
	if 2*(x.n+1) > len(x.slots) {
		x.grow()
	}
	mask := uint64(len(x.slots) - 1)
	for i := tag >> x.shift; ; i = (i + 1) & mask {
		e := x.slots[i]
		if e == 0 {
			x.slots[i] = tag | uint64(id)
			x.n++
			return nil
		}
		if e&^0xffffffff == tag && bytes.Equal(x.path(int64(e&0xffffffff)), p) {
			return fmt.Errorf("path id %d repeats path id %d: %w", id, e&0xffffffff, errBadFileDelta)
		}
	}
}

// load maps the path log f (its committed length bytes, which the
// writer has cut it back to) and indexes every path in it, checking each
// chunk's checksum.
func (x *pathIndex) load(f *os.File, length int64) error {
	if err := x.file.open(f, length); err != nil {
		return err
	}
	x.base = uint64(length)
	b := x.file.b[:length]
	for off := int64(0); off < length; {
		if length-off < chunkHeaderLen || string(b[off:off+4]) != pathsMagic {
			return chunkError(f.Name(), off, errors.New("no chunk header"))
		}
		h := b[off : off+chunkHeaderLen]
		size := int64(binary.LittleEndian.Uint32(h[24:]))
		if size > length-off-chunkHeaderLen {
			return chunkError(f.Name(), off, errors.New("chunk longer than the file's committed length"))
		}
		payload := b[off+chunkHeaderLen : off+chunkHeaderLen+size]
		if crc32.Update(crc32.Checksum(h[4:28], castagnoli), castagnoli, payload) != binary.LittleEndian.Uint32(h[28:]) {
			return chunkError(f.Name(), off, errors.New("checksum mismatch"))
		}
		n, first := int64(binary.LittleEndian.Uint32(h[4:])), int64(binary.LittleEndian.Uint64(h[8:]))
		if first < x.nextID() || first+n > 1<<32-1 {
			return chunkError(f.Name(), off, fmt.Errorf("path ids %d…%d after id %d: %w", first, first+n-1, x.nextID()-1, errBadFileDelta))
		}
		// Ids a failed writer never used stay empty: no path has them.
		for x.nextID() < first {
			x.setOff(0, 0)
		}
		start := uint64(off + chunkHeaderLen)
		if err := decodeFileDelta(first, n, payload, func(id int64, p []byte) error {
			at := start + uint64(cap(payload)-cap(p)) // p's offset in the file
			return x.insert(p, x.hash(p), x.setOff(at, len(p)))
		}); err != nil {
			return chunkError(f.Name(), off, err)
		}
		off += chunkHeaderLen + size
	}
	return nil
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
