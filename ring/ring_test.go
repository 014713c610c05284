package ring

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/restrack/restrack/internal/ctest"
)

func event(path string, result int32) *Record {
	return &Record{Type: TypeEvent, Access: AccessRead, Op: OpOpenat, PID: 10, TID: 11, PPID: 1, Result: result, Str1: []byte(path)}
}

func TestRecordsRoundTripFieldForField(t *testing.T) {
	path := mustCreate(t, Config{DataSize: MinDataSize})
	r := mustOpen(t, path, Options{})
	w := mustWriter(t, path)
	in := &Record{Type: TypeProc, Access: AccessNone, Op: OpProcExec, RFlags: RFArgvTruncated, TimeNs: 5, StartNs: 6,
		PID: -7, TID: 8, PPID: 9, Result: -13, Flags: 0o101, Mode: 0o644,
		Str1: []byte("/usr/bin/x"), Str2: []byte("/home/u\nnewline\xff"), Str3: []byte("x\x00-v\x00")}
	require.NoError(t, w.Append(in))
	b := NewBatch(8, 0)
	r.Drain(b)
	require.Len(t, b.Records, 1)
	got := b.Records[0]
	in.Pos, in.Sub = 0, got.Sub
	assert.Equal(t, *in, got)
	assert.Equal(t, []string{"x", "-v", ""}, got.Argv())
	assert.Equal(t, uint64(1), b.End, "the first drain makes cut 1")
	assert.Equal(t, uint64(2*SlotSize), r.Counters().UsedBytes, "64+10+16+6+3 = 99 bytes take two slots")
}

func TestStringsWrapAroundTheEndOfTheDataArea(t *testing.T) {
	path := mustCreate(t, Config{DataSize: MinDataSize})
	r := mustOpen(t, path, Options{})
	w := mustWriter(t, path)
	b := NewBatch(1024, 0)
	long := strings.Repeat("p", PathMax)
	// Enough laps that records start at every slot alignment near the end.
	for i := 0; i < 200; i++ {
		p := "/" + long[:(i*97)%PathMax]
		require.NoError(t, w.Append(event(p, int32(i))))
		r.Drain(b)
		require.Len(t, b.Records, 1, "record %d", i)
		require.Equal(t, p, string(b.Records[0].Str1), "record %d", i)
		require.Equal(t, int32(i), b.Records[0].Result)
		r.Release(b.End)
	}
	assert.Greater(t, r.subs[0].cursor, uint64(2*MinDataSize/SlotSize), "the test must lap the ring")
}

func TestDrainStopsWhenTheBatchIsFullAndResumesThere(t *testing.T) {
	path := mustCreate(t, Config{DataSize: MinDataSize})
	r := mustOpen(t, path, Options{})
	w := mustWriter(t, path)
	for i := 0; i < 10; i++ {
		require.NoError(t, w.Append(event("/f", int32(i))))
	}
	b := NewBatch(4, 0)
	var got []int32
	for n := 0; n < 3; n++ {
		r.Drain(b)
		for _, rec := range b.Records {
			got = append(got, rec.Result)
		}
	}
	assert.Equal(t, []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, got)
	assert.Equal(t, uint64(0), r.Counters().Head, "nothing released yet")
}

func TestANewReaderResumesAtHeadAndRereadsWhatWasNotReleased(t *testing.T) {
	path := mustCreate(t, Config{DataSize: MinDataSize})
	w := mustWriter(t, path)
	for i := 0; i < 6; i++ {
		require.NoError(t, w.Append(event("/f", int32(i))))
	}
	r1, err := Open(path, Options{})
	require.NoError(t, err)
	b := NewBatch(3, 0)
	r1.Drain(b)
	r1.Release(b.End) // 0..2 released
	r1.Drain(b)       // 3..5 read but not released: the reader "crashes"
	require.NoError(t, r1.Close())

	r2 := mustOpen(t, path, Options{})
	require.NoError(t, r2.Seek(r2.Cursor())) // no-op seek is legal
	b2 := NewBatch(10, 0)
	r2.Drain(b2)
	var got []int32
	for _, rec := range b2.Records {
		got = append(got, rec.Result)
	}
	assert.Equal(t, []int32{3, 4, 5}, got)
	assert.Error(t, r2.Seek(0), "seeking backwards past the cursor is refused")
}

func TestHeaderCountersCountRecordsOnceAcrossAConsumerKilledBeforeReleasing(t *testing.T) {
	path := mustCreate(t, Config{DataSize: MinDataSize})
	w := mustWriter(t, path)
	for i := 0; i < 5; i++ {
		require.NoError(t, w.Append(event("/f", int32(i))))
	}
	first, err := Open(path, Options{})
	require.NoError(t, err)
	b := NewBatch(2, 0)
	first.Drain(b)
	first.Release(b.End) // two records committed and released
	first.Drain(b)       // two more drained, then the consumer dies
	assert.Equal(t, uint64(2), first.Counters().ConsumedRecords)
	require.NoError(t, first.Close())
	assert.Equal(t, Counters{}, first.Counters(), "a closed reader has no ring to report on")

	second := mustOpen(t, path, Options{})
	all := NewBatch(16, 0)
	second.Drain(all)
	require.Len(t, all.Records, 3, "the successor re-reads the two unreleased records and the fifth")
	second.Release(all.End)
	assert.Equal(t, uint64(5), second.Counters().ConsumedRecords, "each record counted once")
}

func TestAFullRingWithNoConsumerDropsAtOnceAndCountsRecordsAndBytes(t *testing.T) {
	path := mustCreate(t, Config{DataSize: MinDataSize, FullWait: time.Second})
	w := mustWriter(t, path)
	appended, dropped := 0, 0
	start := time.Now()
	for i := 0; i < 1000; i++ {
		err := w.Append(event("/some/path/of/some/length", int32(i)))
		if errors.Is(err, ErrDropped) {
			dropped++
		} else {
			require.NoError(t, err)
			appended++
		}
	}
	assert.Less(t, time.Since(start), 500*time.Millisecond, "no consumer: no waiting (the full wait is 1 s)")
	c := w.Counters()
	assert.Equal(t, uint64(dropped), c.DroppedFullRecords)
	assert.Equal(t, uint64(dropped), c.FullWaits, "no consumer: every full wait ends in a drop, and each is counted once")
	assert.Equal(t, uint64(dropped*(64+25+3)), c.DroppedFullBytes)
	assert.Equal(t, MinDataSize/SlotSize/2, appended, "92-byte records take 2 slots")
	big := &Record{Type: TypeEvent, Str1: make([]byte, 40000)}
	assert.ErrorIs(t, w.Append(big), ErrDropped)
	assert.Equal(t, uint64(1), w.Counters().DroppedTooBigRecords)
}

func TestAProducerParkedAfterReservingIsSkippedAfterTheTimeoutAndCounted(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	path := mustCreate(t, Config{DataSize: MinDataSize})
	r := mustOpen(t, path, Options{AbandonTimeout: time.Second, now: clock.now})
	w := mustWriter(t, path)
	require.NoError(t, w.Append(event("/before", 1)))
	b := NewBatch(16, 0)
	r.Drain(b)
	require.Len(t, b.Records, 1)
	assert.Equal(t, "/before", string(b.Records[0].Str1))

	parked := make(chan uint64)
	release := make(chan struct{})
	testAfterReserve = func(pos, slots uint64) { parked <- pos; <-release }
	parkedDone := make(chan struct{})
	go func() {
		defer close(parkedDone)
		_ = w.Append(event("/parked/path/longer/than/one/slot/........................", 2))
	}()
	pos := <-parked
	testAfterReserve = nil
	require.NoError(t, w.Append(event("/after", 3)))

	r.Drain(b)
	assert.Empty(t, b.Records, "records behind an unpublished one wait")
	assert.Equal(t, pos, r.subs[0].cursor)

	clock.advance(999 * time.Millisecond)
	r.Drain(b)
	assert.Empty(t, b.Records, "not abandoned before the timeout")

	clock.advance(time.Millisecond)
	r.Drain(b)
	require.Len(t, b.Records, 1)
	assert.Equal(t, "/after", string(b.Records[0].Str1))
	assert.Equal(t, uint64(1), b.Abandoned, "two skipped slots are one abandoned record")
	assert.Equal(t, uint64(2*SlotSize), b.AbandonedBytes)
	assert.Zero(t, r.Counters().AbandonedRecords, "header counters wait for the release")
	r.Release(b.End)
	assert.Equal(t, uint64(1), r.Counters().AbandonedRecords)
	close(release)
	<-parkedDone
	r.Drain(b)
	assert.Empty(t, b.Records, "a late publish of an abandoned record is never read")
}

func TestAProducerKilledBetweenReservingAndPublishingDoesNotStallTheConsumer(t *testing.T) {
	bin := ctest.Build(t, "ring_stress_hooks", []string{"libcshim/tests/ring_stress.c", "libcshim/ring_producer.c"}, "-DRT_TEST_HOOKS")
	path := mustCreate(t, Config{DataSize: MinDataSize})
	r := mustOpen(t, path, Options{AbandonTimeout: 50 * time.Millisecond})

	cmd := exec.Command(bin, "park", path, "5")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(out)
	require.True(t, sc.Scan())
	require.Equal(t, "appended 5", sc.Text())
	require.True(t, sc.Scan())
	require.True(t, strings.HasPrefix(sc.Text(), "parked "), sc.Text())
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()

	w := mustWriter(t, path)
	require.NoError(t, w.Append(event("/after/the/kill", 77)))

	b := NewBatch(64, 0)
	var got []string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r.Drain(b)
		for _, rec := range b.Records {
			got = append(got, string(rec.Str1[:min(len(rec.Str1), 15)]))
		}
		r.Release(b.End)
		if len(got) == 6 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	require.Len(t, got, 6, "five records before the kill and one after it")
	assert.Equal(t, "/after/the/kill", got[5])
	assert.Equal(t, uint64(1), r.Counters().AbandonedRecords)
}

// corruptAt overwrites the record header at slot pos, keeping its stamp.
func corruptAt(t *testing.T, path string, pos uint64, mutate func(h *RecordHeader)) {
	m, err := mapRing(path)
	require.NoError(t, err)
	defer m.close()
	mutate(m.recordAt(0, pos))
}

func TestCorruptedRecordsAreSkippedCountedAndDoNotHideTheirNeighbours(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(h *RecordHeader)
	}{
		{"a length shorter than a header", func(h *RecordHeader) { h.Len = 10 }},
		{"a length beyond the maximum record", func(h *RecordHeader) { h.Len = MaxRecordSize + 64 }},
		{"string lengths that do not add up", func(h *RecordHeader) { h.Len1++ }},
		{"an unknown record type", func(h *RecordHeader) { h.Type = 9 }},
		{"an unknown access class", func(h *RecordHeader) { h.Access = AccessLookup + 1 }},
		{"a path with a NUL inside", func(h *RecordHeader) {
			h.Len1, h.Len2 = h.Len1-2, h.Len2+2 // moves the terminator into path 2
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := mustCreate(t, Config{DataSize: MinDataSize})
			r := mustOpen(t, path, Options{AbandonTimeout: time.Nanosecond})
			w := mustWriter(t, path)
			require.NoError(t, w.Append(event("/one", 1)))
			rec := event("/two/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 2)
			rec.Str2 = []byte("/b")
			require.NoError(t, w.Append(rec))
			require.NoError(t, w.Append(event("/three", 3)))
			corruptAt(t, path, 2, tc.mutate) // "/one" takes slots 0 and 1

			b := NewBatch(16, 0)
			var got []int32
			for i := 0; i < 5; i++ { // skipped slots may need a second drain
				r.Drain(b)
				for _, rec := range b.Records {
					got = append(got, rec.Result)
				}
				r.Release(b.End)
				time.Sleep(time.Millisecond)
			}
			assert.Equal(t, []int32{1, 3}, got)
			c := r.Counters()
			assert.Equal(t, uint64(1), c.CorruptedRecords)
			assert.Equal(t, c.Tail, r.Cursor(), "the consumer is not stalled")
		})
	}
}

func TestAStrayTailIsSetBackByTheConsumerAndTheRingGoesOn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stray uint64
	}{
		{"a tail behind the records already read", 3},
		{"a tail more than a ring ahead of the head", 1 << 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := mustCreate(t, Config{DataSize: MinDataSize, SubRings: 1, FullWait: time.Millisecond})
			r := mustOpen(t, path, Options{AbandonTimeout: time.Nanosecond})
			w := mustWriter(t, path)
			b := NewBatch(1024, 0)
			for i := 0; i < 10; i++ {
				require.NoError(t, w.Append(event("/before", int32(i))))
			}
			r.Drain(b)
			require.Len(t, b.Records, 10)
			r.Release(b.End)

			atomic.StoreUint64(&w.m.subs[0].Tail, tc.stray)
			r.Drain(b)
			assert.True(t, b.BadTail)
			assert.Equal(t, uint64(1), r.Counters().RepairedTails)

			appended := 0
			for i := 0; i < 100; i++ {
				if w.Append(event("/after", int32(i))) == nil {
					appended++
				}
			}
			assert.Equal(t, 100, appended, "after the repair no append is refused")
			r.Drain(b)
			assert.Len(t, b.Records, 100)
			assert.Zero(t, b.Corrupted)
		})
	}
}

func TestAStrayHeadIsSetBackByTheConsumer(t *testing.T) {
	path := mustCreate(t, Config{DataSize: MinDataSize, SubRings: 1})
	r := mustOpen(t, path, Options{})
	w := mustWriter(t, path)
	require.NoError(t, w.Append(event("/a", 1)))
	atomic.StoreUint64(&w.m.subs[0].Head, 1<<40)
	b := NewBatch(16, 0)
	r.Drain(b)
	require.Len(t, b.Records, 1)
	assert.Equal(t, uint64(1), r.Counters().RepairedHeads)
	assert.Zero(t, atomic.LoadUint64(&w.m.subs[0].Head))
	require.NoError(t, w.Append(event("/b", 2)), "producers see a consistent head again")
}

func TestHeaderMismatchesGiveTypedErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(h *Header)
		check  func(t *testing.T, err error)
	}{
		{"bad magic", func(h *Header) { h.Magic = 0x1234 }, func(t *testing.T, err error) { assert.ErrorIs(t, err, ErrBadMagic) }},
		{"another ABI major", func(h *Header) { h.ABIMajor = ABIMajor + 1 }, func(t *testing.T, err error) {
			var e *ABIError
			require.ErrorAs(t, err, &e)
			assert.Equal(t, uint16(ABIMajor+1), e.Major)
			assert.Contains(t, err.Error(), "restart the traced processes")
		}},
		{"a header size from elsewhere", func(h *Header) { h.HeaderSize = 8192 }, func(t *testing.T, err error) {
			var e *SizeError
			require.ErrorAs(t, err, &e)
			assert.Equal(t, "header size", e.What)
		}},
		{"a data size larger than the file", func(h *Header) { h.DataSize = 1 << 20 }, func(t *testing.T, err error) {
			var e *SizeError
			require.ErrorAs(t, err, &e)
			assert.Equal(t, "data size", e.What)
		}},
		{"a data size not a power of two", func(h *Header) { h.DataSize = MinDataSize + 64 }, func(t *testing.T, err error) {
			var e *SizeError
			require.ErrorAs(t, err, &e)
		}},
		{"a sub-ring count not a power of two", func(h *Header) { h.NSub = 3 }, func(t *testing.T, err error) {
			var e *SizeError
			require.ErrorAs(t, err, &e)
			assert.Equal(t, "sub-ring count", e.What)
		}},
		{"a data offset the layout does not give", func(h *Header) { h.DataOffset += PageSize }, func(t *testing.T, err error) {
			var e *SizeError
			require.ErrorAs(t, err, &e)
			assert.Equal(t, "layout offsets", e.What)
		}},
		{"a cut table of another length", func(h *Header) { h.NCuts = 2 }, func(t *testing.T, err error) {
			var e *SizeError
			require.ErrorAs(t, err, &e)
			assert.Equal(t, "cut count", e.What)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := mustCreate(t, Config{DataSize: MinDataSize})
			m, err := mapRing(path)
			require.NoError(t, err)
			tc.mutate(m.hdr)
			require.NoError(t, m.close())
			_, err = Open(path, Options{})
			tc.check(t, err)
			_, err = OpenWriter(path)
			tc.check(t, err)
		})
	}
	t.Run("a file too small to be a ring", func(t *testing.T) {
		path := t.TempDir() + "/small"
		require.NoError(t, os.WriteFile(path, make([]byte, 100), 0o600))
		_, err := Open(path, Options{})
		var e *SizeError
		require.ErrorAs(t, err, &e)
	})
	t.Run("a missing file", func(t *testing.T) {
		_, err := Open(t.TempDir()+"/none", Options{})
		assert.ErrorIs(t, err, os.ErrNotExist)
	})
}

func TestCreateRefusesBadSizesAndExistingFilesAndIsOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	assert.Error(t, Create(dir+"/a", Config{DataSize: 1000}))
	assert.Error(t, Create(dir+"/a", Config{DataSize: MinDataSize / 2}))
	require.NoError(t, Create(dir+"/a", Config{DataSize: MinDataSize}))
	assert.ErrorIs(t, Create(dir+"/a", Config{DataSize: MinDataSize}), os.ErrExist)
	st, err := os.Stat(dir + "/a")
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1, "no temporary file left behind")
}

func TestTheDoorbellWakesASleepingConsumerAtTheHighWaterMark(t *testing.T) {
	path := mustCreate(t, Config{DataSize: MinDataSize})
	r := mustOpen(t, path, Options{})
	w := mustWriter(t, path)
	woke := make(chan time.Duration)
	go func() {
		start := time.Now()
		r.Wait(10 * time.Second)
		woke <- time.Since(start)
	}()
	time.Sleep(20 * time.Millisecond)
	rec := event(strings.Repeat("x", 100), 0) // 3 slots
	for i := 0; i < MinDataSize/SlotSize/2/3+1; i++ {
		require.NoError(t, w.Append(rec))
	}
	select {
	case d := <-woke:
		assert.Less(t, d, 5*time.Second)
	case <-time.After(5 * time.Second):
		t.Fatal("consumer not woken by crossing the high-water mark")
	}
}

func TestHeaderSizeIsOnePage(t *testing.T) {
	assert.Equal(t, uintptr(HeaderSize), unsafe.Sizeof(Header{}))
	assert.Equal(t, fmt.Sprint(recordHeaderSize), fmt.Sprint(unsafe.Sizeof(RecordHeader{})))
}

func TestGoTimestampsUseTheSameClockAsTheCProducer(t *testing.T) {
	var ts unix.Timespec
	require.NoError(t, unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts))
	diff := int64(monotonicNs()) - ts.Nano()
	assert.Less(t, diff, int64(time.Second), "runtime.nanotime must be CLOCK_MONOTONIC: heartbeats are compared across processes")
	assert.Greater(t, diff, int64(0), "read later, so not earlier")
}

func TestProducersOfACreatedRingWaitForALateConsumerBeforeDropping(t *testing.T) {
	w := mustWriter(t, mustCreate(t, Config{DataSize: MinDataSize}))
	assert.Equal(t, CreateFullWait, w.fullWait, "a consumer that lost its CPU for a moment must cost time, not records")
	assert.GreaterOrEqual(t, CreateFullWait, 50*time.Millisecond)
	w2 := mustWriter(t, mustCreate(t, Config{DataSize: MinDataSize, FullWait: 10 * time.Microsecond}))
	assert.Equal(t, 10*time.Microsecond, w2.fullWait, "an explicit wait is kept")
}
