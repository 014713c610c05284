package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Table is one experiment: the workload run with the same arguments under
// every mode.
type Table struct {
	Key     string   `json:"key"`     // "warm-open"
	Title   string   `json:"title"`   // "warm open+close, 1 process"
	Unit    string   `json:"unit"`    // what one sample times
	Args    []string `json:"args"`    // workload arguments besides -p -o -n -w
	Workers int      `json:"workers"` // threads or processes sampling
	Calls   int      `json:"calls"`   // timed calls per worker per repetition
	// SlowCalls replaces Calls for the strace modes, which are 10-100×
	// slower: the same count would make them most of the run's time.
	SlowCalls int  `json:"slow_calls"`
	Warmup    int  `json:"warmup"` // untimed calls first (shim init, caches)
	Cold      bool `json:"cold"`
	Paper     bool `json:"paper"` // print the paper's figures beside it
}

// tableFilter is a mode that runs only some tables.
type tableFilter interface{ RunsTable(Table) bool }

// slowModes are the modes that take Table.SlowCalls.
var slowModes = map[string]bool{"strace": true, "strace-seccomp": true}

// Tables returns the suite's tables; calls scales the warm tables' timed
// calls per repetition, coldCalls the cold one's.
func Tables(calls, coldCalls int) []Table {
	slow := max(calls/10, 100)
	return []Table{
		{Key: "warm-open", Title: "warm: open+close, 1 thread", Unit: "open+close", Workers: 1, Calls: calls, SlowCalls: slow, Warmup: 1000, Paper: true},
		{Key: "cold-open", Title: "cold: open, dentry+inode caches dropped before each", Unit: "open", Args: []string{"-c", "2"}, Workers: 1, Calls: coldCalls, SlowCalls: coldCalls, Warmup: 5, Cold: true, Paper: true},
		{Key: "warm-fopen", Title: "warm: fopen+fclose, 1 thread", Unit: "fopen+fclose", Args: []string{"-f"}, Workers: 1, Calls: calls, SlowCalls: slow, Warmup: 1000},
		{Key: "warm-open-2threads", Title: "warm: open+close, 2 threads of one process", Unit: "open+close per thread", Args: []string{"-t", "2"}, Workers: 2, Calls: calls / 2, SlowCalls: slow / 2, Warmup: 500},
		{Key: "warm-open-2procs", Title: "warm: open+close, 2 processes", Unit: "open+close per process", Args: []string{"-P", "2"}, Workers: 2, Calls: calls / 2, SlowCalls: slow / 2, Warmup: 500},
	}
}

// Rep is one repetition of one mode in one table.
type Rep struct {
	Round  int     `json:"round"`
	Seq    int     `json:"seq"` // position in the run's order
	Median float64 `json:"median_ns"`
	P99    float64 `json:"p99_ns"`
	Mean   float64 `json:"mean_ns"`
}

// ModeResult is one mode's figures in one table.
type ModeResult struct {
	Mode    string `json:"mode"`
	Skipped string `json:"skipped,omitempty"`
	Calls   int    `json:"calls_per_worker_per_rep"`
	PerCall Stats  `json:"per_call_ns"` // every sample of every repetition
	// Ratio and AddedNs compare the mode with none round by round — this
	// round's median against none's median in the same round — and take
	// the median over rounds, so slow drift between rounds (a neighbour's
	// build) cancels out instead of landing on one mode.
	Ratio   float64 `json:"ratio_to_none"`
	AddedNs float64 `json:"added_ns"`
	// PooledRatio is PerCall.Median over none's: the simpler estimate,
	// kept to show the two agree when the machine is quiet.
	PooledRatio float64 `json:"pooled_ratio_to_none"`
	// MeanRatio and AddedMeanNs compare means the same way, round by
	// round. The mean is what a program pays in total, rare slow calls
	// included (the paper averaged); the median is the typical call.
	MeanRatio   float64 `json:"mean_ratio_to_none"`
	AddedMeanNs float64 `json:"added_mean_ns"`
	// RepMedians summarises the repetitions' medians: their spread shows
	// how stable the figure is.
	RepMedians Stats `json:"rep_medians_ns"`
	Reps       []Rep `json:"reps"`
	samples    []float64
}

// TableResult is a table's figures, modes in AllModes order.
type TableResult struct {
	Table Table        `json:"table"`
	Modes []ModeResult `json:"modes"`
}

// ModeInfo is how a mode ran in this run, or why it did not.
type ModeInfo struct {
	Mode    string `json:"mode"`
	How     string `json:"how,omitempty"`
	Skipped string `json:"skipped,omitempty"`
	Counts  Counts `json:"counts"`
	// Calls is how many calls the workload made under the mode, warm-ups
	// included, to compare with what the tracer recorded.
	Calls int64 `json:"calls"`
}

// OverheadResult is the overhead part of a run.
type OverheadResult struct {
	Rounds  int           `json:"rounds"`
	File    string        `json:"file"`
	ColdHow string        `json:"cold_how"`
	Modes   []ModeInfo    `json:"modes"`
	Tables  []TableResult `json:"tables"`
	// Void lists modes whose tracer saw fewer events than the workload
	// made calls, with nothing counted as lost: they did not trace, so
	// their figures measure nothing.
	Void []string `json:"void,omitempty"`
	// CollectorRSSKiB is the ring mode's collector daemon's peak RSS.
	CollectorRSSKiB int64   `json:"collector_peak_rss_kib"`
	Seconds         float64 `json:"seconds"`
}

// ColdHow says exactly how the cold tables drop caches; printed with them.
const ColdHow = "before each timed open the workload (as root) writes \"2\" to /proc/sys/vm/drop_caches (frees reclaimable dentries and inodes; data pages stay); the write is outside the timed region, which is the open alone"

// OverheadConfig configures RunOverhead.
type OverheadConfig struct {
	Env    *Env
	Modes  []Mode
	Tables []Table
	Rounds int
	Logf   func(format string, args ...any)
}

// RunOverhead sets up every mode, runs Rounds rounds in Schedule order —
// within a round, each mode runs one repetition of every table — and
// summarises. A mode that cannot run is reported as skipped with its
// reason; a mode that fails mid-run aborts the run.
func RunOverhead(ctx context.Context, cfg OverheadConfig) (*OverheadResult, error) {
	start := time.Now()
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	file, err := benchFile(cfg.Env.Dir)
	if err != nil {
		return nil, err
	}
	res := &OverheadResult{Rounds: cfg.Rounds, File: file, ColdHow: ColdHow}

	var active []Mode
	var activeIdx []int
	for i, m := range cfg.Modes {
		how, err := m.Setup(ctx, cfg.Env)
		info := ModeInfo{Mode: m.Name(), How: how}
		var skip *SkipError
		switch {
		case errors.As(err, &skip):
			info.Skipped = skip.Reason
			logf("mode %-14s SKIPPED: %s", m.Name(), skip.Reason)
		case err != nil:
			closeAll(active)
			return nil, fmt.Errorf("set up mode %s: %w", m.Name(), err)
		default:
			logf("mode %-14s %s", m.Name(), how)
			active = append(active, m)
			activeIdx = append(activeIdx, i)
		}
		res.Modes = append(res.Modes, info)
	}
	defer closeAll(active)
	if os.Geteuid() != 0 {
		logf("not root: the cold table needs root to drop caches and is left out")
	}

	results := make([][]ModeResult, len(cfg.Tables))
	for t := range cfg.Tables {
		results[t] = make([]ModeResult, len(cfg.Modes))
		for i, m := range cfg.Modes {
			results[t][i] = ModeResult{Mode: m.Name(), Skipped: res.Modes[i].Skipped}
		}
	}
	seq := 0
	for _, slot := range Schedule(len(active), cfg.Rounds) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, mi := active[slot.Mode], activeIdx[slot.Mode]
		if err := m.Begin(); err != nil {
			return nil, fmt.Errorf("mode %s round %d: %w", m.Name(), slot.Rep, err)
		}
		for t, tab := range cfg.Tables {
			if tab.Cold && os.Geteuid() != 0 {
				continue
			}
			if f, ok := m.(tableFilter); ok && !f.RunsTable(tab) {
				results[t][mi].Skipped = "not run in this table: " + m.Name() + " runs single-worker tables only"
				continue
			}
			calls := tab.Calls
			if slowModes[m.Name()] {
				calls = tab.SlowCalls
			}
			samples, err := runRep(ctx, cfg.Env, m, tab, file, calls, seq)
			if err != nil {
				_ = m.End()
				return nil, fmt.Errorf("table %s, mode %s, round %d: %w", tab.Key, m.Name(), slot.Rep, err)
			}
			r := &results[t][mi]
			r.Calls = calls
			r.samples = append(r.samples, samples...)
			s := Summarize(samples)
			r.Reps = append(r.Reps, Rep{Round: slot.Rep, Seq: seq, Median: s.Median, P99: s.P99, Mean: s.Mean})
			res.Modes[mi].Calls += int64((calls + tab.Warmup) * tab.Workers)
			seq++
		}
		if err := m.End(); err != nil {
			return nil, fmt.Errorf("mode %s round %d: %w", m.Name(), slot.Rep, err)
		}
		logf("round %d/%d: %s done", slot.Rep+1, cfg.Rounds, m.Name())
	}
	for i, m := range cfg.Modes {
		if res.Modes[i].Skipped == "" {
			res.Modes[i].Counts = m.Counts()
		}
	}
	closeAll(active)
	active = nil
	for i, m := range cfg.Modes {
		if fm, ok := m.(*fifoCPUMode); ok && res.Modes[i].Skipped == "" {
			res.Modes[i].Counts = fm.Counts()
		}
		if rm, ok := m.(*ringMode); ok && res.Modes[i].Skipped == "" {
			res.CollectorRSSKiB = rm.RSSKiB
			res.Modes[i].Counts = rm.Counts()
		}
		if fm, ok := m.(*fifoMode); ok && res.Modes[i].Skipped == "" {
			res.Modes[i].Counts = fm.Counts()
		}
	}
	for _, m := range res.Modes {
		if m.Skipped == "" && m.Counts.Recorded >= 0 && m.Counts.Lost >= 0 && m.Counts.Recorded+m.Counts.Lost < m.Calls {
			res.Void = append(res.Void, fmt.Sprintf("%s: %d calls, %d recorded, %d lost", m.Mode, m.Calls, m.Counts.Recorded, m.Counts.Lost))
		}
	}
	for t, tab := range cfg.Tables {
		if tab.Cold && os.Geteuid() != 0 {
			continue
		}
		res.Tables = append(res.Tables, TableResult{Table: tab, Modes: finish(results[t])})
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// finish computes each mode's statistics and its ratio and added ns
// against the none mode of the same table (see ModeResult.Ratio).
func finish(ms []ModeResult) []ModeResult {
	var base float64
	noneByRound, noneMeanByRound := map[int]float64{}, map[int]float64{}
	for i := range ms {
		m := &ms[i]
		if len(m.samples) == 0 {
			continue
		}
		m.PerCall = Summarize(m.samples)
		meds := make([]float64, len(m.Reps))
		for k, r := range m.Reps {
			meds[k] = r.Median
		}
		m.RepMedians = Summarize(meds)
		m.samples = nil
		if m.Mode == "none" {
			base = m.PerCall.Median
			for _, r := range m.Reps {
				noneByRound[r.Round] = r.Median
				noneMeanByRound[r.Round] = r.Mean
			}
		}
	}
	if base <= 0 {
		return ms
	}
	for i := range ms {
		m := &ms[i]
		if m.PerCall.N == 0 {
			continue
		}
		m.PooledRatio = m.PerCall.Median / base
		var ratios, added, mratios, madded []float64
		for _, r := range m.Reps {
			if n, ok := noneByRound[r.Round]; ok && n > 0 {
				ratios = append(ratios, r.Median/n)
				added = append(added, r.Median-n)
			}
			if n, ok := noneMeanByRound[r.Round]; ok && n > 0 {
				mratios = append(mratios, r.Mean/n)
				madded = append(madded, r.Mean-n)
			}
		}
		if len(mratios) > 0 {
			m.MeanRatio, m.AddedMeanNs = Summarize(mratios).Median, Summarize(madded).Median
		}
		if len(ratios) == 0 {
			m.Ratio, m.AddedNs = m.PooledRatio, m.PerCall.Median-base
			continue
		}
		m.Ratio, m.AddedNs = Summarize(ratios).Median, Summarize(added).Median
	}
	return ms
}

func closeAll(ms []Mode) {
	for _, m := range ms {
		_ = m.Close()
	}
}

// benchFile makes the file the workload opens, on the scratch directory's
// file system, which must not be tmpfs: tmpfs pins its dentries, so a cold
// open would stay warm.
func benchFile(dir string) (string, error) {
	p := filepath.Join(dir, "data", "file-A")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(p, []byte("restrack benchmark file\n"), 0o644); err != nil {
		return "", err
	}
	return p, nil
}

// runRep runs one repetition and returns its samples in ns.
func runRep(ctx context.Context, env *Env, m Mode, tab Table, file string, calls, seq int) ([]float64, error) {
	out := filepath.Join(env.Dir, fmt.Sprintf("samples-%d", seq))
	args := append([]string{"-p", file, "-o", out, "-n", strconv.Itoa(calls), "-w", strconv.Itoa(tab.Warmup)}, tab.Args...)
	argv, extra := m.Command(args, seq)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), extra...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	var samples []float64
	for w := range tab.Workers {
		name := fmt.Sprintf("%s.%d", out, w)
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read samples: %w", err)
		}
		os.Remove(name)
		s, err := DecodeSamples(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if len(s) != calls {
			return nil, fmt.Errorf("%s: %d samples, want %d", name, len(s), calls)
		}
		samples = append(samples, s...)
	}
	return samples, nil
}

// DecodeSamples reads the workload's sample file: little-endian uint32 ns.
func DecodeSamples(b []byte) ([]float64, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("sample file of %d bytes is not a whole number of uint32", len(b))
	}
	out := make([]float64, len(b)/4)
	for i := range out {
		out[i] = float64(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}
