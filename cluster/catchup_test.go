package cluster

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestReplicaCatchUp: a follower is down while TROUPE_CATCHUP_MB megabytes
// (64 by default; `make catchup` writes 1024) are written with acks=all to
// the two replicas left (min.insync.replicas=2). When it starts again it
// fetches everything it missed, rejoins the ISR, and its log is the
// leader's. The time it took is logged (BENCHMARKS.md has the 1 GB run).
func TestReplicaCatchUp(t *testing.T) {
	mb := 64
	if v, err := strconv.Atoi(os.Getenv("TROUPE_CATCHUP_MB")); err == nil && v > 0 {
		mb = v
	}
	tc := startCluster(t, 3)
	tc.createReplicated("catchup", 1, 3, map[string]*string{"min.insync.replicas": strp("2")})
	mp := tc.partitionState("catchup", 0)
	follower := int(mp.Replicas[0])
	if follower == int(mp.Leader) {
		follower = int(mp.Replicas[1])
	}
	tc.stop(follower)
	tc.waitInSync("catchup", 0, 2)

	const recordSize = 16 << 10
	n := mb << 20 / recordSize
	cl := tc.client(kgo.DefaultProduceTopic("catchup"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedBytes(64<<20))
	value := make([]byte, recordSize)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	started := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	wrote := time.Since(started)

	restarted := time.Now()
	tc.start(follower)
	tc.waitInSync("catchup", 0, 3)
	took := time.Since(restarted)
	st, _ := tc.status(follower, "catchup", 0)
	if st.LogEnd != int64(n) {
		t.Fatalf("follower %d log end %d, want %d", follower, st.LogEnd, n)
	}
	t.Logf("wrote %d MiB (%d records of %d KiB) with one follower down in %v; it caught up and rejoined the ISR in %v (%.0f MiB/s)",
		mb, n, recordSize>>10, wrote.Round(time.Millisecond), took.Round(time.Millisecond), float64(mb)/took.Seconds())
}
