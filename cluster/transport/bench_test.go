package transport

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// counter is a Handler that counts messages and echoes requests.
type counter struct {
	n      atomic.Int64
	target atomic.Int64
	done   chan struct{}
}

func (c *counter) HandleMessage(int32, Kind, []byte) {
	if c.n.Add(1) == c.target.Load() {
		c.done <- struct{}{}
	}
}

func (c *counter) HandleRequest(_ context.Context, _ int32, _ Kind, p []byte) ([]byte, error) {
	return p, nil
}

func benchPair(b *testing.B) (*TCP, *counter) {
	c := &counter{done: make(chan struct{}, 1)}
	recv := newTCPNode(b, 2, c, func(o *Options) { o.Logger = discardLogger })
	send := newTCPNode(b, 1, c, func(o *Options) { o.Logger = discardLogger })
	send.SetPeer(2, recv.Addr().String())
	if _, err := send.Request(context.Background(), 2, KindController, nil); err != nil {
		b.Fatal(err)
	}
	return send, c
}

// BenchmarkTCPSend200B measures one-way 200-byte messages over loopback,
// from the first Send to the receiver's handler seeing the last one.
func BenchmarkTCPSend200B(b *testing.B) {
	send, c := benchPair(b)
	payload := make([]byte, 200)
	c.target.Store(int64(b.N))
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		// A full queue drops; a benchmark wants every message.
		for !send.Send(2, KindRaft, payload) {
			time.Sleep(20 * time.Microsecond)
		}
	}
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		b.Fatalf("received %d of %d", c.n.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkTCPRequest measures one request's round trip over loopback.
func BenchmarkTCPRequest(b *testing.B) {
	send, _ := benchPair(b)
	payload := make([]byte, 200)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := send.Request(ctx, 2, KindController, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTCPRequestParallel measures request throughput with many
// callers sharing one connection.
func BenchmarkTCPRequestParallel(b *testing.B) {
	send, _ := benchPair(b)
	payload := make([]byte, 200)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := send.Request(ctx, 2, KindController, payload); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
