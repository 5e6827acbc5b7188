package actors

import (
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/actors/partition"
	"github.com/troupe-io/troupe/batch"
	"github.com/troupe-io/troupe/partlog"
)

// These tests wire replicated partition actors of two hosts (two
// "brokers", each with its own store) together by hand: the test plays
// the replica fetcher and the controller, so every step of the actors'
// replication duties is observable.

var testID = partlog.LogID{Topic: "r", Partition: 0}

// replicaNode is one broker's host.
type replicaNode struct {
	t      *testing.T
	id     int32
	dir    string
	store  *partlog.Store
	host   *Host
	alters chan alterCall
}

type alterCall struct {
	change partition.AlterISR
	answer func(partition.AlterISRResult)
}

func newReplicaNode(t *testing.T, id int32, dir string) *replicaNode {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := partlog.Open(partlog.Options{Dir: dir, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	n := &replicaNode{t: t, id: id, dir: dir, store: store, host: NewHost(store, logger, nil), alters: make(chan alterCall, 16)}
	n.host.EnableReplication(id, func(_ partlog.LogID, change partition.AlterISR, answer func(partition.AlterISRResult)) {
		n.alters <- alterCall{change, answer}
	})
	t.Cleanup(n.close)
	return n
}

func (n *replicaNode) close() {
	if n.host == nil {
		return
	}
	if err := n.host.Close(); err != nil {
		n.t.Errorf("close host: %v", err)
	}
	if err := n.store.Close(); err != nil {
		n.t.Errorf("close store: %v", err)
	}
	n.host = nil
}

func (n *replicaNode) start(role ReplicaRole) *Partition {
	n.t.Helper()
	cfg := PartitionConfig{Log: partlog.DefaultLogConfig(), Core: partition.Settings{AckAfterSync: true}}
	if err := n.host.StartReplica(testID, cfg, role); err != nil {
		n.t.Fatal(err)
	}
	return n.host.Partition(testID.Topic, testID.Partition)
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("no answer: %s", what)
		var zero T
		return zero
	}
}

// produce sends one batch of n records and returns its reply channel.
func produce(t *testing.T, p *Partition, acks int16, n int) <-chan ProduceResult {
	t.Helper()
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{Value: []byte("v")}
	}
	b, err := batch.BuildBatch(batch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := batch.Validate(b, batch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reply := make(chan ProduceResult, 1)
	p.Produce(ProduceRequest{Records: b, Acks: acks, Reply: reply, DeadlineMs: time.Now().Add(5 * time.Second).UnixMilli(),
		Summary: BatchSummary{NumBatches: 1, NumRecords: sum.NumRecords, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, LastSequence: -1}})
	return reply
}

func status(t *testing.T, p *Partition) ReplicaStatus {
	t.Helper()
	ch := make(chan ReplicaStatus, 1)
	p.Status(StatusRequest{Reply: ch})
	return wait(t, ch, "status")
}

func followerState(t *testing.T, p *Partition) FollowerState {
	t.Helper()
	ch := make(chan FollowerState, 1)
	p.FollowerState(FollowerStateRequest{Reply: ch})
	return wait(t, ch, "follower state")
}

// fetchRound is one round of the replica fetcher for follower (on broker
// replicaID): where to fetch, the leader's answer, and the follower's
// state once it took the answer.
func fetchRound(t *testing.T, leader, follower *Partition, replicaID int32) (FetchResult, FollowerState) {
	t.Helper()
	st := followerState(t, follower)
	if !st.Following {
		t.Fatalf("the follower does not follow: %+v", st)
	}
	ch := make(chan FetchResult, 1)
	leader.ReplicaFetch(ReplicaFetchRequest{ReplicaID: replicaID, CurrentLeaderEpoch: st.LeaderEpoch, FetchOffset: st.FetchOffset,
		LastFetchedEpoch: st.LastFetchedEpoch, MaxBytes: 1 << 20, Reply: ch})
	res := wait(t, ch, "replica fetch")
	records, err := res.Records.AppendTo(nil)
	res.Records.Release()
	if err != nil {
		t.Fatal(err)
	}
	reply := make(chan FollowerState, 1)
	follower.FollowerFetched(FollowerFetchedRequest{LeaderEpoch: st.LeaderEpoch, FetchOffset: st.FetchOffset,
		ErrorCode: res.ErrorCode, HighWatermark: res.HighWatermark, LogStartOffset: res.LogStartOffset,
		Diverging: res.Diverging, DivergingEpoch: res.DivergingEpoch, DivergingEndOffset: res.DivergingEndOffset,
		Records: records, Reply: reply})
	next := wait(t, reply, "follower fetched")
	if next.Err != nil {
		t.Fatalf("follower refused the fetched batches: %v", next.Err)
	}
	return res, next
}

// logBytes reads a replica's whole log.
func logBytes(t *testing.T, p *Partition) []byte {
	t.Helper()
	return readWholeLog(t, status(t, p).LogStart, p.ReadLocal)
}

// readWholeLog reads a replica's log from start to its end through
// LocalReadRequests handed to read (a cell or an actor).
func readWholeLog(t *testing.T, start int64, read func(LocalReadRequest)) []byte {
	t.Helper()
	ch := make(chan FetchResult, 1)
	var out []byte
	for off := start; ; {
		read(LocalReadRequest{Offset: off, MaxBytes: 1 << 20, Reply: ch})
		r := wait(t, ch, "local read")
		if r.ErrorCode != 0 {
			t.Fatalf("local read at %d: %v", off, kerr.ErrorForCode(r.ErrorCode))
		}
		n := len(out)
		var err error
		out, err = r.Records.AppendTo(out)
		r.Records.Release()
		if err != nil {
			t.Fatal(err)
		}
		if len(out) == n {
			return out
		}
		for it := batch.NewIter(out[n:]); ; {
			h, _, ok := it.Next()
			if !ok {
				break
			}
			off = h.LastOffset() + 1
		}
	}
}

// TestReplicaAcksAllWaitsForTheFollower: an acks=-1 produce is answered
// once the follower's next fetch reports the records as its own (durable)
// fetch offset; the follower answers the fetcher only with its log end
// durable, and learns the high watermark on the fetch after.
func TestReplicaAcksAllWaitsForTheFollower(t *testing.T) {
	a, b := newReplicaNode(t, 1, t.TempDir()), newReplicaNode(t, 2, t.TempDir())
	role := ReplicaRole{Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}
	leader, follower := a.start(role), b.start(role)

	acked := produce(t, leader, -1, 3)
	res, st := fetchRound(t, leader, follower, 2)
	if res.ErrorCode != 0 || res.LogEndOffset != 3 || st.FetchOffset != 3 || st.LastFetchedEpoch != 1 || !st.Following || st.LeaderEpoch != 1 {
		t.Fatalf("first round: fetched %+v; follower now %+v", res, st)
	}
	select {
	case r := <-acked:
		t.Fatalf("acks=-1 answered before the follower reported the records: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	if fs := status(t, follower); fs.DurableEnd != 3 || fs.LogEnd != 3 {
		t.Fatalf("follower answered the fetcher before its appends were durable: %+v", fs)
	}
	res, _ = fetchRound(t, leader, follower, 2) // reports offset 3
	if r := wait(t, acked, "acks=-1"); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("acks=-1: %+v", r)
	}
	if res.HighWatermark != 3 || status(t, follower).HighWatermark != 3 {
		t.Fatalf("high watermark: leader answered %d, follower has %+v", res.HighWatermark, status(t, follower))
	}
	if !slices.Equal(logBytes(t, leader), logBytes(t, follower)) {
		t.Fatal("the replicas' logs differ")
	}

	// A follower answers client requests NOT_LEADER_OR_FOLLOWER, with no
	// offset (serveLookup honours the core's error code).
	lo := make(chan ListOffsetsResult, 1)
	follower.ListOffsets(ListOffsetsRequest{Timestamp: -1, Reply: lo})
	if r := wait(t, lo, "list offsets"); r.ErrorCode != kerr.NotLeaderForPartition.Code || r.Offset != -1 {
		t.Fatalf("list offsets on a follower: %+v", r)
	}
	if r := wait(t, produce(t, follower, 1, 1), "produce on a follower"); r.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("produce on a follower: %+v", r)
	}
}

// TestReplicaTruncatesOnDivergingEpoch: a former leader's tail that the
// new leader never had is answered with a DivergingEpoch and cut by
// Kafka's follower rule; the logs then agree.
func TestReplicaTruncatesOnDivergingEpoch(t *testing.T) {
	a, b := newReplicaNode(t, 1, t.TempDir()), newReplicaNode(t, 2, t.TempDir())
	epoch1 := ReplicaRole{Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}
	pa, pb := a.start(epoch1), b.start(epoch1)
	wait(t, produce(t, pa, 1, 5), "produce")
	fetchRound(t, pa, pb, 2)
	wait(t, produce(t, pa, 1, 3), "produce") // offsets 5-7: only on a

	epoch2 := ReplicaRole{Leader: 2, LeaderEpoch: 2, PartitionEpoch: 2, Replicas: []int32{1, 2}, ISR: []int32{2}}
	pb.SetRole(epoch2)
	pa.SetRole(epoch2)
	wait(t, produce(t, pb, 1, 2), "produce") // offsets 5-6 at epoch 2

	res, st := fetchRound(t, pb, pa, 1)
	if !res.Diverging || res.DivergingEpoch != 1 || res.DivergingEndOffset != 5 {
		t.Fatalf("the new leader answered %+v, want diverging epoch 1 ending at 5", res)
	}
	if st.FetchOffset != 5 || st.LastFetchedEpoch != 1 {
		t.Fatalf("after truncation the follower is at %+v, want offset 5 after epoch 1", st)
	}
	_, st = fetchRound(t, pb, pa, 1)
	if st.FetchOffset != 7 || st.LastFetchedEpoch != 2 {
		t.Fatalf("after catching up: %+v", st)
	}
	if !slices.Equal(logBytes(t, pa), logBytes(t, pb)) {
		t.Fatal("the replicas' logs differ after truncation")
	}

	// OffsetForLeaderEpoch on the new leader: epoch 1 ended at 5; its own
	// epoch at its log end; a follower refuses consumers but not a
	// debugging client.
	oe := make(chan EpochResult, 1)
	for _, c := range []struct {
		p       *Partition
		epoch   int32
		replica int32
		code    int16
		want    partition.EpochEndOffset
	}{
		{pb, 1, -1, 0, partition.EpochEndOffset{Epoch: 1, EndOffset: 5}},
		{pb, 2, -1, 0, partition.EpochEndOffset{Epoch: 2, EndOffset: 7}},
		{pb, 3, -1, 0, partition.EpochEndOffset{Epoch: -1, EndOffset: -1}},
		{pa, 1, -1, kerr.NotLeaderForPartition.Code, partition.EpochEndOffset{Epoch: -1, EndOffset: -1}},
		{pa, 1, -2, 0, partition.EpochEndOffset{Epoch: 1, EndOffset: 5}},
	} {
		c.p.OffsetForLeaderEpoch(EpochRequest{LeaderEpoch: c.epoch, CurrentLeaderEpoch: -1, ReplicaID: c.replica, Reply: oe})
		r := wait(t, oe, "offset for leader epoch")
		if r.ErrorCode != c.code || r.LeaderEpoch != c.want.Epoch || r.EndOffset != c.want.EndOffset {
			t.Errorf("epoch %d (replica %d): %+v, want code %d %+v", c.epoch, c.replica, r, c.code, c.want)
		}
	}
	pb.OffsetForLeaderEpoch(EpochRequest{LeaderEpoch: 1, CurrentLeaderEpoch: 1, ReplicaID: -1, Reply: oe})
	if r := wait(t, oe, "fenced"); r.ErrorCode != kerr.FencedLeaderEpoch.Code {
		t.Errorf("an older current epoch: %+v", r)
	}
}

// TestReplicaStartsOverBelowLeaderLogStart: a follower whose log ends
// below the leader's log start is answered OFFSET_OUT_OF_RANGE, starts
// its log over at the leader's log start, fetches from there, and keeps
// that start across a restart.
func TestReplicaStartsOverBelowLeaderLogStart(t *testing.T) {
	a := newReplicaNode(t, 1, t.TempDir())
	bdir := t.TempDir()
	b := newReplicaNode(t, 2, bdir)
	role := ReplicaRole{Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1}}
	pa, pb := a.start(role), b.start(role)
	for range 3 {
		wait(t, produce(t, pa, -1, 4), "produce") // ISR is the leader alone
	}
	del := make(chan DeleteRecordsResult, 1)
	pa.DeleteRecords(DeleteRecordsRequest{Offset: 8, Reply: del})
	if r := wait(t, del, "delete records"); r.ErrorCode != 0 || r.LowWatermark != 8 {
		t.Fatalf("delete records: %+v", r)
	}

	res, st := fetchRound(t, pa, pb, 2)
	if res.ErrorCode != kerr.OffsetOutOfRange.Code || res.LogStartOffset != 8 {
		t.Fatalf("leader answered %+v, want OFFSET_OUT_OF_RANGE with log start 8", res)
	}
	if st.FetchOffset != 8 || st.LogStartOffset != 8 || st.LastFetchedEpoch != -1 {
		t.Fatalf("follower after starting over: %+v", st)
	}
	_, st = fetchRound(t, pa, pb, 2)
	if st.FetchOffset != 12 {
		t.Fatalf("follower after fetching: %+v", st)
	}
	if !slices.Equal(logBytes(t, pa), logBytes(t, pb)) {
		t.Fatal("the replicas' logs differ")
	}

	// The leader's ISR change (the follower caught up) goes to the
	// controller; its answer comes back with the change's Seq.
	fetchRound(t, pa, pb, 2)
	call := wait(t, a.alters, "AlterISR")
	if !slices.Equal(call.change.ISR, []int32{1, 2}) || call.change.LeaderEpoch != 1 || call.change.PartitionEpoch != 1 {
		t.Fatalf("AlterISR %+v", call.change)
	}
	call.answer(partition.AlterISRResult{Seq: call.change.Seq, LeaderEpoch: 1, PartitionEpoch: 2, ISR: []int32{1, 2}})
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(status(t, pa).ISR, []int32{1, 2}) {
		if time.Now().After(deadline) {
			t.Fatalf("the ISR answer was not applied: %+v", status(t, pa))
		}
		time.Sleep(5 * time.Millisecond)
	}

	// The restarted follower keeps the moved start.
	b.close()
	b = newReplicaNode(t, 2, bdir)
	pb = b.start(role)
	if s := status(t, pb); s.LogStart != 8 || s.LogEnd != 12 {
		t.Fatalf("after a restart the follower has %+v, want log 8-12", s)
	}
	if !slices.Equal(logBytes(t, pa), logBytes(t, pb)) {
		t.Fatal("the replicas' logs differ after the restart")
	}
}

// TestOffsetFiller: the batch that carries a started-over log's offsets
// is a well-formed, record-less v2 batch.
func TestOffsetFiller(t *testing.T) {
	b := offsetFiller(100, 7, 1234)
	h, err := batch.ParseHeader(b)
	if err != nil || !batch.VerifyCRC(b) {
		t.Fatalf("filler: %v, crc ok %v", err, batch.VerifyCRC(b))
	}
	if h.BaseOffset != 100 || h.LastOffset() != 106 || h.NumRecords != 0 || h.PartitionLeaderEpoch != -1 || h.ProducerID != -1 || h.Size() != len(b) {
		t.Fatalf("filler header %+v", h)
	}
}
