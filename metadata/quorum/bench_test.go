package quorum

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkPropose measures one proposal at a time, from Propose to
// applied on the leader: the commit latency of the metadata log. "mem"
// keeps raftlog in an in-memory file system, "disk" fsyncs on the real one
// (every proposal is one synced SaveReady on the leader and on each
// follower).
func BenchmarkPropose(b *testing.B) {
	for _, bc := range []struct {
		voters int
		disk   bool
	}{{1, false}, {3, false}, {1, true}, {3, true}} {
		fs := "mem"
		if bc.disk {
			fs = "disk"
		}
		b.Run(fmt.Sprintf("%d voters/%s", bc.voters, fs), func(b *testing.B) {
			dir := ""
			if bc.disk {
				dir = b.TempDir()
			}
			c := newTestCluster(b, bc.voters, dir, 1<<40) // no snapshots: the test state machine is slow to encode
			leader := c.waitLeader(10 * time.Second)
			n := c.members[leader].node
			data := make([]byte, 200)
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if _, err := n.Propose(ctx, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkProposeParallel measures throughput with many concurrent
// proposers, which share synced writes.
func BenchmarkProposeParallel(b *testing.B) {
	c := newTestCluster(b, 3, b.TempDir(), 1<<40)
	leader := c.waitLeader(10 * time.Second)
	n := c.members[leader].node
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		data := make([]byte, 200)
		for pb.Next() {
			if _, err := n.Propose(context.Background(), data); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkFailoverDefaultTick measures, with the production timing
// (100 ms tick, ElectionTick 10), how long a new 3-voter cluster takes to
// elect its first leader and how long the others take to elect a new one
// after the leader stops. Slow (seconds per iteration): run it with
// -benchtime=Nx.
func BenchmarkFailoverDefaultTick(b *testing.B) {
	var first, failover time.Duration
	for b.Loop() {
		start := time.Now()
		c := newTestClusterTick(b, 3, "", 0, DefaultTickInterval)
		old := c.waitLeader(10 * time.Second)
		first += time.Since(start)
		stopped := time.Now()
		c.stop(old)
		c.waitLeader(10 * time.Second)
		failover += time.Since(stopped)
		c.close()
	}
	b.ReportMetric(float64(first.Milliseconds())/float64(b.N), "ms/first-election")
	b.ReportMetric(float64(failover.Milliseconds())/float64(b.N), "ms/failover")
}
