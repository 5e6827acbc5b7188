package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestReplicationNodeCutOff: the leader of a replicated partition is cut
// off from the other nodes (its traffic stopped, not its process). The
// controller fences it and moves leadership; acks=all producers carry on
// with the new leader. Meanwhile the cut-off node still believes it leads
// and accepts acks=1 writes from a client that can reach only it. When its
// network returns, it truncates those writes (they diverge from the new
// leader's log), catches up and rejoins the ISR: the three logs are
// identical and hold every acknowledged acks=all record exactly once.
func TestReplicationNodeCutOff(t *testing.T) {
	tc := startCluster(t, 3, "replica.lag.time.max.ms=2000")
	tc.createReplicated("cut", 1, 3, map[string]*string{"min.insync.replicas": strp("2")})
	old := int(tc.partitionState("cut", 0).Leader)

	cl := tc.client(kgo.DefaultProduceTopic("cut"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(100*time.Millisecond),
		// A produce parked on the cut-off leader (it cannot complete
		// acks=all without its followers) times out there and is retried
		// on the new leader; keep that wait short.
		kgo.ProduceRequestTimeout(3*time.Second))
	var acks ackLog
	stop := make(chan struct{})
	produced := make(chan int, 1)
	go func() {
		i := 0
		for {
			select {
			case <-stop:
				produced <- i
				return
			default:
			}
			if i-acks.count() > 100 {
				time.Sleep(time.Millisecond)
				continue
			}
			cl.Produce(context.Background(), &kgo.Record{Value: []byte("c" + strconv.Itoa(i))}, acks.promise)
			i++
		}
	}()
	waitUntil(t, 20*time.Second, "acks before the cut", func() (bool, string) { return acks.count() > 300, "" })

	if err := tc.node(old).node.cutOff(true); err != nil {
		t.Fatal(err)
	}
	// A follower's fetch already parked at the node when the cut came
	// still gets its answer (the cut refuses new fetches); wait out the
	// longest park (replica.fetch.wait.max.ms) so that what follows is
	// written to a node nobody fetches from any more.
	time.Sleep(time.Second)
	// A client that reaches only the cut-off node writes with acks=1: the
	// node still thinks it leads and takes them.
	stale, err := kgo.NewClient(kgo.SeedBrokers(tc.node(old).addr()), kgo.DefaultProduceTopic("cut"),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MetadataMinAge(time.Hour), kgo.MetadataMaxAge(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Close()
	staleAcked := 0
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := stale.ProduceSync(ctx, &kgo.Record{Value: []byte("stale-" + strconv.Itoa(i))}).FirstErr(); err == nil {
			staleAcked++
		}
		cancel()
	}

	// The others fence it and elect a new leader; acks=all carries on.
	other := old%3 + 1
	waitUntil(t, 20*time.Second, "fencing of the cut-off node", func() (bool, string) {
		img := tc.node(other).node.Image()
		b, _ := img.Broker(int32(old))
		mp, _ := img.Partition("cut", 0)
		return b.Fenced && mp.Leader >= 0 && int(mp.Leader) != old, fmt.Sprintf("fenced %v, leader %d, isr %v", b.Fenced, mp.Leader, mp.ISR)
	})
	before := acks.count()
	waitUntil(t, 40*time.Second, "acks on the new leader", func() (bool, string) {
		return acks.count() > before+300, fmt.Sprintf("%d acks", acks.count())
	})

	// The network returns: the node truncates what only it had, catches
	// up, is unfenced and rejoins the ISR.
	if err := tc.node(old).node.cutOff(false); err != nil {
		t.Fatal(err)
	}
	close(stop)
	total := <-produced
	if err := cl.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if acks.err != nil || acks.count() != total {
		t.Fatalf("%d of %d acknowledged: %v", acks.count(), total, acks.err)
	}
	tc.waitBrokers(3)
	tc.waitInSync("cut", 0, 3)
	log := tc.requireReplicasEqual("cut", 0)
	for _, v := range log {
		if strings.HasPrefix(v, "stale-") {
			t.Fatalf("record %s, written only to the cut-off node, survived its return", v)
		}
	}
	requireExactlyInOrder(t, log, acks.byPart[0])
	t.Logf("cut-off leader %d took %d acks=1 writes, all truncated on its return; %d acks=all records on all three replicas",
		old, staleAcked, len(log))
}
