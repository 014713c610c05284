package collector

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/internal/usock"
	"github.com/restrack/restrack/ring"
)

func TestCollectorDrainsEverythingBeforeItStops(t *testing.T) {
	ringPath := mustRing(t, 1<<20)
	st := mustStore(t, t.TempDir(), store.Options{})
	src, err := OpenRing(ringPath, ring.Options{})
	require.NoError(t, err)
	defer src.Close()
	w, err := ring.OpenWriter(ringPath)
	require.NoError(t, err)
	defer w.Close()

	c := New(src, st, Config{DrainInterval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	const n = 100000 // several laps of the ring
	refused := 0
	for i := range n {
		rec := ring.Record{Type: ring.TypeEvent, Op: ring.OpOpen, Access: ring.AccessWrite, PID: 5, StartNs: 9,
			Result: 3, Str1: []byte(fmt.Sprintf("/f/%d", i%100))}
		if w.Append(&rec) != nil {
			refused++
		}
	}
	cancel()
	require.NoError(t, <-done)
	t.Logf("%d refused by a full ring", refused)

	stats, err := st.Stats(context.Background())
	require.NoError(t, err)
	assert.Equal(t, uint64(n-refused), stats.Records)
	assert.Equal(t, int64(n-refused), stats.EventsRetained)
	tr, err := st.Trace(context.Background())
	require.NoError(t, err)
	assert.Len(t, tr.Accesses, 100)
	assert.Equal(t, uint64(refused), stats.Dropped, "drops are committed too")
	assert.Equal(t, uint64(n-refused), c.Status(context.Background()).Records)
	pos, ok, err := st.Resume(context.Background(), src.Info().ID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, src.Reader().Counters().Tail, pos, "the committed position is the end of the ring")
}

// The crash test: a collector SIGKILLed under a steady load of
// writers, restarted, killed again…, loses no published record and stores
// none twice: received + dropped = produced.
func TestKilledCollectorResumesWithoutLossOrDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("starts helper processes for several seconds")
	}
	ringPath := mustRing(t, 256*1024)
	storeDir := filepath.Join(t.TempDir(), "store")
	const writers, perWriter = 2, 60000

	var wg sync.WaitGroup
	produced, refused := make([]int, writers), make([]int, writers)
	for k := range writers {
		cmd := helperCmd(t, "writer", ringPath, fmt.Sprint(k), fmt.Sprint(perWriter))
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = fmt.Fscan(bufio.NewReader(out), &produced[k], &refused[k])
			_ = cmd.Wait()
		}()
	}
	start := func() *os.Process {
		cmd := helperCmd(t, "collector", ringPath, storeDir)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		// Wait until it handles SIGTERM: on a loaded machine the writers
		// can be done before a collector started last gets that far.
		line, err := bufio.NewReader(out).ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, "ready\n", line)
		return cmd.Process
	}
	for range 3 {
		p := start()
		time.Sleep(200 * time.Millisecond)
		require.NoError(t, p.Signal(syscall.SIGKILL))
		_, _ = p.Wait()
		time.Sleep(20 * time.Millisecond) // producers meet a full ring meanwhile
	}
	last := start()
	wg.Wait()
	require.NoError(t, last.Signal(syscall.SIGTERM))
	ps, err := last.Wait()
	require.NoError(t, err)
	require.True(t, ps.Success(), "SIGTERM: final drain, exit 0 (%v)", ps)

	st := mustStore(t, storeDir, store.Options{ReadOnly: true})
	seen := map[string]int{}
	require.NoError(t, st.Events(context.Background(), store.EventFilter{}, func(e *store.Event) error {
		seen[e.Path]++
		return nil
	}))
	for p, n := range seen {
		if n != 1 {
			t.Errorf("%s stored %d times", p, n)
		}
	}
	stats, err := st.Stats(context.Background())
	require.NoError(t, err)
	totalProduced, totalRefused := 0, 0
	for k := range writers {
		require.Equal(t, perWriter, produced[k], "writer %d finished", k)
		totalProduced += produced[k]
		totalRefused += refused[k]
	}
	t.Logf("produced %d, received %d, dropped %d (writers saw %d refused)", totalProduced, len(seen), stats.Dropped, totalRefused)
	assert.Equal(t, uint64(totalRefused), stats.Dropped, "the store's drop count is the producers'")
	assert.Equal(t, totalProduced, len(seen)+int(stats.Dropped), "received + dropped = produced")
	assert.Equal(t, uint64(len(seen)), stats.Records)
}

func TestDaemonRefusesBadRings(t *testing.T) {
	otherABI := func(tb testing.TB) string {
		p := mustRing(tb, ring.MinDataSize)
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		require.NoError(tb, err)
		defer f.Close()
		var b [2]byte
		binary.LittleEndian.PutUint16(b[:], ring.ABIMajor+1)
		_, err = f.WriteAt(b[:], 8) // abi_major
		require.NoError(tb, err)
		return p
	}
	tests := []struct {
		name    string
		ring    func(tb testing.TB) string
		wantErr string
	}{
		{"a ring of another ABI says to restart from one build", otherABI, "restart the traced processes"},
		{"a file that is not a ring is left alone", func(tb testing.TB) string {
			p := filepath.Join(tb.TempDir(), "notring")
			require.NoError(tb, os.WriteFile(p, make([]byte, 200*1024), 0o600))
			return p
		}, "not a restrack ring"},
		{"a ring in a missing directory cannot be created", func(tb testing.TB) string {
			return filepath.Join(tb.TempDir(), "missing", "ring")
		}, "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.ring(t)
			before, _ := os.ReadFile(p)
			err := RunDaemon(context.Background(), DaemonConfig{Ring: p, Store: t.TempDir()})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			after, _ := os.ReadFile(p)
			assert.Equal(t, len(before), len(after), "the file is not rewritten")
		})
	}
}

func TestSocketAnswersStatusToItsOwnUser(t *testing.T) {
	ringPath := mustRing(t, ring.MinDataSize)
	sock := filepath.Join(t.TempDir(), "c.sock")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *Collector, 1)
	done := make(chan error, 1)
	go func() {
		done <- RunDaemon(ctx, DaemonConfig{Ring: ringPath, Store: t.TempDir(), Socket: sock,
			Ready: func(c *Collector) { ready <- c }})
	}()
	<-ready
	var st Status
	require.NoError(t, usock.Query(context.Background(), sock, "status", nil, &st))
	assert.Equal(t, os.Getpid(), st.PID)
	assert.Equal(t, "ring", st.Source)
	err := usock.Query(context.Background(), sock, "nonsense", nil, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown command "nonsense"`)
	fi, err := os.Stat(sock)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "owner-only socket")
	cancel()
	require.NoError(t, <-done)
	_, err = os.Stat(sock)
	assert.True(t, os.IsNotExist(err), "the socket is removed on exit")
}

func TestResumeFollowsTheStoreOrSaysWhyItCannot(t *testing.T) {
	ringPath := mustRing(t, ring.MinDataSize)
	w, err := ring.OpenWriter(ringPath)
	require.NoError(t, err)
	defer w.Close()
	for range 10 {
		require.NoError(t, w.Append(&ring.Record{Type: ring.TypeEvent, Op: ring.OpOpen, Access: ring.AccessRead, PID: 1, Str1: []byte("/x")}))
	}
	// A collector drains the ring in four batches, committing (as far as
	// the ring knows) and releasing none: positions 1 to 4 are in the ring.
	tail := func() uint64 {
		src, err := OpenRing(ringPath, ring.Options{})
		require.NoError(t, err)
		defer src.Close()
		b := ring.NewBatch(3, 0)
		for range 4 {
			src.Reader().Drain(b)
		}
		return src.Reader().Counters().Tail
	}()
	require.Equal(t, uint64(4), tail)
	tests := []struct {
		name    string
		pos     uint64
		wantErr string
		cursor  uint64
	}{
		{"a position inside the ring is where reading goes on", 2, "", 2},
		{"a position before the head starts at the head (2, released by the case above)", 0, "", 2},
		{"a position past the tail belongs to another history", tail + 100, "not this ring's", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := OpenRing(ringPath, ring.Options{})
			require.NoError(t, err)
			defer src.Close()
			err = src.Resume(tt.pos)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.cursor, src.Reader().Cursor())
		})
	}
}

// A steady producer must be drained in bulk, on the collector's timer: a
// drain that took everything the ring had ready ends DrainOnce, however
// fast new records arrive meanwhile. Draining again at once made a
// collector behind `restrack run -- openloop` commit a few hundred records
// at a time, back to back — 7,000 commits for a million opens.
func TestASteadyProducerIsDrainedOnceNotAsFastAsCommitsGo(t *testing.T) {
	ringPath := mustRing(t, 1<<20)
	st := mustStore(t, filepath.Join(t.TempDir(), "store"), store.Options{})
	src, err := OpenRing(ringPath, ring.Options{})
	require.NoError(t, err)
	defer src.Close()
	c := New(src, st, Config{Logf: t.Logf})
	w, err := ring.OpenWriter(ringPath)
	require.NoError(t, err)
	defer w.Close()
	rec := ring.Record{Type: ring.TypeEvent, Op: ring.OpOpen, Access: ring.AccessRead, PID: 7, StartNs: 1, Result: 3, Str1: []byte("/steady")}
	require.NoError(t, w.Append(&rec))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // a record every 20 µs, for as long as the test drains
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = w.Append(&rec)
			time.Sleep(20 * time.Microsecond)
		}
	}()
	progressed, err := c.DrainOnce()
	close(stop)
	<-done
	require.NoError(t, err)
	assert.True(t, progressed)
	assert.Equal(t, uint64(1), c.Status(context.Background()).Drains, "one drain, one commit: the rest waits for the interval")
}

// Stopping a collector must not wait out its drain interval: `restrack
// run` stops its collector when the command ends, and waited up to a whole
// interval (100 ms) before its final drain. With an hour's interval, Run
// must still return at once — from a ring, and from the rendezvous's rings.
func TestACancelledCollectorStopsWithoutWaitingOutItsInterval(t *testing.T) {
	for _, multi := range []bool{false, true} {
		ringPath := mustRing(t, 1<<20)
		st := mustStore(t, filepath.Join(t.TempDir(), "store"), store.Options{})
		var src Source
		if multi {
			ms := NewMultiSource(func(id uint64) (uint64, bool, error) { return st.Resume(context.Background(), id) }, t.Logf)
			require.NoError(t, ms.AddRing(uint32(os.Getuid()), ringPath))
			src = ms
		} else {
			rs, err := OpenRing(ringPath, ring.Options{})
			require.NoError(t, err)
			src = rs
		}
		c := New(src, st, Config{DrainInterval: time.Hour, Logf: t.Logf})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		time.Sleep(50 * time.Millisecond) // let it reach its Wait
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("multi=%v: Run still waiting 10 s after its context was cancelled", multi)
		}
		require.NoError(t, src.Close())
	}
}

// With several rings there is no one doorbell to sleep on; a ring past its
// high-water mark must still be drained soon, not after the interval.
func TestSeveralRingsAreWatchedForTheHighWaterMark(t *testing.T) {
	st := mustStore(t, filepath.Join(t.TempDir(), "store"), store.Options{})
	ms := NewMultiSource(func(id uint64) (uint64, bool, error) { return st.Resume(context.Background(), id) }, t.Logf)
	defer ms.Close()
	quiet, busy := mustRing(t, 64*1024), mustRing(t, 64*1024)
	require.NoError(t, ms.AddRing(uint32(os.Getuid()), quiet))
	require.NoError(t, ms.AddRing(uint32(os.Getuid()), busy))
	_, err := ms.Next() // adopts both rings
	require.NoError(t, err)
	ms.Wait(time.Millisecond) // takes the wake-up the rings' arrival left
	w, err := ring.OpenWriter(busy)
	require.NoError(t, err)
	defer w.Close()
	rec := ring.Record{Type: ring.TypeEvent, Op: ring.OpOpen, PID: 3, Str1: []byte("/fill")}
	for i := 0; i < 400; i++ { // 2 slots each: 800 of 1,024 slots, past the high-water mark
		require.NoError(t, w.Append(&rec))
	}
	done := make(chan struct{})
	go func() { ms.Wait(time.Hour); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a ring past its high-water mark waited for the drain interval")
	}
}
