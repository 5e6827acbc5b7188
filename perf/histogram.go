package perf

import (
	"math"
	"math/bits"
	"time"
)

// The histogram stores microseconds in log-linear buckets, like an HDR
// histogram with two significant decimal digits: every value below
// 2*subBuckets is its own bucket, and every power of two above that is split
// into subBuckets equal-width buckets. A bucket's width is therefore at most
// 1/subBuckets of its lower bound, so any quantile we report is within 0.8% of
// the true sample, while the whole table stays a fixed 58 KiB no matter how
// many records or how long a latency we see.
const (
	subBucketBits = 7
	subBuckets    = 1 << subBucketBits // 128
	exactBuckets  = 2 * subBuckets     // values [0, 256) are stored exactly
	// A uint64 has 64 bits; values of bit length 9..64 need shifts 1..56.
	maxShift   = 64 - (subBucketBits + 1)
	numBuckets = exactBuckets + maxShift*subBuckets
)

// latencyHistogram accumulates latencies without allocating. It is not safe
// for concurrent use; the producer records into it only from kgo's promise
// goroutine, which runs promises serially.
type latencyHistogram struct {
	counts [numBuckets]uint64
	n      uint64
	sumUs  uint64
	maxUs  uint64
}

// bucketIndex maps a value in microseconds to its bucket.
func bucketIndex(us uint64) int {
	if us < exactBuckets {
		return int(us)
	}
	// shift >= 1 because us has at least 9 significant bits; top keeps the
	// 8 most significant bits, so it lies in [subBuckets, 2*subBuckets).
	shift := bits.Len64(us) - (subBucketBits + 1)
	top := us >> uint(shift)
	return exactBuckets + (shift-1)*subBuckets + int(top-subBuckets)
}

// bucketMidpoint returns the value we report for samples in bucket i: the
// middle of the range it covers, which halves the worst-case error compared
// with reporting either bound.
func bucketMidpoint(i int) uint64 {
	if i < exactBuckets {
		return uint64(i)
	}
	i -= exactBuckets
	shift := uint(i/subBuckets + 1)
	top := uint64(i%subBuckets + subBuckets)
	lower := top << shift
	return lower + (uint64(1)<<shift)/2
}

// record adds one latency; negative durations (a clock step) count as zero.
func (h *latencyHistogram) record(d time.Duration) {
	us := uint64(0)
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	h.counts[bucketIndex(us)]++
	h.n++
	h.sumUs += us
	if us > h.maxUs {
		h.maxUs = us
	}
}

// quantileUs returns the latency in microseconds below which a fraction q
// of the samples fall, or 0 when nothing was recorded.
func (h *latencyHistogram) quantileUs(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	// rank is 1-based: the q-quantile of n samples is the ceil(q*n)-th
	// smallest, and at least the first.
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	if rank > h.n {
		rank = h.n
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i]
		if seen >= rank {
			// The midpoint of the top bucket may exceed the largest
			// sample we actually saw; never report more than that.
			return min(bucketMidpoint(i), h.maxUs)
		}
	}
	return h.maxUs
}

func (h *latencyHistogram) meanUs() float64 {
	if h.n == 0 {
		return 0
	}
	return float64(h.sumUs) / float64(h.n)
}

func usToMs(us float64) float64 { return us / 1000 }
