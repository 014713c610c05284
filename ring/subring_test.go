package ring

import (
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLateStampedRecordsAheadOfEarlierOnesNeverBreakAThreadsOrder(t *testing.T) {
	path := mustCreate(t, Config{DataSize: 4 * MinDataSize, SubRings: 2})
	r := mustOpen(t, path, Options{})
	w := mustWriter(t, path)
	at := func(sub uint32, tid int32, timeNs uint64) {
		rec := event("/f", int32(timeNs))
		rec.TID, rec.TimeNs = tid, timeNs
		require.NoError(t, w.appendFrom(sub, rec))
	}
	// Thread 1 was preempted between reserving and stamping: its record
	// sits first in sub-ring 0 with the latest time. Thread 2 appended into
	// sub-ring 0, moved to sub-ring 1's CPU, and came back.
	at(0, 1, 100)
	at(0, 2, 50)
	at(1, 2, 60)
	at(0, 2, 70)
	at(1, 3, 80)
	b := NewBatch(1, 0) // room for one record: every cutoff that fits delivers nothing
	r.Drain(b)
	var times []int32
	for _, rec := range b.Records {
		times = append(times, rec.Result)
	}
	assert.Equal(t, []int32{50, 60, 70, 80, 100}, times, "one batch, grown, in time order")
	r.Release(b.End)
	assert.Zero(t, r.Unread())
}

func TestOneThreadHoppingBetweenSubRingsIsReadInItsOrderWhileItWrites(t *testing.T) {
	path := mustCreate(t, Config{DataSize: 4 * MinDataSize, SubRings: 4})
	r := mustOpen(t, path, Options{})
	w := mustWriter(t, path)
	const n = 20000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			rec := event("/hop", int32(i))
			for w.appendFrom(uint32(i*7%4), rec) != nil {
				time.Sleep(time.Microsecond) // a full ring: let the reader catch up
			}
		}
	}()
	b := NewBatch(64, 0)
	next := int32(0)
	deadline := time.Now().Add(20 * time.Second)
	for next < n && time.Now().Before(deadline) {
		r.Drain(b)
		for _, rec := range b.Records {
			require.Equal(t, next, rec.Result, "record %d came out of order", rec.Result)
			next++
		}
		r.Release(b.End)
	}
	wg.Wait()
	assert.Equal(t, int32(n), next)
}

func TestASecondConsumerIsRefusedWithTheHoldersPid(t *testing.T) {
	path := mustCreate(t, Config{DataSize: MinDataSize})
	first, err := Open(path, Options{})
	require.NoError(t, err)
	_, err = Open(path, Options{})
	var busy *BusyError
	require.ErrorAs(t, err, &busy)
	assert.Equal(t, uint64(os.Getpid()), busy.PID)
	assert.Contains(t, err.Error(), "only one collector may drain a ring")
	assert.Equal(t, uint64(os.Getpid()), first.Counters().ConsumerPID)
	require.NoError(t, first.Close())
	second := mustOpen(t, path, Options{})
	assert.Equal(t, uint64(os.Getpid()), second.Counters().ConsumerPID, "the lock is free again once the holder closes")
}

func TestSeekKeepsTheCountersOfRecordsCommittedButNotReleased(t *testing.T) {
	path := mustCreate(t, Config{DataSize: MinDataSize})
	w := mustWriter(t, path)
	for i := 0; i < 9; i++ {
		require.NoError(t, w.Append(event("/f", int32(i))))
	}
	first, err := Open(path, Options{})
	require.NoError(t, err)
	b := NewBatch(3, 0)
	first.Drain(b)
	first.Release(b.End) // 3 records released
	first.Drain(b)
	first.Drain(b) // 6 more committed (the store has them), then the collector dies
	committed := b.End
	require.NoError(t, first.Close())
	assert.Equal(t, uint64(3), w.Counters().ConsumedRecords)

	second := mustOpen(t, path, Options{})
	require.NoError(t, second.Seek(committed))
	second.Release(committed)
	c := second.Counters()
	assert.Equal(t, uint64(9), c.ConsumedRecords, "the records the store committed are counted, once")
	assert.Equal(t, uint64(9*(64+2+3)), c.ConsumedBytes)
	second.Drain(b)
	assert.Empty(t, b.Records, "nothing is read twice")
}

func TestTheHeaderSaysWhoTheRingIsForAndWhoAttached(t *testing.T) {
	uid := uint32(4242)
	path := mustCreate(t, Config{DataSize: 2 * MinDataSize, SubRings: 2, OwnerUID: &uid})
	w := mustWriter(t, path)
	_ = mustWriter(t, path)
	r := mustOpen(t, path, Options{})
	assert.Equal(t, uid, r.OwnerUID())
	c := w.Counters()
	assert.Equal(t, uid, c.OwnerUID)
	assert.Equal(t, uint32(2), c.SubRings)
	assert.Equal(t, uint64(2), c.Attached)
	plain := mustCreate(t, Config{DataSize: MinDataSize})
	assert.Equal(t, uint32(os.Getuid()), mustOpen(t, plain, Options{}).OwnerUID(), "by default, the creator's uid")
}

// Behind a backlog larger than a batch, each drain delivers a batch and
// holds the rest: the held records must not be read out of the ring again
// (that made a drain's cost grow with the backlog — microseconds per record
// behind a full ring, when the collector most needs to catch up), and the
// records still come out once each, in each thread's order.
func TestABacklogIsScannedOnceHoweverManyDrainsItTakes(t *testing.T) {
	for _, nsub := range []int{1, 2, 4} {
		path := mustCreate(t, Config{DataSize: 64 * MinDataSize, SubRings: nsub})
		r := mustOpen(t, path, Options{})
		w := mustWriter(t, path)
		const n = 4000
		for i := 0; i < n; i++ {
			rec := event("/backlog", int32(i))
			rec.TID = int32(i % 3)
			require.NoError(t, w.appendFrom(uint32(i*5%nsub), rec))
		}
		b := NewBatch(n/16, 0)
		last := map[int32]int32{}
		got := 0
		for drains := 0; got < n && drains < 100; drains++ {
			r.Drain(b)
			assert.LessOrEqual(t, len(b.Records), n/16, "a drain delivers no more than the batch holds")
			for _, rec := range b.Records {
				if prev, ok := last[rec.TID]; ok {
					require.Less(t, prev, rec.Result, "thread %d out of order (nsub %d)", rec.TID, nsub)
				}
				last[rec.TID] = rec.Result
				got++
			}
			r.Release(b.End)
		}
		assert.Equal(t, n, got, "nsub %d", nsub)
		assert.Equal(t, uint64(n), r.scanned, "nsub %d: every record's header copied out once", nsub)
	}
}
