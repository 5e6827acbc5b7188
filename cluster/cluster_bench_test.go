package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
)

// BenchmarkTopicCreates measures metadata operations per second on a
// 3-node cluster: topic creations (1 partition, RF 3) sent by 8 clients to
// every node in turn, so two in three are forwarded to the active
// controller. Each is committed by the raft quorum (fsynced on a majority)
// before it is answered.
//
//	go test ./cluster -run '^$' -bench TopicCreates -benchtime 2000x
func BenchmarkTopicCreates(b *testing.B) {
	tc := startCluster(b, 3)
	const clients = 8
	adms := make([]*kadm.Client, clients)
	for i := range adms {
		adms[i] = kadm.NewClient(tc.node(i%3 + 1).client())
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
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				resp, err := adms[c].CreateTopic(context.Background(), 1, 3, nil, fmt.Sprintf("t-%d", i))
				if err == nil {
					err = resp.Err
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
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}
