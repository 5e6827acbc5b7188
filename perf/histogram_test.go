package perf

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketRoundTrip(t *testing.T) {
	// Every value maps to a bucket whose reported midpoint is within the
	// advertised relative error, and buckets are ordered like values.
	prev := -1
	for _, us := range []uint64{0, 1, 127, 255, 256, 257, 511, 512, 1000, 4095, 4096, 123456, 1 << 40, 1<<63 + 12345, ^uint64(0)} {
		i := bucketIndex(us)
		if i < prev || i >= numBuckets {
			t.Fatalf("bucketIndex(%d) = %d after %d (of %d)", us, i, prev, numBuckets)
		}
		prev = i
		mid := bucketMidpoint(i)
		diff := float64(mid) - float64(us)
		if diff < 0 {
			diff = -diff
		}
		if us < exactBuckets && mid != us {
			t.Fatalf("small value %d reported as %d", us, mid)
		}
		if diff > float64(us)/subBuckets {
			t.Fatalf("value %d reported as %d: error %.0f exceeds 1/%d", us, mid, diff, subBuckets)
		}
	}
}

func TestQuantiles(t *testing.T) {
	tests := []struct {
		name    string
		samples func() []time.Duration
	}{
		{"constant", func() []time.Duration { return slices.Repeat([]time.Duration{3 * time.Millisecond}, 1000) }},
		{"uniform 0-100ms", func() []time.Duration {
			rng := rand.New(rand.NewPCG(3, 4))
			s := make([]time.Duration, 100000)
			for i := range s {
				s[i] = time.Duration(rng.Int64N(int64(100 * time.Millisecond)))
			}
			return s
		}},
		{"long tail", func() []time.Duration {
			s := slices.Repeat([]time.Duration{time.Millisecond}, 9990)
			return append(s, slices.Repeat([]time.Duration{2 * time.Second}, 10)...)
		}},
		{"single", func() []time.Duration { return []time.Duration{42 * time.Microsecond} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			samples := tt.samples()
			var h latencyHistogram
			for _, d := range samples {
				h.record(d)
			}
			sorted := slices.Clone(samples)
			slices.Sort(sorted)
			for _, q := range []float64{0.5, 0.99, 0.999, 1} {
				rank := int(float64(len(sorted))*q+0.999999) - 1
				want := float64(sorted[max(rank, 0)] / time.Microsecond)
				got := float64(h.quantileUs(q))
				if d := got - want; d > want/subBuckets+1 || -d > want/subBuckets+1 {
					t.Errorf("q%.3f = %.0fus, exact %.0fus", q, got, want)
				}
			}
			if got, want := h.maxUs, uint64(sorted[len(sorted)-1]/time.Microsecond); got != want {
				t.Errorf("max = %d, want %d", got, want)
			}
		})
	}
}

func TestEmptyHistogram(t *testing.T) {
	var h latencyHistogram
	if h.quantileUs(0.5) != 0 || h.meanUs() != 0 || h.maxUs != 0 {
		t.Fatal("an empty histogram reports latency")
	}
	h.record(-time.Second) // a clock step counts as zero
	if h.quantileUs(1) != 0 || h.n != 1 {
		t.Fatal("negative latency not recorded as zero")
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	h := new(latencyHistogram)
	if allocs := testing.AllocsPerRun(1000, func() { h.record(1234 * time.Microsecond) }); allocs != 0 {
		t.Fatalf("record allocates %.1f times", allocs)
	}
}
