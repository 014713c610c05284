package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// The paper's figures (paper.md, "Evaluation"): a cold open, untraced and
// monitored through the FIFO, gettimeofday, mean of 5.
const (
	PaperNoneNs = 25_600
	PaperFIFONs = 72_400
)

// WriteOverhead prints the overhead tables as aligned text.
func WriteOverhead(w io.Writer, r *OverheadResult) {
	fmt.Fprintf(w, "Overhead: %d rounds, modes interleaved (rotating order); file %s\n", r.Rounds, r.File)
	for _, m := range r.Modes {
		if m.Skipped != "" {
			fmt.Fprintf(w, "  %-14s SKIPPED: %s\n", m.Mode, firstLine(m.Skipped))
			continue
		}
		fmt.Fprintf(w, "  %-14s %s\n", m.Mode, m.How)
	}
	for _, t := range r.Tables {
		fmt.Fprintf(w, "\n== %s (ns per %s; %d worker(s) × %d calls per rep, strace modes %d)\n", t.Table.Title, t.Table.Unit, t.Table.Workers, t.Table.Calls, t.Table.SlowCalls)
		if t.Table.Cold {
			fmt.Fprintf(w, "   cold: %s\n", r.ColdHow)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "mode\tmedian\tp99\tratio\tadded ns\tmean\tmean ratio\tadded mean\treps\trep medians (min–max)\t")
		for _, m := range t.Modes {
			if m.Skipped != "" {
				fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t-\tnot run\t\n", m.Mode)
				continue
			}
			fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.3f\t%+.0f\t%.0f\t%.3f\t%+.0f\t%d\t%.0f–%.0f\t\n", m.Mode, m.PerCall.Median, m.PerCall.P99, m.Ratio, m.AddedNs,
				m.PerCall.Mean, m.MeanRatio, m.AddedMeanNs, len(m.Reps), m.RepMedians.Min, m.RepMedians.Max)
		}
		if t.Table.Paper {
			fmt.Fprintf(tw, "paper: unmodified\t\t\t\t\t%d\t1.000\t\t5\t(cold)\t\n", PaperNoneNs)
			fmt.Fprintf(tw, "paper: FIFO\t\t\t\t\t%d\t%.3f\t%+d\t5\t(cold)\t\n", PaperFIFONs, float64(PaperFIFONs)/PaperNoneNs, PaperFIFONs-PaperNoneNs)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nTracers' own counts (calls include warm-ups; the shim also records the workload's process and its sample files):\n")
	for _, m := range r.Modes {
		if m.Skipped != "" {
			continue
		}
		fmt.Fprintf(w, "  %-14s calls %d, recorded %s, lost %s\n", m.Mode, m.Calls, count(m.Counts.Recorded), count(m.Counts.Lost))
	}
	for _, v := range r.Void {
		fmt.Fprintf(w, "  VOID: %s — this mode did not trace, its figures are meaningless\n", v)
	}
	if r.CollectorRSSKiB > 0 {
		fmt.Fprintf(w, "  ring collector peak RSS: %.1f MiB\n", float64(r.CollectorRSSKiB)/1024)
	}
}

func count(v int64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprint(v)
}

// MarkdownOverhead renders one table as the Markdown docs/bench.md embeds.
func MarkdownOverhead(t TableResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| mode | median ns | p99 ns | ratio to none | added ns | mean ns | mean ratio | added mean ns | rep medians (min–max) |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, m := range t.Modes {
		if m.Skipped != "" {
			fmt.Fprintf(&b, "| %s | not run (see the modes) | | | | | | | |\n", m.Mode)
			continue
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.3f | %+.0f | %.0f | %.3f | %+.0f | %.0f–%.0f |\n", m.Mode, m.PerCall.Median, m.PerCall.P99, m.Ratio, m.AddedNs,
			m.PerCall.Mean, m.MeanRatio, m.AddedMeanNs, m.RepMedians.Min, m.RepMedians.Max)
	}
	if t.Table.Paper {
		fmt.Fprintf(&b, "| *paper: unmodified (cold, mean of 5)* | | | | | *%d* | *1.000* | | |\n", PaperNoneNs)
		fmt.Fprintf(&b, "| *paper: FIFO (cold, mean of 5)* | | | | | *%d* | *%.3f* | *%+d* | |\n", PaperFIFONs, float64(PaperFIFONs)/PaperNoneNs, PaperFIFONs-PaperNoneNs)
	}
	return b.String()
}
