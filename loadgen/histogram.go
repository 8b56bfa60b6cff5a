package loadgen

import (
	"math/bits"
	"time"
)

// Histogram resolution: latencies in microseconds, exact below
// 2*subBuckets and within 1/subBuckets (under 1.6%) above, up to
// maxLatency; longer ones count in the last bucket.
const (
	subBucketBits = 6
	subBuckets    = 1 << subBucketBits
	maxLatency    = time.Hour
)

// bucketCount covers every microsecond value below maxLatency.
var bucketCount = bucketOf(uint64(maxLatency/time.Microsecond)) + 1

// histogram counts latencies in logarithmic buckets: a fixed size whatever
// the number of requests, and quantiles within 1.6%.
type histogram struct {
	counts []int64
	total  int64
	max    time.Duration
}

func newHistogram() *histogram { return &histogram{counts: make([]int64, bucketCount)} }

// bucketOf maps a value in microseconds to its bucket: values below
// 2*subBuckets have a bucket each; above, each power of two is split into
// subBuckets equal parts.
func bucketOf(us uint64) int {
	if us < 2*subBuckets {
		return int(us)
	}
	shift := bits.Len64(us) - subBucketBits - 1 // us>>shift is in [subBuckets, 2*subBuckets)
	return (shift+1)*subBuckets + int(us>>shift) - subBuckets
}

// bucketValue is the largest value in microseconds of bucket b.
func bucketValue(b int) uint64 {
	if b < 2*subBuckets {
		return uint64(b)
	}
	shift := b/subBuckets - 1
	mantissa := uint64(b%subBuckets + subBuckets)
	return (mantissa+1)<<shift - 1
}

func (h *histogram) record(d time.Duration) {
	us := uint64(max(d, 0) / time.Microsecond)
	b := min(bucketOf(us), len(h.counts)-1)
	h.counts[b]++
	h.total++
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}

// quantile returns the latency below which a fraction q of the recorded
// ones fall (the bucket's upper bound, never above the maximum seen).
func (h *histogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := int64(q*float64(h.total) + 0.5)
	rank = min(max(rank, 1), h.total)
	var seen int64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketValue(b))*time.Microsecond, h.max)
		}
	}
	return h.max
}
