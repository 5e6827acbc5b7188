package wire

import (
	"math/bits"
	"sync"
)

// Request frames come from size-classed pools, and a Produce frame goes
// back once its reply is written: produce records alias the frame until
// the partition actor has written them, and nothing holds them after the
// acknowledgement. Other requests' frames are left to the garbage
// collector, because their handlers may keep aliasing byte fields (a
// later group coordinator keeps member metadata, say). Without the pool,
// allocating a fresh frame per produce was a quarter of the broker's CPU
// under load (see BENCHMARKS.md).
//
// Invariant: a frame is put back only by the connection writer, after the
// reply is settled, and only if the handler did not mark the request
// keepFrame (acks=0 produce, or an actor that had not answered).

const (
	minPooledFrameShift = 10 // 1 KiB
	maxPooledFrameShift = 24 // 16 MiB; larger frames are not pooled
)

var framePools [maxPooledFrameShift - minPooledFrameShift + 1]sync.Pool

// frameClass returns the pool index for a frame of n bytes, or -1.
func frameClass(n int) int {
	if n <= 0 || n > 1<<maxPooledFrameShift {
		return -1
	}
	shift := bits.Len(uint(n - 1))
	if shift < minPooledFrameShift {
		shift = minPooledFrameShift
	}
	return shift - minPooledFrameShift
}

// getFrame returns a buffer of length n.
func getFrame(n int) []byte {
	c := frameClass(n)
	if c < 0 {
		return make([]byte, n)
	}
	if p, ok := framePools[c].Get().(*[]byte); ok {
		return (*p)[:n]
	}
	return make([]byte, n, 1<<(c+minPooledFrameShift))
}

// putFrame returns a buffer from getFrame to its pool.
func putFrame(b []byte) {
	c := frameClass(cap(b))
	if c < 0 || cap(b) != 1<<(c+minPooledFrameShift) {
		return // not one of ours
	}
	b = b[:0]
	framePools[c].Put(&b)
}
