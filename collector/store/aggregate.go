package store

import (
	"cmp"
	"encoding/binary"
	"errors"

	"github.com/restrack/restrack/ring"
)

// Aggregates. A commit appends its batch's aggregates as one chunk of the
// accesses log (tracelog.go): per aggregate, uvarints proc_id, file_id, op,
// write (0/1), count, failures, first_ns, last_ns. Appending costs tens of
// nanoseconds per aggregate; upserting into the accesses B-tree cost
// microseconds (SQLite compiled to Go), more than a traced program takes to
// make the next new (process, file) pair. Readers (Trace) sum the entries
// of each key; compaction (compact.go) keeps the log proportional to the
// distinct aggregates.

type aggKey struct {
	proc, file int64
	op         ring.Op
	write      bool
}

type aggVal struct {
	count, failures, first, last uint64
}

type aggEntry struct {
	key  aggKey
	val  aggVal
	next int32 // 1 + index of the next entry of the same new file; 0: none
}

// aggregates counts a batch's accesses. A path first seen in this batch
// (id ≥ newFirst) makes only new aggregates: its entries hang off newHead,
// indexed by id, with no hashing and no lookup anywhere else. Other keys
// go through a map of the batch's size.
type aggregates struct {
	entries  []aggEntry
	old      map[aggKey]int32 // index into entries
	newFirst int64
	newHead  []int32 // path id newFirst+i → 1 + index of its first entry
	// last memoises the previous record's entry (1 + index): a program
	// that reads a file in a loop hits the same one in a row.
	last int32
	// fresh counts the batch's entries of new paths or new processes
	// (ids from newProc on): keys the log surely does not hold yet
	// (compaction's estimate, compact.go). A build's processes are new and
	// their pairs too, though their files (headers, libraries) are not.
	fresh   int64
	newProc int64
}

// begin empties the batch; paths from firstNew on and processes from
// firstProc on are new in it.
func (a *aggregates) begin(firstNew, firstProc int64) {
	if a.old == nil {
		a.old = make(map[aggKey]int32)
	}
	clear(a.old)
	a.entries, a.newHead, a.last, a.fresh, a.newFirst, a.newProc = a.entries[:0], a.newHead[:0], 0, 0, firstNew, firstProc
}

func (a *aggregates) count(k aggKey, r *ring.Record) {
	var v *aggVal
	if a.last > 0 && a.entries[a.last-1].key == k {
		v = &a.entries[a.last-1].val
	} else if k.file >= a.newFirst {
		j := int(k.file - a.newFirst)
		for len(a.newHead) <= j {
			a.newHead = append(a.newHead, 0)
		}
		for e := a.newHead[j]; e != 0; e = a.entries[e-1].next {
			if a.entries[e-1].key == k {
				v, a.last = &a.entries[e-1].val, e
				break
			}
		}
		if v == nil {
			a.entries = append(a.entries, aggEntry{key: k, val: aggVal{first: r.TimeNs, last: r.TimeNs}, next: a.newHead[j]})
			a.last = int32(len(a.entries))
			a.newHead[j] = a.last
			a.fresh++
			v = &a.entries[a.last-1].val
		}
	} else {
		i, ok := a.old[k]
		if !ok {
			i = int32(len(a.entries))
			a.entries = append(a.entries, aggEntry{key: k, val: aggVal{first: r.TimeNs, last: r.TimeNs}})
			a.old[k] = i
			if k.proc >= a.newProc {
				a.fresh++
			}
		}
		a.last = i + 1
		v = &a.entries[i].val
	}
	// A connect in progress (non-blocking, EINPROGRESS) is a connection
	// made as far as the plan is concerned: its outcome comes later.
	if r.Result < 0 && r.RFlags&ring.RFInProgress == 0 {
		v.failures++
	} else {
		v.count++
	}
	v.first = min(v.first, r.TimeNs)
	v.last = max(v.last, r.TimeNs)
}

// encode appends the batch's aggregates to a chunk's payload.
func (a *aggregates) encode(b []byte) []byte {
	for i := range a.entries {
		b = appendDeltaBytes(b, a.entries[i].key, a.entries[i].val)
	}
	return b
}

func appendDeltaBytes(b []byte, k aggKey, v aggVal) []byte {
	wr := uint64(0)
	if k.write {
		wr = 1
	}
	for _, x := range [...]uint64{uint64(k.proc), uint64(k.file), uint64(k.op), wr, v.count, v.failures, v.first, v.last} {
		b = binary.AppendUvarint(b, x)
	}
	return b
}

func mergeAgg(m map[aggKey]aggVal, k aggKey, v aggVal) {
	if old, ok := m[k]; ok {
		v = sumAgg(old, v)
	}
	m[k] = v
}

func sumAgg(a, b aggVal) aggVal {
	return aggVal{count: a.count + b.count, failures: a.failures + b.failures, first: min(a.first, b.first), last: max(a.last, b.last)}
}

var errBadDelta = errors.New("malformed aggregate delta")

func decodeDelta(b []byte, fn func(aggKey, aggVal)) error {
	var f [8]uint64
	for len(b) > 0 {
		for i := range f {
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return errBadDelta
			}
			f[i], b = v, b[n:]
		}
		if f[3] > 1 || f[2] > 0xffff {
			return errBadDelta
		}
		fn(aggKey{proc: int64(f[0]), file: int64(f[1]), op: opOf(f[2]), write: f[3] == 1},
			aggVal{count: f[4], failures: f[5], first: f[6], last: f[7]})
	}
	return nil
}

func compareAggKeys(x, y aggKey) int {
	switch {
	case x.proc != y.proc:
		return cmp.Compare(x.proc, y.proc)
	case x.file != y.file:
		return cmp.Compare(x.file, y.file)
	case x.op != y.op:
		return cmp.Compare(x.op, y.op)
	case x.write != y.write:
		if x.write {
			return 1
		}
		return -1
	}
	return 0
}

func opOf(v uint64) ring.Op { return ring.Op(v) }
