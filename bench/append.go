package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
)

// AppendCase is one line of bench/ringbench/ring_append: ns per append of
// a 64-byte path by each producer, on a ring of Sub sub-rings (1: one
// shared tail, as ABI 1; more: per CPU, ABI 2).
type AppendCase struct {
	Case      string  `json:"case"` // "1_thread", "2_threads", "2_processes"
	Sub       int     `json:"sub_rings"`
	WallMean  float64 `json:"wall_mean_ns"`
	WallMed   float64 `json:"wall_median_ns"`
	CPUMean   float64 `json:"cpu_mean_ns"`
	CPUMedian float64 `json:"cpu_median_ns"`
	Dropped   uint64  `json:"dropped"`
}

// AppendResult is the append part: the C producer's hot path alone.
type AppendResult struct {
	Command string       `json:"command"`
	Cases   []AppendCase `json:"cases"`
	ClockNs float64      `json:"clock_alone_ns"`
}

// Find returns a case on per-CPU sub-rings (sub > 1) or on one (sub 1).
func (r *AppendResult) Find(name string, perCPU bool) *AppendCase {
	if r == nil {
		return nil
	}
	for i := range r.Cases {
		if c := &r.Cases[i]; c.Case == name && (c.Sub > 1) == perCPU {
			return c
		}
	}
	return nil
}

// RunAppend runs build/ring_append (make bench-ring's C benchmark).
func RunAppend(ctx context.Context, bin string, quick bool) (*AppendResult, error) {
	exe := filepath.Join(bin, "ring_append")
	if !fileExists(exe) {
		return nil, fmt.Errorf("%s not built: run make bench (it builds bench/ringbench/ring_append.c)", exe)
	}
	args := []string{"2000000", "7"}
	if quick {
		args = []string{"200000", "2"}
	}
	out, err := exec.CommandContext(ctx, exe, args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", exe, err, tail(out))
	}
	r, err := ParseAppend(bytes.NewReader(out))
	if err != nil {
		return nil, err
	}
	r.Command = "build/ring_append " + strings.Join(args, " ")
	return r, nil
}

// ParseAppend reads ring_append's output.
func ParseAppend(rd io.Reader) (*AppendResult, error) {
	r := &AppendResult{}
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || f[0] == "case" {
			continue
		}
		if f[0] == "clock_alone" && len(f) >= 3 {
			r.ClockNs, _ = strconv.ParseFloat(f[2], 64)
			continue
		}
		if len(f) != 7 {
			return nil, fmt.Errorf("ring_append line %q: want 7 fields", sc.Text())
		}
		c := AppendCase{Case: f[0]}
		var err error
		if c.Sub, err = strconv.Atoi(f[1]); err != nil {
			return nil, fmt.Errorf("ring_append line %q: %w", sc.Text(), err)
		}
		for i, p := range []*float64{&c.WallMean, &c.WallMed, &c.CPUMean, &c.CPUMedian} {
			if *p, err = strconv.ParseFloat(f[2+i], 64); err != nil {
				return nil, fmt.Errorf("ring_append line %q: %w", sc.Text(), err)
			}
		}
		if c.Dropped, err = strconv.ParseUint(f[6], 10, 64); err != nil {
			return nil, fmt.Errorf("ring_append line %q: %w", sc.Text(), err)
		}
		r.Cases = append(r.Cases, c)
	}
	if len(r.Cases) == 0 {
		return nil, fmt.Errorf("ring_append printed no case")
	}
	return r, sc.Err()
}

// WriteAppend prints the part.
func WriteAppend(w io.Writer, r *AppendResult) {
	fmt.Fprintf(w, "== append: ns per append of a 64-byte path, C producer alone (%s); sub-rings 1 = one shared tail, more = per CPU\n", r.Command)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\tsub-rings\twall mean\twall median\tCPU mean\tCPU median\tdropped\t")
	for _, c := range r.Cases {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t\n", c.Case, c.Sub, c.WallMean, c.WallMed, c.CPUMean, c.CPUMedian, c.Dropped)
	}
	tw.Flush()
	fmt.Fprintf(w, "clock alone: %.1f ns\n", r.ClockNs)
}
