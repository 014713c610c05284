package collector

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/ring"
)

// The test binary doubles as the helper processes of the crash tests: a
// collector that can be SIGKILLed, and producers that outlive it.
func TestMain(m *testing.M) {
	switch os.Getenv("RESTRACK_TEST_HELPER") {
	case "collector":
		os.Exit(helperCollector(os.Args[len(os.Args)-2], os.Args[len(os.Args)-1]))
	case "writer":
		os.Exit(helperWriter(os.Args[len(os.Args)-3:]))
	case "loader":
		os.Exit(helperLoader(os.Args[len(os.Args)-5:]))
	}
	os.Exit(m.Run())
}

func helperCollector(ringPath, storeDir string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fmt.Println("ready") // SIGTERM now means a final drain, not death
	err := RunDaemon(ctx, DaemonConfig{Ring: ringPath, Store: storeDir, DrainInterval: 5 * time.Millisecond,
		StoreOptions: store.Options{RetainEvents: -1}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// helperWriter appends n records with unique paths /w/ID/SEQ at a steady
// pace and prints how many it produced and how many the ring refused.
func helperWriter(args []string) int {
	ringPath, id := args[0], args[1]
	n, _ := strconv.Atoi(args[2])
	w, err := ring.OpenWriter(ringPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer w.Close()
	dropped := 0
	pid := int32(os.Getpid())
	for i := range n {
		rec := ring.Record{Type: ring.TypeEvent, Op: ring.OpOpenat, Access: ring.AccessRead, PID: pid, TID: pid, StartNs: 1,
			Result: 3, Str1: []byte("/w/" + id + "/" + strconv.Itoa(i))}
		if err := w.Append(&rec); err != nil {
			dropped++
		}
		if i%200 == 199 {
			time.Sleep(200 * time.Microsecond)
		}
	}
	fmt.Printf("%d %d\n", n, dropped)
	return 0
}

func helperCmd(tb testing.TB, mode string, args ...string) *exec.Cmd {
	tb.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$"}, args...)...)
	cmd.Env = append(os.Environ(), "RESTRACK_TEST_HELPER="+mode)
	cmd.Stderr = os.Stderr
	return cmd
}

func mustRing(tb testing.TB, size uint64) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "ring")
	require.NoError(tb, ring.Create(p, ring.Config{DataSize: size}))
	return p
}

func mustStore(tb testing.TB, dir string, opts store.Options) *store.Store {
	tb.Helper()
	s, err := store.Open(dir, opts)
	require.NoError(tb, err)
	tb.Cleanup(func() { s.Close() })
	return s
}

// helperLoader appends n records over a set of files distinct paths as fast
// as it can (rate 0) or at rate records/s, and prints produced and refused.
func helperLoader(args []string) int {
	ringPath, id := args[0], args[1]
	n, _ := strconv.Atoi(args[2])
	files, _ := strconv.Atoi(args[3])
	rate, _ := strconv.Atoi(args[4])
	w, err := ring.OpenWriter(ringPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer w.Close()
	paths := make([][]byte, files)
	for i := range paths {
		paths[i] = []byte(fmt.Sprintf("/srv/load/%s/data/file%06d.dat", id, i))
	}
	pid := int32(os.Getpid())
	start := time.Now()
	refused := 0
	for i := range n {
		rec := ring.Record{Type: ring.TypeEvent, Op: ring.OpOpenat, Access: ring.AccessRead, PID: pid, TID: pid, StartNs: 1,
			Result: 3, Str1: paths[i%files]}
		if i%5 == 0 {
			rec.Access = ring.AccessWrite
		}
		if w.Append(&rec) != nil {
			refused++
		}
		if rate > 0 && i%1000 == 999 {
			if ahead := time.Duration(i+1)*time.Second/time.Duration(rate) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}
	fmt.Printf("%d %d %d\n", n, refused, time.Since(start).Nanoseconds())
	return 0
}
