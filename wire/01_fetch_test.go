package wire

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors"
)

// fetchAt is one partition of a test fetch request.
type fetchAt struct {
	topic    string
	part     int32
	offset   int64
	maxBytes int32 // 0 means 1 MiB
	epoch    int32 // CurrentLeaderEpoch; 0 means -1 (none)
}

// fetchReq builds a sessionless fetch that answers at once, grouping
// consecutive partitions of one topic.
func fetchReq(version int16, parts ...fetchAt) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = version
	req.MinBytes = 1
	req.MaxWaitMillis = 0
	req.MaxBytes = 50 << 20
	req.SessionID, req.SessionEpoch = 0, -1
	for _, p := range parts {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != p.topic {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = p.topic, dpTopicID(p.topic)
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p.part, p.offset, p.maxBytes
		if rp.PartitionMaxBytes == 0 {
			rp.PartitionMaxBytes = 1 << 20
		}
		if p.epoch != 0 {
			rp.CurrentLeaderEpoch = p.epoch
		}
		rt := &req.Topics[len(req.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	return req
}

// answered flattens a fetch response to topic/partition → partition.
func answered(resp *kmsg.FetchResponse) map[string]kmsg.FetchResponseTopicPartition {
	m := map[string]kmsg.FetchResponseTopicPartition{}
	for _, st := range resp.Topics {
		name := st.Topic
		if resp.Version >= 13 {
			name = fmt.Sprintf("%x", st.TopicID)
		}
		for _, sp := range st.Partitions {
			m[fmt.Sprintf("%s/%d", name, sp.Partition)] = sp
		}
	}
	return m
}

func partKey(version int16, topic string, p int32) string {
	if version >= 13 {
		id := dpTopicID(topic)
		return fmt.Sprintf("%x/%d", id[:], p)
	}
	return fmt.Sprintf("%s/%d", topic, p)
}

// TestFetchVersions fetches at every version: records, offsets, names or
// ids, the read-replica and aborted-transaction fields.
func TestFetchVersions(t *testing.T) {
	b := newDPBackend(t, map[string]int{"t": 2})
	s := newDPServer(b)
	p0 := b.part("t", 0)
	p0.append(t, testBatch(t, 3, 20, 1000))
	p0.append(t, testBatch(t, 2, 20, 2000))
	for v := int16(4); v <= 18; v++ {
		for _, isolation := range []int8{0, 1} {
			req := fetchReq(v, fetchAt{topic: "t", part: 0}, fetchAt{topic: "t", part: 1})
			req.IsolationLevel = isolation
			resp := dpFetch(t, s, req)
			if resp.ErrorCode != 0 || resp.SessionID != 0 {
				t.Fatalf("v%d: top-level code %d session %d", v, resp.ErrorCode, resp.SessionID)
			}
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
				t.Fatalf("v%d: want one topic of two partitions, got %+v", v, resp.Topics)
			}
			if v >= 13 && resp.Topics[0].TopicID != dpTopicID("t") {
				t.Fatalf("v%d: topic id not echoed", v)
			}
			if v < 13 && resp.Topics[0].Topic != "t" {
				t.Fatalf("v%d: topic name %q", v, resp.Topics[0].Topic)
			}
			sp0, sp1 := resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]
			wantLogStart := int64(0)
			if v < 5 {
				wantLogStart = -1 // not in the protocol yet
			}
			if sp0.ErrorCode != 0 || sp0.HighWatermark != 5 || sp0.LastStableOffset != 5 || sp0.LogStartOffset != wantLogStart {
				t.Fatalf("v%d: partition 0 %+v", v, sp0)
			}
			if n := countRecords(t, sp0.RecordBatches); n != 5 {
				t.Fatalf("v%d: %d records, want 5", v, n)
			}
			if sp1.ErrorCode != 0 || sp1.HighWatermark != 0 || len(sp1.RecordBatches) != 0 {
				t.Fatalf("v%d: partition 1 %+v", v, sp1)
			}
			if sp0.PreferredReadReplica != -1 {
				t.Fatalf("v%d: preferred read replica %d", v, sp0.PreferredReadReplica)
			}
			if wantNil := isolation == 0; (sp0.AbortedTransactions == nil) != wantNil {
				t.Fatalf("v%d isolation %d: aborted transactions nil=%v", v, isolation, sp0.AbortedTransactions == nil)
			}
		}
	}
}

// TestFetchErrors covers the per-partition errors and their offsets.
func TestFetchErrors(t *testing.T) {
	tests := []struct {
		name     string
		version  int16
		at       fetchAt
		setup    func(*dpBackend)
		code     int16
		hwm      int64
		logStart int64
	}{
		{name: "offset-past-end", version: 11, at: fetchAt{topic: "t", offset: 99}, code: kerr.OffsetOutOfRange.Code, hwm: 2},
		{name: "offset-below-start", version: 11, at: fetchAt{topic: "t", offset: 0},
			setup: func(b *dpBackend) { b.part("t", 0).logStart = 1 }, code: kerr.OffsetOutOfRange.Code, hwm: 2, logStart: 1},
		{name: "unknown-topic", version: 11, at: fetchAt{topic: "nope"}, code: kerr.UnknownTopicOrPartition.Code, hwm: -1, logStart: -1},
		{name: "unknown-partition", version: 11, at: fetchAt{topic: "t", part: 9}, code: kerr.UnknownTopicOrPartition.Code, hwm: -1, logStart: -1},
		{name: "unknown-topic-id", version: 13, at: fetchAt{topic: "nope"}, code: kerr.UnknownTopicID.Code, hwm: -1, logStart: -1},
		{name: "not-leader", version: 11, at: fetchAt{topic: "t"}, setup: func(b *dpBackend) { b.setLeader("t", 0, 2, 1) },
			code: kerr.NotLeaderForPartition.Code, hwm: -1, logStart: -1},
		{name: "fenced-epoch", version: 9, at: fetchAt{topic: "t", epoch: 2}, setup: func(b *dpBackend) { b.setLeader("t", 0, dpNodeID, 3) },
			code: kerr.FencedLeaderEpoch.Code, hwm: -1, logStart: -1},
		{name: "unknown-epoch", version: 12, at: fetchAt{topic: "t", epoch: 4}, setup: func(b *dpBackend) { b.setLeader("t", 0, dpNodeID, 3) },
			code: kerr.UnknownLeaderEpoch.Code, hwm: -1, logStart: -1},
		{name: "current-epoch", version: 12, at: fetchAt{topic: "t", epoch: 3}, setup: func(b *dpBackend) { b.setLeader("t", 0, dpNodeID, 3) },
			code: 0, hwm: 2},
		{name: "epoch-ignored-before-v9", version: 8, at: fetchAt{topic: "t", epoch: 2}, setup: func(b *dpBackend) { b.setLeader("t", 0, dpNodeID, 3) },
			code: 0, hwm: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newDPBackend(t, map[string]int{"t": 1})
			b.part("t", 0).append(t, testBatch(t, 2, 5, 1))
			if tt.setup != nil {
				tt.setup(b)
			}
			s := newDPServer(b)
			req := fetchReq(tt.version, tt.at)
			req.MaxWaitMillis = 5000 // an error answers at once regardless
			start := time.Now()
			resp := dpFetch(t, s, req)
			if el := time.Since(start); el > 2*time.Second {
				t.Fatalf("took %v; errors must not wait", el)
			}
			sp, ok := answered(resp)[partKey(tt.version, tt.at.topic, tt.at.part)]
			if !ok {
				t.Fatalf("partition missing from %+v", resp.Topics)
			}
			if sp.ErrorCode != tt.code {
				t.Fatalf("code %d (%v), want %d", sp.ErrorCode, kerr.ErrorForCode(sp.ErrorCode), tt.code)
			}
			if sp.HighWatermark != tt.hwm || sp.LogStartOffset != tt.logStart {
				t.Fatalf("hwm %d log start %d, want %d %d", sp.HighWatermark, sp.LogStartOffset, tt.hwm, tt.logStart)
			}
			if tt.code != 0 && len(sp.RecordBatches) != 0 {
				t.Fatal("an error partition carries records")
			}
		})
	}
}

// TestFetchNotLeaderHints: v12+ name the current leader, v16+ also its
// endpoint.
func TestFetchNotLeaderHints(t *testing.T) {
	for _, v := range []int16{11, 12, 15, 16, 18} {
		b := newDPBackend(t, map[string]int{"t": 1})
		b.setLeader("t", 0, 2, 6)
		s := newDPServer(b)
		resp := dpFetch(t, s, fetchReq(v, fetchAt{topic: "t"}))
		sp := resp.Topics[0].Partitions[0]
		wantLeader := int32(-1)
		if v >= 12 {
			wantLeader = 2
		}
		if sp.CurrentLeader.LeaderID != wantLeader {
			t.Fatalf("v%d: current leader %+v", v, sp.CurrentLeader)
		}
		if wantBrokers := v >= 16; (len(resp.Brokers) == 1) != wantBrokers {
			t.Fatalf("v%d: brokers %+v", v, resp.Brokers)
		}
	}
}

// TestFetchByteBudgets checks the response-wide and per-partition limits,
// including KIP-74: the first partition with data is answered whole even
// when its first batch is larger than both limits.
func TestFetchByteBudgets(t *testing.T) {
	b := newDPBackend(t, map[string]int{"t": 3, "big": 1})
	s := newDPServer(b)
	one := testBatch(t, 1, 900, 1) // ~970 bytes
	size := int32(len(one))
	for p := range int32(3) {
		for range 3 {
			b.part("t", p).append(t, testBatch(t, 1, 900, 1))
		}
	}
	b.part("big", 0).append(t, testBatch(t, 1, 5000, 1))

	records := func(resp *kmsg.FetchResponse) []int {
		var out []int
		for _, st := range resp.Topics {
			for _, sp := range st.Partitions {
				out = append(out, countRecords(t, sp.RecordBatches))
			}
		}
		return out
	}
	all := []fetchAt{{topic: "t", part: 0}, {topic: "t", part: 1}, {topic: "t", part: 2}}
	tests := []struct {
		name     string
		parts    []fetchAt
		maxBytes int32
		want     []int
	}{
		{name: "unlimited", parts: all, maxBytes: 1 << 20, want: []int{3, 3, 3}},
		{name: "response-limit-cuts-later-partitions", parts: all, maxBytes: 4 * size, want: []int{3, 0, 0}},
		{name: "response-limit-fits-whole-regions-only", parts: all, maxBytes: 7 * size, want: []int{3, 3, 0}},
		{name: "partition-limit", parts: []fetchAt{{topic: "t", part: 0, maxBytes: 2*size + 10}, {topic: "t", part: 1, maxBytes: size}},
			maxBytes: 1 << 20, want: []int{2, 1}},
		{name: "kip74-first-batch-over-both-limits", parts: []fetchAt{{topic: "big", maxBytes: 100}, {topic: "t", part: 0}}, maxBytes: 100, want: []int{1, 0}},
		{name: "kip74-only-for-the-first-with-data", parts: []fetchAt{{topic: "t", part: 0, maxBytes: 10}, {topic: "big", maxBytes: 100}},
			maxBytes: 1 << 20, want: []int{1, 0}},
		{name: "zero-response-limit", parts: all, maxBytes: 0, want: []int{1, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := fetchReq(12, tt.parts...)
			req.MaxBytes = tt.maxBytes
			resp := dpFetch(t, s, req)
			got := records(resp)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("records per partition %v, want %v", got, tt.want)
			}
			for _, st := range resp.Topics {
				for _, sp := range st.Partitions {
					if sp.HighWatermark <= 0 {
						t.Fatalf("partition without records lacks its high watermark: %+v", sp)
					}
				}
			}
		})
	}
}

// TestFetchLongPoll: with nothing to read, a fetch waits MaxWait and
// returns empty; data arriving meanwhile ends the wait early; MinBytes
// counts across wake-ups.
func TestFetchLongPoll(t *testing.T) {
	t.Run("waits-max-wait", func(t *testing.T) {
		b := newDPBackend(t, map[string]int{"t": 1})
		s := newDPServer(b)
		req := fetchReq(12, fetchAt{topic: "t"})
		req.MaxWaitMillis = 500
		start := time.Now()
		resp := dpFetch(t, s, req)
		el := time.Since(start)
		if el < 450*time.Millisecond || el > 2*time.Second {
			t.Fatalf("returned after %v, want about 500ms", el)
		}
		if n := len(resp.Topics[0].Partitions[0].RecordBatches); n != 0 {
			t.Fatalf("got %d record bytes from an empty partition", n)
		}
	})
	t.Run("connection-gone", func(t *testing.T) {
		b := newDPBackend(t, map[string]int{"t": 1})
		s := newDPServer(b)
		req := fetchReq(12, fetchAt{topic: "t"})
		req.MaxWaitMillis = 10000
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		res := dpCallCtx(t, s, req, ctx)
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("a fetch on a dead connection waited %v", el)
		}
		if res.resp != nil || !res.closeConn {
			t.Fatalf("got %v close %v, want no answer and close", res.resp, res.closeConn)
		}
	})
	t.Run("no-wait", func(t *testing.T) {
		b := newDPBackend(t, map[string]int{"t": 1})
		s := newDPServer(b)
		start := time.Now()
		dpFetch(t, s, fetchReq(12, fetchAt{topic: "t"}))
		// Generous: a loaded CI machine must not fail it; a fetch that
		// waited would take its whole MaxWait default or more.
		if el := time.Since(start); el > time.Second {
			t.Fatalf("MaxWait 0 took %v", el)
		}
	})
	t.Run("produce-ends-wait", func(t *testing.T) {
		b := newDPBackend(t, map[string]int{"t": 2})
		s := newDPServer(b)
		req := fetchReq(12, fetchAt{topic: "t", part: 0}, fetchAt{topic: "t", part: 1})
		req.MaxWaitMillis = 5000
		done := make(chan *kmsg.FetchResponse, 1)
		start := time.Now()
		go func() { done <- dpFetch(t, s, req) }()
		time.Sleep(100 * time.Millisecond)
		res := dpCall(t, s, produceReq(9, -1, "t", map[int32][]byte{1: testBatch(t, 2, 10, 1)}))
		if c := res.resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; c != 0 {
			t.Fatalf("produce: code %d", c)
		}
		var resp *kmsg.FetchResponse
		select {
		case resp = <-done:
		case <-time.After(3 * time.Second):
			t.Fatal("fetch did not return after the produce")
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("returned after %v; the produce should have ended the wait", el)
		}
		if n := countRecords(t, answered(resp)[partKey(12, "t", 1)].RecordBatches); n != 2 {
			t.Fatalf("got %d records, want 2", n)
		}
	})
	t.Run("min-bytes-across-wakes", func(t *testing.T) {
		b := newDPBackend(t, map[string]int{"t": 1})
		s := newDPServer(b)
		p := b.part("t", 0)
		rec := testBatch(t, 1, 1000, 1)
		req := fetchReq(12, fetchAt{topic: "t"})
		req.MaxWaitMillis = 5000
		req.MinBytes = int32(len(rec)) + 1 // needs two batches
		done := make(chan *kmsg.FetchResponse, 1)
		start := time.Now()
		go func() { done <- dpFetch(t, s, req) }()
		time.Sleep(50 * time.Millisecond)
		p.append(t, testBatch(t, 1, 1000, 1))
		select {
		case <-done:
			t.Fatal("returned with less than MinBytes")
		case <-time.After(150 * time.Millisecond):
		}
		p.append(t, testBatch(t, 1, 1000, 1))
		var resp *kmsg.FetchResponse
		select {
		case resp = <-done:
		case <-time.After(3 * time.Second):
			t.Fatal("fetch did not return after MinBytes arrived")
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("took %v", el)
		}
		if n := countRecords(t, resp.Topics[0].Partitions[0].RecordBatches); n != 2 {
			t.Fatalf("got %d records, want 2", n)
		}
		p.mu.Lock()
		watches := p.watchesSeen
		p.mu.Unlock()
		if watches < 2 {
			t.Fatalf("%d watches registered, want one per wait", watches)
		}
	})
}

// TestFetchActorTimeout: a partition whose actor never answers is
// answered NOT_LEADER_OR_FOLLOWER (the client re-resolves) instead of
// wedging the connection.
func TestFetchActorTimeout(t *testing.T) {
	old := fetchActorWait
	fetchActorWait = 50 * time.Millisecond
	defer func() { fetchActorWait = old }()
	b := newDPBackend(t, map[string]int{"t": 2})
	b.part("t", 0).append(t, testBatch(t, 1, 1, 1))
	b.part("t", 1).setHold(true)
	s := newDPServer(b)
	resp := dpFetch(t, s, fetchReq(12, fetchAt{topic: "t", part: 0}, fetchAt{topic: "t", part: 1}))
	got := answered(resp)
	if sp := got[partKey(12, "t", 0)]; sp.ErrorCode != 0 || countRecords(t, sp.RecordBatches) != 1 {
		t.Fatalf("partition 0: %+v", sp)
	}
	if sp := got[partKey(12, "t", 1)]; sp.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("partition 1: code %d", sp.ErrorCode)
	}
	b.part("t", 1).setHold(false) // the late answer's region is dropped unreleased: the fake's regions need none
}

// replicaFetchReq is fetchReq from follower replica at every version: the
// replica id in ReplicaID before v15, in ReplicaState from v15.
func replicaFetchReq(version int16, replica int32, lastFetchedEpoch int32, parts ...fetchAt) *kmsg.FetchRequest {
	req := fetchReq(version, parts...)
	if version >= 15 {
		req.ReplicaState.ID = replica
	} else {
		req.ReplicaID = replica
	}
	for ti := range req.Topics {
		for pi := range req.Topics[ti].Partitions {
			req.Topics[ti].Partitions[pi].LastFetchedEpoch = lastFetchedEpoch
		}
	}
	return req
}

// TestFetchFromReplica: a fetch with a replica id goes to the partition's
// ReplicaFetch (never Fetch) with the follower's id, epochs and offset, at
// every version; the answer carries the records, the DivergingEpoch from
// v12, and the partition's own epoch fences it rather than the image's.
func TestFetchFromReplica(t *testing.T) {
	for _, v := range []int16{4, 11, 12, 14, 15, 18} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			b := newDPBackend(t, map[string]int{"t": 1})
			b.setLeader("t", 0, dpNodeID, 3)
			p := b.part("t", 0)
			p.append(t, testBatch(t, 3, 10, 1))
			// The partition moved on to epoch 4 before this node's
			// image did: a follower of epoch 4 is served.
			p.mu.Lock()
			p.epoch = 4
			p.mu.Unlock()
			s := newDPServer(b)

			resp := dpFetch(t, s, replicaFetchReq(v, 2, 3, fetchAt{topic: "t", offset: 1, epoch: 4}))
			sp := answered(resp)[partKey(v, "t", 0)]
			if sp.ErrorCode != 0 || countRecords(t, sp.RecordBatches) != 3 || sp.HighWatermark != 3 {
				t.Fatalf("replica fetch: code %d, %d records, hw %d", sp.ErrorCode, countRecords(t, sp.RecordBatches), sp.HighWatermark)
			}
			p.mu.Lock()
			seen := p.replicaFetches
			fetches := p.fetches
			p.mu.Unlock()
			wantLast, wantCurrent := int32(3), int32(4)
			if v < 12 {
				wantLast = -1 // no LastFetchedEpoch before v12
			}
			if v < 9 {
				wantCurrent = -1 // nor CurrentLeaderEpoch before v9
			}
			if len(seen) != 1 || fetches != 0 || seen[0].ReplicaID != 2 || seen[0].FetchOffset != 1 ||
				seen[0].CurrentLeaderEpoch != wantCurrent || seen[0].LastFetchedEpoch != wantLast {
				t.Fatalf("partition saw replica fetches %+v and %d consumer fetches", seen, fetches)
			}

			// A diverged follower gets the point to truncate to, v12+.
			p.mu.Lock()
			p.diverging = &actors.FetchResult{DivergingEpoch: 2, DivergingEndOffset: 1}
			p.mu.Unlock()
			resp = dpFetch(t, s, replicaFetchReq(v, 2, 3, fetchAt{topic: "t", offset: 3, epoch: 4}))
			sp = answered(resp)[partKey(v, "t", 0)]
			if v >= 12 && (sp.DivergingEpoch.Epoch != 2 || sp.DivergingEpoch.EndOffset != 1 || len(sp.RecordBatches) != 0) {
				t.Fatalf("diverging: %+v, %d record bytes", sp.DivergingEpoch, len(sp.RecordBatches))
			}

			// A consumer with the same epoch is fenced by the image.
			if v >= 9 {
				resp = dpFetch(t, s, fetchReq(v, fetchAt{topic: "t", epoch: 4}))
				if c := answered(resp)[partKey(v, "t", 0)].ErrorCode; c != kerr.UnknownLeaderEpoch.Code {
					t.Fatalf("consumer at an epoch the image does not have: code %d", c)
				}
			}
		})
	}
}

// TestReplicaFetchLongPoll: a follower at the log end waits on the log
// end (ReplicaWatch), not the high watermark, and an append ends the wait.
func TestReplicaFetchLongPoll(t *testing.T) {
	b := newDPBackend(t, map[string]int{"t": 1})
	p := b.part("t", 0)
	p.append(t, testBatch(t, 2, 10, 1))
	s := newDPServer(b)
	req := replicaFetchReq(12, 3, -1, fetchAt{topic: "t", offset: 2})
	req.MaxWaitMillis = 5000
	done := make(chan *kmsg.FetchResponse, 1)
	start := time.Now()
	go func() { done <- dpFetch(t, s, req) }()
	time.Sleep(100 * time.Millisecond)
	p.append(t, testBatch(t, 4, 10, 1))
	var resp *kmsg.FetchResponse
	select {
	case resp = <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("replica fetch did not return after the append")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("returned after %v", el)
	}
	if n := countRecords(t, resp.Topics[0].Partitions[0].RecordBatches); n != 4 {
		t.Fatalf("got %d records, want 4", n)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.replicaFetches) < 2 || p.watchesSeen < 1 {
		t.Fatalf("%d replica reads, %d watches: want a read, a watch, a read", len(p.replicaFetches), p.watchesSeen)
	}
}
