package bench

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Plot files, under the plot directory; docs/bench.md embeds them.
const (
	OverheadPlot = "bench-overhead.png"
	AddedPlot    = "bench-added.png"
	PlannerPlot  = "bench-planner.png"
)

// addedModes are the modes the added-ns plot shows, for the warm tables
// only: strace's tens of µs, and the µs of a cold or one-CPU FIFO, would
// flatten the tens of ns that tell ring, LTTng and eBPF apart.
var addedModes = map[string]bool{"fifo": true, "ring": true, "ebpf": true, "lttng": true}

// The palette: one colour per table, dark enough for print.
var plotColors = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xd6, 0x27, 0x28, 0xff}, color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
	color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff},
}

// medianP99 is one series: medians as points, p99 as an error bar above.
type medianP99 struct {
	plotter.XYs
	plotter.YErrors
}

// Plot draws the run's overhead per mode and the planner's growth curve
// (whichever the run measured) as PNG files in dir and returns their paths.
func Plot(r *Run, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	if r.Overhead != nil && len(r.Overhead.Tables) > 0 {
		p, err := overheadPlot(r)
		if err != nil {
			return nil, err
		}
		f := filepath.Join(dir, OverheadPlot)
		if err := p.Save(9*vg.Inch, 5*vg.Inch, f); err != nil {
			return nil, err
		}
		files = append(files, f)
		if p, err = addedPlot(r); err != nil {
			return nil, err
		}
		f = filepath.Join(dir, AddedPlot)
		if err := p.Save(9*vg.Inch, 4.5*vg.Inch, f); err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	if r.Planner != nil && len(r.Planner.Points) > 0 {
		p, err := plannerPlot(r)
		if err != nil {
			return nil, err
		}
		f := filepath.Join(dir, PlannerPlot)
		if err := p.Save(6*vg.Inch, 4*vg.Inch, f); err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

func overheadPlot(r *Run) (*plot.Plot, error) {
	o := r.Overhead
	p := plot.New()
	p.Title.Text = fmt.Sprintf("ns per call by mode: median (point) to p99 (bar); %s, load %.2f", r.Started.Format("2006-01-02 15:04Z"), r.LoadStart[0])
	p.Y.Label.Text = "ns per call (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
	var names []string
	for _, m := range o.Modes {
		if m.Skipped != "" {
			names = append(names, m.Mode+" (skipped)")
			continue
		}
		names = append(names, m.Mode)
	}
	p.NominalX(names...)
	n := float64(len(o.Tables))
	for ti, t := range o.Tables {
		var s medianP99
		for mi, m := range t.Modes {
			if m.Skipped != "" || m.PerCall.N == 0 {
				continue
			}
			x := float64(mi) + (float64(ti)-(n-1)/2)*0.12
			s.XYs = append(s.XYs, plotter.XY{X: x, Y: m.PerCall.Median})
			s.YErrors = append(s.YErrors, struct{ Low, High float64 }{0, m.PerCall.P99 - m.PerCall.Median})
		}
		if len(s.XYs) == 0 {
			continue
		}
		c := plotColors[ti%len(plotColors)]
		sc, err := plotter.NewScatter(s.XYs)
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle.Color = c
		sc.GlyphStyle.Shape = draw.CircleGlyph{}
		sc.GlyphStyle.Radius = vg.Points(3)
		eb, err := plotter.NewYErrorBars(s)
		if err != nil {
			return nil, err
		}
		eb.LineStyle.Color = c
		eb.CapWidth = vg.Points(4)
		p.Add(sc, eb)
		p.Legend.Add(t.Table.Title, sc)
	}
	p.Add(plotter.NewGrid())
	// Head room above the highest p99 for the legend, and below the
	// lowest median so no point sits on the axis.
	p.Y.Max *= 30
	p.Y.Min /= 1.5
	return p, nil
}

// addedPlot draws, per tracer, the ns it adds to a call in each table
// (the paired median over rounds), on a linear scale where tens of ns show.
func addedPlot(r *Run) (*plot.Plot, error) {
	o := r.Overhead
	p := plot.New()
	p.Title.Text = "warm tables: ns added per call over none (median of per-round differences)"
	p.Y.Label.Text = "added ns per call"
	var names []string
	var idx []int
	for i, m := range o.Modes {
		if addedModes[m.Mode] && m.Skipped == "" {
			names = append(names, m.Mode)
			idx = append(idx, i)
		}
	}
	if len(names) == 0 {
		return p, nil
	}
	p.NominalX(names...)
	w := vg.Points(14)
	var warm []TableResult
	var colors []color.Color
	for ti, t := range o.Tables {
		if !t.Table.Cold {
			warm = append(warm, t)
			colors = append(colors, plotColors[ti%len(plotColors)])
		}
	}
	n := len(warm)
	for ti, t := range warm {
		vals := make(plotter.Values, len(idx))
		for k, i := range idx {
			if i < len(t.Modes) && t.Modes[i].PerCall.N > 0 {
				vals[k] = t.Modes[i].AddedNs
			}
		}
		b, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		b.Color = colors[ti] // the same colour per table as the other plot
		b.LineStyle.Width = 0
		b.Offset = vg.Length(float64(ti)-float64(n-1)/2) * w
		p.Add(b)
		p.Legend.Add(t.Table.Title, b)
	}
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	p.Y.Max *= 1.6 // room for the legend
	return p, nil
}

func plannerPlot(r *Run) (*plot.Plot, error) {
	pr := r.Planner
	p := plot.New()
	p.Title.Text = "planner: time per plan vs trace size"
	p.X.Label.Text = "accesses in the trace (processes : files : accesses = 1 : 10 : 100)"
	p.Y.Label.Text = "ms per plan"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	var variants []string
	byVariant := map[string]plotter.XYs{}
	for _, q := range pr.Points {
		if _, ok := byVariant[q.Variant]; !ok {
			variants = append(variants, q.Variant)
		}
		byVariant[q.Variant] = append(byVariant[q.Variant], plotter.XY{X: float64(q.Accesses), Y: q.NsPerOp / 1e6})
	}
	p.Add(plotter.NewGrid())
	for i, v := range variants {
		pts := byVariant[v]
		l, s, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, err
		}
		l.Color, s.Color = plotColors[i%len(plotColors)], plotColors[i%len(plotColors)]
		// A dashed line of slope 1 through the smallest size: linear growth.
		lin := make(plotter.XYs, len(pts))
		for k, q := range pts {
			lin[k] = plotter.XY{X: q.X, Y: pts[0].Y * q.X / pts[0].X}
		}
		ref, err := plotter.NewLine(lin)
		if err != nil {
			return nil, err
		}
		ref.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		ref.Color = plotColors[i%len(plotColors)]
		name := "measured"
		if v != "" {
			name = v
		}
		p.Add(l, s, ref)
		p.Legend.Add(name, l, s)
		p.Legend.Add(name+": linear from the smallest", ref)
	}
	// The budget: 1 M accesses in under a second.
	budget, err := plotter.NewLine(plotter.XYs{{X: 1e6, Y: 0}, {X: 1e6, Y: 1000}, {X: 1e4, Y: 1000}})
	if err == nil && p.Y.Min > 0 {
		budget.XYs[0].Y = p.Y.Min
	}
	if err == nil {
		budget.Color = color.Gray{Y: 0x60}
		budget.Width = vg.Points(0.7)
		p.Add(budget)
		p.Legend.Add("budget: 1 M accesses < 1 s", budget)
	}
	p.Legend.Top, p.Legend.Left = false, false
	return p, nil
}
