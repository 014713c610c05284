package bench

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name    string
		samples []float64
		want    Stats
	}{
		{"an empty sample set summarises to zeros", nil, Stats{}},
		{"one sample is its own median, p99, min and max", []float64{7}, Stats{N: 1, Median: 7, P99: 7, Mean: 7, Min: 7, Max: 7}},
		{"the median of an even count is the mean of the middle two", []float64{4, 1, 3, 2}, Stats{N: 4, Median: 2.5, P99: 3.97, Mean: 2.5, Min: 1, Max: 4}},
		{"the median of an odd count is the middle sample whatever the order", []float64{9, 1, 5}, Stats{N: 3, Median: 5, P99: 8.92, Mean: 5, Min: 1, Max: 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Summarize(tt.samples)
			assert.Equal(t, tt.want.N, got.N)
			assert.InDelta(t, tt.want.Median, got.Median, 1e-9)
			assert.InDelta(t, tt.want.P99, got.P99, 1e-9)
			assert.InDelta(t, tt.want.Mean, got.Mean, 1e-9)
			assert.Equal(t, tt.want.Min, got.Min)
			assert.Equal(t, tt.want.Max, got.Max)
		})
	}
}

func TestSummarizeLeavesTheSamplesUnsorted(t *testing.T) {
	s := []float64{3, 1, 2}
	Summarize(s)
	assert.Equal(t, []float64{3, 1, 2}, s)
}

func TestP99IgnoresTheTopPercentOfOutliers(t *testing.T) {
	// 1000 calls at 2 µs with 9 stalls of 1 ms: the p99 stays at 2 µs
	// while the max shows the stall, which is what the tables rely on.
	s := make([]float64, 1000)
	for i := range s {
		s[i] = 2000
	}
	for i := range 9 {
		s[i*100] = 1e6
	}
	st := Summarize(s)
	assert.Equal(t, 2000.0, st.Median)
	assert.Equal(t, 2000.0, st.P99)
	assert.Equal(t, 1e6, st.Max)

	// Eleven stalls are more than 1 %: now the p99 is a stall.
	s[5], s[15] = 1e6, 1e6
	assert.Equal(t, 1e6, Summarize(s).P99)
}

func TestQuantileInterpolatesBetweenRanks(t *testing.T) {
	sorted := []float64{10, 20, 30, 40, 50}
	assert.Equal(t, 10.0, Quantile(sorted, 0))
	assert.Equal(t, 50.0, Quantile(sorted, 1))
	assert.Equal(t, 30.0, Quantile(sorted, 0.5))
	assert.InDelta(t, 45.0, Quantile(sorted, 0.875), 1e-9)
	require.Equal(t, 50.0, Quantile(sorted, 2), "q above 1 clamps to the maximum")
}

func TestDecodeSamplesReadsLittleEndianUint32(t *testing.T) {
	got, err := DecodeSamples([]byte{0x10, 0x27, 0, 0, 0xff, 0xff, 0xff, 0xff})
	require.NoError(t, err)
	assert.Equal(t, []float64{10000, 4294967295}, got)

	_, err = DecodeSamples([]byte{1, 2, 3})
	require.ErrorContains(t, err, "not a whole number of uint32")
}
