package bench

import (
	"math"
	"slices"
)

// Stats summarises samples of one quantity (nanoseconds per call).
type Stats struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	P99    float64 `json:"p99"`
	Mean   float64 `json:"mean"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Summarize computes Stats over samples; it does not modify them. An empty
// slice yields the zero Stats.
func Summarize(samples []float64) Stats {
	if len(samples) == 0 {
		return Stats{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	var sum float64
	for _, v := range s {
		sum += v
	}
	return Stats{
		N:      len(s),
		Median: Quantile(s, 0.5),
		P99:    Quantile(s, 0.99),
		Mean:   sum / float64(len(s)),
		Min:    s[0],
		Max:    s[len(s)-1],
	}
}

// Quantile returns the q-quantile (0 ≤ q ≤ 1) of sorted samples by linear
// interpolation between the closest ranks (the "R-7" definition of most
// statistics packages), so the median of an even count is the mean of the
// middle two. sorted must be sorted ascending and non-empty.
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 1 {
		return sorted[0]
	}
	q = math.Min(math.Max(q, 0), 1)
	h := q * float64(len(sorted)-1)
	lo := int(math.Floor(h))
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}
