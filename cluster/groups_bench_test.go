package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchGroupOverrides are the settings of the group benchmarks (printed
// with the figures in BENCHMARKS.md): both protocols heartbeat every
// 500 ms, so the comparison is of the protocols, not of their defaults.
var benchGroupOverrides = []string{
	"group.initial.rebalance.delay.ms=0",
	"group.min.session.timeout.ms=500",
	"group.consumer.heartbeat.interval.ms=500",
	"offsets.topic.num.partitions=5",
}

// BenchmarkGroupJoinStabilise measures how long a 10-member group takes to
// be stable again (every partition owned by exactly one of the 11
// members, sizes within one) after an 11th member joins. Each op then
// removes the joiner again outside the timer.
//
//	go test ./cluster -run '^$' -bench GroupJoinStabilise -benchtime 10x
func BenchmarkGroupJoinStabilise(b *testing.B) {
	protocols := []groupProtocol{
		{"classic-cooperative-sticky", []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.HeartbeatInterval(500 * time.Millisecond)}},
		{"classic-eager-range", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer()), kgo.HeartbeatInterval(500 * time.Millisecond)}},
		{"kip848-uniform", []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.ServerSideBalancer()}},
	}
	for _, gp := range protocols {
		b.Run(gp.name, func(b *testing.B) {
			tn := startBenchNode(b, benchGroupOverrides...)
			topic := "stabilise"
			const parts = 22
			tn.createTopic(topic, parts, nil)
			grp := "bench-" + gp.name
			var members []*member
			for i := 0; i < 10; i++ {
				members = append(members, startMember(tn.t, tn, fmt.Sprintf("m%d", i), grp, topic, gp.opts...))
			}
			waitBalanced(tn.t, parts, members...)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				j := startMember(tn.t, tn, fmt.Sprintf("j%d", i), grp, topic, gp.opts...)
				waitBalanced(tn.t, parts, append(members, j)...)
				b.StopTimer()
				j.close()
				waitBalanced(tn.t, parts, members...)
				b.StartTimer()
			}
		})
	}
}

// BenchmarkOffsetCommit measures offset commits per second: 16 clients
// each commit one partition's offset for their own group-less (simple)
// group, back to back. Every commit is durable (acks=-1 to the offsets
// topic, fsynced) before it is acknowledged; concurrent commits share
// fsyncs.
//
//	go test ./cluster -run '^$' -bench OffsetCommit -benchtime 20000x
func BenchmarkOffsetCommit(b *testing.B) {
	tn := startBenchNode(b, benchGroupOverrides...)
	tn.createTopic("commits", 1, nil)
	const clients = 16
	adms := make([]*kadm.Client, clients)
	for i := range adms {
		adms[i] = kadm.NewClient(tn.client())
		// Warm up: find the coordinator, create the offsets topic.
		var os kadm.Offsets
		os.Add(kadm.Offset{Topic: "commits", Partition: 0, At: 0, LeaderEpoch: -1})
		if _, err := adms[i].CommitOffsets(context.Background(), fmt.Sprintf("commit-%d", i), os); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	var failed atomic.Value
	b.ResetTimer()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				var os kadm.Offsets
				os.Add(kadm.Offset{Topic: "commits", Partition: 0, At: n, LeaderEpoch: -1})
				r, err := adms[c].CommitOffsets(context.Background(), fmt.Sprintf("commit-%d", c), os)
				if err == nil {
					err = r.Error()
				}
				if err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		}(c)
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}

// startBenchNode starts a node for a benchmark.
func startBenchNode(b *testing.B, overrides ...string) *testNode {
	b.Helper()
	tn := &testNode{t: b, dir: b.TempDir(), args: overrides}
	tn.start()
	b.Cleanup(func() { tn.stop() })
	return tn
}
