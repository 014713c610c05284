package store

import "hash/maphash"

// pathHashes remembers a 64-bit hash of every path the files table holds
// once the path cache has forgotten some: a path whose hash is absent is
// surely new and needs no index lookup (a B-tree search cost microseconds,
// more than the traced program took to open the next new file). 16 bytes
// per path against the cache's ~100: a trace of ten million distinct
// paths keeps it under 200 MB.
type pathHashes struct {
	seed  maphash.Seed
	slots []uint64 // open addressing; 0 = empty (a zero hash is stored as 1)
	n     int
}

func newPathHashes() *pathHashes { return &pathHashes{seed: maphash.MakeSeed()} }

func (h *pathHashes) hash(p []byte) uint64 {
	v := maphash.Bytes(h.seed, p)
	if v == 0 {
		v = 1
	}
	return v
}

func (h *pathHashes) add(p []byte) {
	if 2*(h.n+1) > len(h.slots) {
		old := h.slots
		h.slots, h.n = make([]uint64, max(1024, 2*len(old))), 0
		for _, v := range old {
			if v != 0 {
				h.insert(v)
			}
		}
	}
	h.insert(h.hash(p))
}

func (h *pathHashes) insert(v uint64) {
	mask := uint64(len(h.slots) - 1)
	for i := v & mask; ; i = (i + 1) & mask {
		switch h.slots[i] {
		case v:
			return
		case 0:
			h.slots[i] = v
			h.n++
			return
		}
	}
}

// mayHold is false when the path was surely never added.
func (h *pathHashes) mayHold(p []byte) bool {
	if len(h.slots) == 0 {
		return false
	}
	v := h.hash(p)
	mask := uint64(len(h.slots) - 1)
	for i := v & mask; ; i = (i + 1) & mask {
		switch h.slots[i] {
		case v:
			return true
		case 0:
			return false
		}
	}
}
