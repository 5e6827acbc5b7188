package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors"
	"github.com/troupe-io/troupe/batch"
	"github.com/troupe-io/troupe/metadata"
)

// The replication tests run in-process 3-node clusters (startCluster) and
// franz-go clients, and look at every replica's own log through the
// partition actors (ReadLocal, Status), not only at what clients see.

// waitUntil polls cond until it holds or d passes; what says what was
// awaited when it fails, with cond's last word.
func waitUntil(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, d, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// createReplicated creates a topic through node 1 and waits until every
// running node runs all its replicas, each with a leader.
func (tc *testCluster) createReplicated(name string, partitions int32, rf int16, configs map[string]*string) {
	tc.t.Helper()
	adm := kadm.NewClient(tc.node(1).client())
	resp, err := adm.CreateTopic(ctxT(tc.t), partitions, rf, configs, name)
	if err != nil || resp.Err != nil {
		tc.t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
	for p := int32(0); p < partitions; p++ {
		tc.waitInSync(name, p, int(rf))
	}
}

// partitionState is the image's view of a partition on a running node.
func (tc *testCluster) partitionState(topic string, p int32) metadata.Partition {
	for _, tn := range tc.nodes {
		if tn != nil {
			if mp, ok := tn.node.Image().Partition(topic, p); ok {
				return *mp
			}
		}
	}
	return metadata.Partition{Leader: -1}
}

// status asks node id's replica of topic/p for its state.
func (tc *testCluster) status(id int, topic string, p int32) (actors.ReplicaStatus, bool) {
	tn := tc.node(id)
	if tn == nil {
		return actors.ReplicaStatus{}, false
	}
	part := tn.node.host.Partition(topic, p)
	if part == nil {
		return actors.ReplicaStatus{}, false
	}
	ch := make(chan actors.ReplicaStatus, 1)
	part.Status(actors.StatusRequest{Reply: ch})
	select {
	case st := <-ch:
		return st, true
	case <-time.After(5 * time.Second):
		tc.t.Fatalf("node %d: %s/%d did not answer its status", id, topic, p)
		return actors.ReplicaStatus{}, false
	}
}

// waitInSync waits until topic/p has a leader, an ISR of isr replicas in
// the image, and every running replica holds the leader's whole log with
// the leader's high watermark (followers learn it on their next fetch).
func (tc *testCluster) waitInSync(topic string, p int32, isr int) {
	tc.t.Helper()
	waitUntil(tc.t, 30*time.Second, fmt.Sprintf("%s/%d in sync", topic, p), func() (bool, string) {
		mp := tc.partitionState(topic, p)
		if mp.Leader < 0 || len(mp.ISR) != isr {
			return false, fmt.Sprintf("image: leader %d isr %v", mp.Leader, mp.ISR)
		}
		lst, ok := tc.status(int(mp.Leader), topic, p)
		if !ok || !lst.Leader || lst.LeaderEpoch != mp.LeaderEpoch || lst.HighWatermark != lst.LogEnd {
			return false, fmt.Sprintf("leader %d: %+v", mp.Leader, lst)
		}
		for _, r := range mp.Replicas {
			if tc.node(int(r)) == nil {
				continue
			}
			st, ok := tc.status(int(r), topic, p)
			if !ok || st.LogEnd != lst.LogEnd || st.HighWatermark != lst.HighWatermark || st.LeaderEpoch != lst.LeaderEpoch {
				return false, fmt.Sprintf("replica %d: %+v, leader: %+v", r, st, lst)
			}
		}
		return true, ""
	})
}

// replicaValues reads node id's replica of topic/p from its log start to
// its log end and returns the record values in offset order, with the
// offset of each.
func (tc *testCluster) replicaValues(id int, topic string, p int32) (vals []string, offsets []int64) {
	tc.t.Helper()
	part := tc.node(id).node.host.Partition(topic, p)
	if part == nil {
		tc.t.Fatalf("node %d has no replica of %s/%d", id, topic, p)
	}
	reply := make(chan actors.FetchResult, 1)
	var buf []byte
	for off, end := int64(0), int64(1); off < end; {
		part.ReadLocal(actors.LocalReadRequest{Offset: off, MaxBytes: 1 << 20, Reply: reply})
		r := <-reply
		if r.ErrorCode != 0 {
			tc.t.Fatalf("node %d: read %s/%d at %d: code %d", id, topic, p, off, r.ErrorCode)
		}
		end = r.LogEndOffset
		if off < r.LogStartOffset {
			off = r.LogStartOffset
			r.Records.Release()
			continue
		}
		var err error
		buf, err = r.Records.AppendTo(buf[:0])
		r.Records.Release()
		if err != nil {
			tc.t.Fatal(err)
		}
		if len(buf) == 0 {
			break
		}
		it := batch.NewIter(buf)
		for h, b, ok := it.Next(); ok; h, b, ok = it.Next() {
			payload, err := batch.Payload(b, nil)
			if err != nil {
				tc.t.Fatal(err)
			}
			ri := batch.NewRecordIter(payload, h.NumRecords)
			for rec, ok := ri.Next(); ok; rec, ok = ri.Next() {
				vals = append(vals, string(rec.Value))
				offsets = append(offsets, h.BaseOffset+int64(rec.OffsetDelta))
			}
			off = h.LastOffset() + 1
		}
		if err := it.Err(); err != nil {
			tc.t.Fatalf("node %d: %s/%d: %v", id, topic, p, err)
		}
	}
	return vals, offsets
}

// requireReplicasEqual checks that every running replica of topic/p holds
// the same records at the same offsets, and returns them.
func (tc *testCluster) requireReplicasEqual(topic string, p int32) []string {
	tc.t.Helper()
	mp := tc.partitionState(topic, p)
	var want []string
	var wantOffs []int64
	first := -1
	for _, r := range mp.Replicas {
		if tc.node(int(r)) == nil {
			continue
		}
		vals, offs := tc.replicaValues(int(r), topic, p)
		if first < 0 {
			first, want, wantOffs = int(r), vals, offs
			continue
		}
		if !slices.Equal(vals, want) || !slices.Equal(offs, wantOffs) {
			tc.t.Fatalf("%s/%d: replica %d holds %d records, replica %d %d (or different ones)", topic, p, r, len(vals), first, len(want))
		}
	}
	return want
}

// requireExactlyInOrder checks that log holds every acknowledged value
// exactly once, and the acknowledged ones in the order they were
// produced (one producer, so per partition in send order).
func requireExactlyInOrder(t *testing.T, log []string, acked []string) {
	t.Helper()
	pos := make(map[string]int, len(log))
	for i, v := range log {
		if _, dup := pos[v]; dup {
			t.Fatalf("value %q is in the log twice", v)
		}
		pos[v] = i
	}
	last := -1
	for _, v := range acked {
		i, ok := pos[v]
		if !ok {
			t.Fatalf("acknowledged value %q is not in the log (%d records)", v, len(log))
		}
		if i < last {
			t.Fatalf("acknowledged value %q is out of order", v)
		}
		last = i
	}
}

// ackLog collects acknowledged values per partition, in ack order.
type ackLog struct {
	mu     sync.Mutex
	byPart map[int32][]string
	at     []time.Time
	err    error
}

func (a *ackLog) promise(r *kgo.Record, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		if a.err == nil {
			a.err = fmt.Errorf("record %q: %w", r.Value, err)
		}
		return
	}
	if a.byPart == nil {
		a.byPart = map[int32][]string{}
	}
	a.byPart[r.Partition] = append(a.byPart[r.Partition], string(r.Value))
	a.at = append(a.at, time.Now())
}

func (a *ackLog) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.at)
}

// maxGap is the longest time between two acknowledgements: how long the
// producer could not write.
func (a *ackLog) maxGap() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	var g time.Duration
	for i := 1; i < len(a.at); i++ {
		g = max(g, a.at[i].Sub(a.at[i-1]))
	}
	return g
}

// TestReplicationAcksAllOnEveryReplica: an idempotent acks=-1 producer
// writes to an RF=3 min.insync.replicas=2 topic; every acknowledged
// record is in all three replicas' logs exactly once, in order, at the
// same offsets.
func TestReplicationAcksAllOnEveryReplica(t *testing.T) {
	tc := startCluster(t, 3)
	tc.createReplicated("rep", 3, 3, map[string]*string{"min.insync.replicas": strp("2")})
	cl := tc.client(kgo.DefaultProduceTopic("rep"), kgo.RequiredAcks(kgo.AllISRAcks()))
	const n = 3000
	var acks ackLog
	start := time.Now()
	for i := 0; i < n; i++ {
		cl.Produce(context.Background(), &kgo.Record{Key: []byte(strconv.Itoa(i % 97)), Value: []byte("v" + strconv.Itoa(i))}, acks.promise)
	}
	if err := cl.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if acks.err != nil || acks.count() != n {
		t.Fatalf("%d of %d acknowledged: %v", acks.count(), n, acks.err)
	}
	t.Logf("%d records acks=-1 RF=3 in %v (%.0f records/s)", n, el, n/el.Seconds())
	for p := int32(0); p < 3; p++ {
		tc.waitInSync("rep", p, 3)
		log := tc.requireReplicasEqual("rep", p)
		requireExactlyInOrder(t, log, acks.byPart[p])
		if len(log) != len(acks.byPart[p]) {
			t.Fatalf("partition %d holds %d records, %d were acknowledged", p, len(log), len(acks.byPart[p]))
		}
	}
}

// TestReplicationFailover: the leader stops while an idempotent acks=-1
// producer writes; the producer goes on with the new leader, nothing
// acknowledged is lost and nothing is written twice; the old leader comes
// back, catches up and rejoins the ISR.
func TestReplicationFailover(t *testing.T) {
	tc := startCluster(t, 3)
	tc.createReplicated("fo", 1, 3, map[string]*string{"min.insync.replicas": strp("2")})
	leader := int(tc.partitionState("fo", 0).Leader)
	cl := tc.client(kgo.DefaultProduceTopic("fo"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(100*time.Millisecond))

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
			// Bounded in flight: the producer's buffer, and a pause when
			// it is full.
			if i-acks.count() > 200 {
				time.Sleep(time.Millisecond)
				continue
			}
			cl.Produce(context.Background(), &kgo.Record{Value: []byte("f" + strconv.Itoa(i))}, acks.promise)
			i++
		}
	}()
	waitUntil(t, 20*time.Second, "acks before the failover", func() (bool, string) { return acks.count() > 500, "" })
	before := acks.count()
	stopAt := time.Now()
	tc.stop(leader)
	stopTook := time.Since(stopAt)
	waitUntil(t, 30*time.Second, "acks after the failover", func() (bool, string) {
		return acks.count() > before+1000, fmt.Sprintf("%d acks", acks.count())
	})
	close(stop)
	total := <-produced
	if err := cl.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if acks.err != nil || acks.count() != total {
		t.Fatalf("%d of %d acknowledged: %v", acks.count(), total, acks.err)
	}
	mp := tc.partitionState("fo", 0)
	t.Logf("leader %d stopped (stop took %v); new leader %d, epoch %d; longest gap between acks %v; %d records",
		leader, stopTook.Round(time.Millisecond), mp.Leader, mp.LeaderEpoch, acks.maxGap().Round(time.Millisecond), total)
	if int(mp.Leader) == leader {
		t.Fatalf("leadership did not move off stopped node %d", leader)
	}
	tc.waitInSync("fo", 0, 2)
	log := tc.requireReplicasEqual("fo", 0)
	requireExactlyInOrder(t, log, acks.byPart[0])

	// The old leader comes back: it catches up and rejoins the ISR.
	tc.start(leader)
	tc.waitInSync("fo", 0, 3)
	log = tc.requireReplicasEqual("fo", 0)
	requireExactlyInOrder(t, log, acks.byPart[0])
	if len(log) != total {
		t.Fatalf("log holds %d records, %d were acknowledged", len(log), total)
	}
}

// TestReplicationTruncatesDivergedTail: records only the old leader has
// (acknowledged with acks=1 while its followers were not fetching) are
// cut from its log when it comes back as a follower (KIP-320 diverging
// epoch), and the three logs end up identical.
func TestReplicationTruncatesDivergedTail(t *testing.T) {
	tc := startCluster(t, 3)
	tc.createReplicated("tr", 1, 3, map[string]*string{"min.insync.replicas": strp("2")})
	leader := int(tc.partitionState("tr", 0).Leader)
	var followers []int
	for id := 1; id <= 3; id++ {
		if id != leader {
			followers = append(followers, id)
		}
	}
	all := tc.client(kgo.DefaultProduceTopic("tr"), kgo.RequiredAcks(kgo.AllISRAcks()))
	produceN(t, all, "tr", 100, "committed")
	tc.waitInSync("tr", 0, 3)

	for _, f := range followers {
		tc.node(f).node.fetcher.Pause(true)
	}
	one := tc.client(kgo.DefaultProduceTopic("tr"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	produceN(t, one, "tr", 50, "leader-only")
	lst, _ := tc.status(leader, "tr", 0)
	if lst.LogEnd != 150 || lst.HighWatermark != 100 {
		t.Fatalf("leader before the failover: %+v, want log end 150, high watermark 100", lst)
	}

	tc.stop(leader)
	for _, f := range followers {
		tc.node(f).node.fetcher.Pause(false)
	}
	produceN(t, all, "tr", 100, "after")
	tc.start(leader)
	tc.waitInSync("tr", 0, 3)
	log := tc.requireReplicasEqual("tr", 0)
	if len(log) != 200 {
		t.Fatalf("log holds %d records, want the 200 acknowledged with acks=-1", len(log))
	}
	for _, v := range log {
		if len(v) >= 11 && v[:11] == "leader-only" {
			t.Fatalf("the old leader's unreplicated record %q survived", v)
		}
	}
}

// rawProduce sends one plain batch of n records with acks=-1 straight to
// broker id and returns the partition's error code.
func rawProduce(t *testing.T, cl *kgo.Client, id int, topic string, n int) int16 {
	t.Helper()
	return rawProduceID(t, cl, id, topic, topicID(t, cl, topic), n)
}

func rawProduceID(t *testing.T, cl *kgo.Client, id int, topic string, tid [16]byte, n int) int16 {
	t.Helper()
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{Value: []byte("raw")}
	}
	b, err := batch.BuildBatch(batch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, tid // kgo sends the newest version: by id from v13
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = b
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := cl.Broker(id).Request(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	return kresp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
}

// listLatest is ListOffsets(latest) on broker id: the high watermark.
func listLatest(t *testing.T, cl *kgo.Client, id int, topic string) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 4
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := cl.Broker(id).Request(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	sp := kresp.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
	if sp.ErrorCode != 0 {
		t.Fatalf("list offsets: %v", kerr.ErrorForCode(sp.ErrorCode))
	}
	return sp.Offset
}

// TestISRShrinkAndMinInsyncReplicas: a follower that stops fetching
// leaves the ISR after replica.lag.time.max.ms; acks=-1 still works with
// two in sync (min.insync.replicas=2) and fails NOT_ENOUGH_REPLICAS with
// one; records past the high watermark stay invisible to consumers; the
// followers rejoin once they fetch again.
func TestISRShrinkAndMinInsyncReplicas(t *testing.T) {
	tc := startCluster(t, 3, "replica.lag.time.max.ms=1500")
	tc.createReplicated("isr", 1, 3, map[string]*string{"min.insync.replicas": strp("2")})
	mp := tc.partitionState("isr", 0)
	leader := int(mp.Leader)
	var followers []int
	for id := 1; id <= 3; id++ {
		if id != leader {
			followers = append(followers, id)
		}
	}
	cl := tc.client()
	if _, err := cl.Request(ctxT(t), kmsg.NewPtrMetadataRequest()); err != nil {
		t.Fatal(err)
	}
	isrIs := func(n int) func() (bool, string) {
		return func() (bool, string) {
			mp := tc.partitionState("isr", 0)
			return len(mp.ISR) == n, fmt.Sprintf("isr %v", mp.ISR)
		}
	}

	// A follower that stops fetching is out of sync once the leader has
	// records it lacks for replica.lag.time.max.ms (Kafka's rule: with
	// nothing new, a silent follower is still caught up).
	one := tc.client(kgo.DefaultProduceTopic("isr"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	tc.node(followers[0]).node.fetcher.Pause(true)
	produceN(t, one, "isr", 1, "lagging")
	shrinkStart := time.Now()
	waitUntil(t, 10*time.Second, "ISR shrinks to 2", isrIs(2))
	t.Logf("ISR shrank %v after the follower fell behind (replica.lag.time.max.ms=1500)", time.Since(shrinkStart).Round(time.Millisecond))
	if c := rawProduce(t, cl, leader, "isr", 5); c != 0 {
		t.Fatalf("acks=-1 with 2 in sync: %v", kerr.ErrorForCode(c))
	}

	// The second follower stops too. Until it leaves the ISR, what the
	// leader appends is acknowledged with acks=1 but not committed:
	// consumers must not see it.
	hw := listLatest(t, cl, leader, "isr")
	tc.node(followers[1]).node.fetcher.Pause(true)
	produceN(t, one, "isr", 3, "uncommitted")
	if mp := tc.partitionState("isr", 0); len(mp.ISR) == 2 {
		if got := listLatest(t, cl, leader, "isr"); got != hw {
			t.Fatalf("high watermark moved from %d to %d without the ISR", hw, got)
		}
		consumer := tc.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"isr": {0: kgo.NewOffset().At(hw)}}),
			kgo.FetchMaxWait(200*time.Millisecond))
		ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
		fs := consumer.PollFetches(ctx)
		cancel()
		if n := len(fs.Records()); n != 0 {
			t.Fatalf("a consumer read %d records past the high watermark", n)
		}
	} else {
		t.Logf("the ISR shrank before the high watermark could be checked: %v", mp.ISR)
	}

	waitUntil(t, 10*time.Second, "ISR shrinks to 1", isrIs(1))
	if c := rawProduce(t, cl, leader, "isr", 1); c != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=-1 with 1 in sync: %v, want NOT_ENOUGH_REPLICAS", kerr.ErrorForCode(c))
	}

	for _, f := range followers {
		tc.node(f).node.fetcher.Pause(false)
	}
	tc.waitInSync("isr", 0, 3)
	if c := rawProduce(t, cl, leader, "isr", 1); c != 0 {
		t.Fatalf("acks=-1 after the ISR grew back: %v", kerr.ErrorForCode(c))
	}
	tc.waitInSync("isr", 0, 3)
	tc.requireReplicasEqual("isr", 0)
}

// TestReplicasGoWithTheirTopic: deleting a replicated topic stops and
// deletes its replicas on every node.
func TestReplicasGoWithTheirTopic(t *testing.T) {
	tc := startCluster(t, 3)
	tc.createReplicated("gone", 2, 3, nil)
	produceN(t, tc.client(kgo.DefaultProduceTopic("gone")), "gone", 10, "x")
	adm := kadm.NewClient(tc.node(2).client())
	if _, err := adm.DeleteTopics(ctxT(t), "gone"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "replicas deleted", func() (bool, string) {
		for id := 1; id <= 3; id++ {
			n := tc.node(id).node
			if n.host.Partition("gone", 0) != nil || n.host.Partition("gone", 1) != nil {
				return false, fmt.Sprintf("node %d still runs a replica", id)
			}
			logs, err := n.store.ListLogs()
			if err != nil {
				return false, err.Error()
			}
			for _, l := range logs {
				if l.Topic == "gone" {
					return false, fmt.Sprintf("node %d still has %s", id, l)
				}
			}
		}
		return true, ""
	})
}

// BenchmarkReplicatedProduce measures acks=-1 produce throughput of an
// idempotent franz-go producer on a 3-node cluster, RF=1 against RF=3
// (min.insync.replicas=2):
//
//	go test ./cluster -run '^$' -bench ReplicatedProduce -benchtime 20000x
func BenchmarkReplicatedProduce(b *testing.B) {
	for _, rf := range []int16{1, 3} {
		b.Run(fmt.Sprintf("rf=%d", rf), func(b *testing.B) {
			tc := startCluster(b, 3)
			topic := fmt.Sprintf("bench-rf%d", rf)
			tc.createReplicated(topic, 1, rf, map[string]*string{"min.insync.replicas": strp(strconv.Itoa(int(min(rf, 2))))})
			cl := tc.client(kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
			value := make([]byte, 100)
			var failed error
			var mu sync.Mutex
			b.SetBytes(int64(len(value)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cl.Produce(context.Background(), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
					if err != nil {
						mu.Lock()
						failed = errors.Join(failed, err)
						mu.Unlock()
					}
				})
			}
			if err := cl.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if failed != nil {
				b.Fatal(failed)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
