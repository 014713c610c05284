package ring

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/internal/ctest"
)

const (
	stressProcs   = 8
	stressThreads = 4
)

// stressRecords per thread: fewer under the race detector, whose consumer
// is several times slower (the producers, in C, are not).
var stressRecords = map[bool]int{false: 100000, true: 25000}[raceEnabled]

// runStress runs the C producers against a fresh ring while this goroutine
// consumes; stall pauses the consumer for a while after the first batch so
// the ring overflows. It checks every record and returns what was counted.
func runStress(t *testing.T, cfg Config, stall time.Duration) (received uint64, c Counters) {
	bin := ctest.Build(t, "ring_stress", []string{"libcshim/tests/ring_stress.c", "libcshim/ring_producer.c"})
	path := mustCreate(t, cfg)
	r := mustOpen(t, path, Options{})

	cmd := exec.Command(bin, "stress", path, fmt.Sprint(stressProcs), fmt.Sprint(stressThreads), fmt.Sprint(stressRecords))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var lines []string
	scanDone := make(chan struct{})
	go func() {
		defer close(scanDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
	}()
	exited := make(chan error, 1)
	go func() { <-scanDone; exited <- cmd.Wait() }()

	var next [stressProcs][stressThreads]int32
	prefix := []byte("/stress/p")
	b := NewBatch(4096, 1<<20)
	done, stalled := false, false
	for {
		r.Drain(b)
		for i := range b.Records {
			rec := &b.Records[i]
			p, th := rec.PID, rec.TID
			// Plain ifs: a formatted assertion per record would make the
			// consumer, not the ring, the subject of this test.
			if p < 0 || p >= stressProcs || th < 0 || th >= stressThreads {
				t.Fatalf("record from unknown producer %d/%d", p, th)
			}
			seq := rec.Result
			if seq < next[p][th] || (stall == 0 && !raceEnabled && seq != next[p][th]) {
				t.Fatalf("thread %d/%d: record %d after %d (lost, duplicated or reordered); counters %+v", p, th, seq, next[p][th]-1, r.Counters())
			}
			if len(rec.Str1) != 64 || !bytes.Equal(rec.Str1[:len(prefix)], prefix) || !checkStressPath(rec.Str1, p, th, seq) {
				t.Fatalf("payload of %d/%d/%d is %q", p, th, seq, rec.Str1)
			}
			next[p][th] = seq + 1
			received++
		}
		require.Zero(t, b.Corrupted)
		require.Zero(t, b.Abandoned)
		r.Release(b.End)
		if stall > 0 && !stalled && len(b.Records) > 0 {
			stalled = true
			time.Sleep(stall)
			continue
		}
		if len(b.Records) > 0 {
			continue
		}
		if done && r.Unread() == 0 {
			break
		}
		select {
		case err := <-exited:
			require.NoError(t, err, "producers failed")
			done = true
		default:
			r.Wait(time.Millisecond)
		}
	}
	c = r.Counters()
	var appended, dropped uint64
	for _, l := range lines {
		var p int
		var a, d uint64
		_, err := fmt.Sscanf(l, "proc %d appended %d dropped %d", &p, &a, &d)
		require.NoError(t, err, l)
		appended += a
		dropped += d
	}
	require.Len(t, lines, stressProcs, strings.Join(lines, "\n"))
	assert.Equal(t, appended, received, "every appended record received exactly once")
	assert.Equal(t, dropped, c.DroppedFullRecords, "producers' and header's drop counts agree")
	return received, c
}

func TestEightProcessesFourThreadsEachRecordArrivesOnceInOrder(t *testing.T) {
	// A full wait of 1 s: while the consumer is alive and draining, no
	// producer gives up, so nothing may be dropped — unless the race
	// detector slows the consumer (several times over) on a loaded machine
	// enough that a producer waits a whole second: then every drop is
	// counted, and the records that arrive are still each thread's, once
	// and in order.
	received, c := runStress(t, Config{DataSize: 256 << 10, FullWait: time.Second}, 0)
	assert.Equal(t, uint64(stressProcs*stressThreads*stressRecords), received+c.DroppedFullRecords)
	if raceEnabled {
		assert.LessOrEqual(t, c.Dropped()*1000, received, "at most 0.1 %% dropped even under the race detector")
	} else {
		assert.Zero(t, c.Dropped())
	}
}

func TestAStalledConsumerMakesProducersDropAndEveryRecordIsAccountedFor(t *testing.T) {
	received, c := runStress(t, Config{DataSize: 64 << 10, FullWait: 10 * time.Microsecond}, 300*time.Millisecond)
	assert.Positive(t, c.DroppedFullRecords, "the stall must overflow the ring")
	assert.Equal(t, uint64(stressProcs*stressThreads*stressRecords), received+c.DroppedFullRecords)
	assert.Equal(t, c.DroppedFullRecords*131, c.DroppedFullBytes, "bytes dropped = records × record length")
}

// checkStressPath checks "/stress/pPPP/tTTT/SEQ(20 digits)/xxx…" without
// allocating.
func checkStressPath(path []byte, p, th, seq int32) bool {
	num := func(b []byte) int64 {
		v, err := strconv.ParseInt(string(b), 10, 64) // no allocation: the compiler elides the conversion
		if err != nil {
			return -1
		}
		return v
	}
	return len(path) >= 41 && num(path[9:12]) == int64(p) && num(path[14:17]) == int64(th) && num(path[18:38]) == int64(seq)
}
