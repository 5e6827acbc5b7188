package wire

import (
	"context"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sessionFetch builds a fetch for a session: id and epoch, the partitions
// whose position changed, and partitions to forget.
func sessionFetch(version int16, id, epoch int32, parts []fetchAt, forget map[string][]int32) *kmsg.FetchRequest {
	req := fetchReq(version, parts...)
	req.SessionID, req.SessionEpoch = id, epoch
	for topic, ps := range forget {
		ft := kmsg.NewFetchRequestForgottenTopic()
		ft.Topic, ft.TopicID, ft.Partitions = topic, dpTopicID(topic), ps
		req.ForgottenTopics = append(req.ForgottenTopics, ft)
	}
	return req
}

// TestFetchSessionIncremental walks a session through its life at a
// by-name and a by-id version.
func TestFetchSessionIncremental(t *testing.T) {
	for _, v := range []int16{7, 12, 13, 18} {
		b := newDPBackend(t, map[string]int{"t": 3})
		s := newDPServer(b)
		b.part("t", 0).append(t, testBatch(t, 2, 10, 1))
		all := []fetchAt{{topic: "t", part: 0}, {topic: "t", part: 1}, {topic: "t", part: 2}}

		// Full fetch opening a session: every partition answered.
		resp := dpFetch(t, s, sessionFetch(v, 0, 0, all, nil))
		id := resp.SessionID
		if resp.ErrorCode != 0 || id == 0 {
			t.Fatalf("v%d: open: code %d id %d", v, resp.ErrorCode, id)
		}
		if got := len(answered(resp)); got != 3 {
			t.Fatalf("v%d: full answer has %d partitions", v, got)
		}

		// The client moves past p0's records; nothing else changed, so
		// the incremental answer is empty.
		resp = dpFetch(t, s, sessionFetch(v, id, 1, []fetchAt{{topic: "t", part: 0, offset: 2}}, nil))
		if resp.ErrorCode != 0 || resp.SessionID != id || len(answered(resp)) != 0 {
			t.Fatalf("v%d: idle incremental: code %d id %d parts %v", v, resp.ErrorCode, resp.SessionID, answered(resp))
		}

		// New data on p2 only: only p2 comes back, with its records.
		b.part("t", 2).append(t, testBatch(t, 3, 10, 1))
		resp = dpFetch(t, s, sessionFetch(v, id, 2, nil, nil))
		got := answered(resp)
		sp, ok := got[partKey(v, "t", 2)]
		if len(got) != 1 || !ok || countRecords(t, sp.RecordBatches) != 3 || sp.HighWatermark != 3 {
			t.Fatalf("v%d: want only p2 with 3 records, got %+v", v, got)
		}

		// A replayed epoch is refused.
		resp = dpFetch(t, s, sessionFetch(v, id, 2, nil, nil))
		if resp.ErrorCode != kerr.InvalidFetchSessionEpoch.Code || resp.SessionID != 0 || len(resp.Topics) != 0 {
			t.Fatalf("v%d: stale epoch: code %d id %d", v, resp.ErrorCode, resp.SessionID)
		}
		// An unknown id too.
		resp = dpFetch(t, s, sessionFetch(v, id+1, 1, nil, nil))
		if resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
			t.Fatalf("v%d: unknown id: code %d", v, resp.ErrorCode)
		}

		// Forget p1 and p2 (p2 moved on first): new data on p1 is not
		// reported any more.
		resp = dpFetch(t, s, sessionFetch(v, id, 3, nil, map[string][]int32{"t": {1, 2}}))
		if resp.ErrorCode != 0 || len(answered(resp)) != 0 {
			t.Fatalf("v%d: forget: code %d parts %v", v, resp.ErrorCode, answered(resp))
		}
		b.part("t", 1).append(t, testBatch(t, 1, 10, 1))
		resp = dpFetch(t, s, sessionFetch(v, id, 4, nil, nil))
		if len(answered(resp)) != 0 {
			t.Fatalf("v%d: forgotten partition reported: %v", v, answered(resp))
		}
		// Adding p1 back reports it, from its new position.
		resp = dpFetch(t, s, sessionFetch(v, id, 5, []fetchAt{{topic: "t", part: 1}}, nil))
		if sp, ok := answered(resp)[partKey(v, "t", 1)]; !ok || countRecords(t, sp.RecordBatches) != 1 {
			t.Fatalf("v%d: re-added partition: %v", v, answered(resp))
		}

		// Forgetting everything ends the session: a sessionless answer.
		resp = dpFetch(t, s, sessionFetch(v, id, 6, nil, map[string][]int32{"t": {0, 1}}))
		if resp.ErrorCode != 0 || resp.SessionID != 0 {
			t.Fatalf("v%d: emptied session: code %d id %d", v, resp.ErrorCode, resp.SessionID)
		}
		if n := s.fetchSessions().len(); n != 0 {
			t.Fatalf("v%d: %d sessions left", v, n)
		}
	}
}

// TestFetchSessionClose: a full fetch naming a session closes it; epoch -1
// opens none.
func TestFetchSessionClose(t *testing.T) {
	b := newDPBackend(t, map[string]int{"t": 1})
	s := newDPServer(b)
	at := []fetchAt{{topic: "t"}}
	id := dpFetch(t, s, sessionFetch(12, 0, 0, at, nil)).SessionID
	if id == 0 {
		t.Fatal("no session")
	}
	resp := dpFetch(t, s, sessionFetch(12, id, -1, at, nil))
	if resp.SessionID != 0 || len(answered(resp)) != 1 {
		t.Fatalf("close: id %d parts %v", resp.SessionID, answered(resp))
	}
	if n := s.fetchSessions().len(); n != 0 {
		t.Fatalf("%d sessions after close", n)
	}
	if resp := dpFetch(t, s, sessionFetch(12, id, 1, nil, nil)); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("closed session still answers: code %d", resp.ErrorCode)
	}
	// Epoch 0 naming an old session replaces it with a new one.
	id = dpFetch(t, s, sessionFetch(12, 0, 0, at, nil)).SessionID
	id2 := dpFetch(t, s, sessionFetch(12, id, 0, at, nil)).SessionID
	if id2 == 0 || id2 == id || s.fetchSessions().len() != 1 {
		t.Fatalf("re-open: ids %d %d, %d sessions", id, id2, s.fetchSessions().len())
	}
}

// TestFetchSessionTopicIDMismatch: a session opened by id cannot be
// continued by name, and the other way round.
func TestFetchSessionTopicIDMismatch(t *testing.T) {
	b := newDPBackend(t, map[string]int{"t": 1})
	s := newDPServer(b)
	id := dpFetch(t, s, sessionFetch(13, 0, 0, []fetchAt{{topic: "t"}}, nil)).SessionID
	if resp := dpFetch(t, s, sessionFetch(12, id, 1, nil, nil)); resp.ErrorCode != kerr.FetchSessionTopicIDError.Code {
		t.Fatalf("code %d, want FETCH_SESSION_TOPIC_ID_ERROR", resp.ErrorCode)
	}
}

// TestFetchSessionErrorsResent: a partition in error is in every answer,
// and once it recovers it is sent again even though its offsets are the
// ones the client last saw.
func TestFetchSessionErrorsResent(t *testing.T) {
	b := newDPBackend(t, map[string]int{"t": 2})
	s := newDPServer(b)
	at := []fetchAt{{topic: "t", part: 0}, {topic: "t", part: 1}}
	id := dpFetch(t, s, sessionFetch(12, 0, 0, at, nil)).SessionID
	b.setLeader("t", 1, 2, 1)
	for epoch := int32(1); epoch <= 2; epoch++ {
		got := answered(dpFetch(t, s, sessionFetch(12, id, epoch, nil, nil)))
		if sp, ok := got[partKey(12, "t", 1)]; len(got) != 1 || !ok || sp.ErrorCode != kerr.NotLeaderForPartition.Code {
			t.Fatalf("epoch %d: %v", epoch, got)
		}
	}
	b.setLeader("t", 1, dpNodeID, 2)
	b.mu.Lock()
	b.parts[tp{"t", 1}].hidden = false
	b.mu.Unlock()
	got := answered(dpFetch(t, s, sessionFetch(12, id, 3, nil, nil)))
	if sp, ok := got[partKey(12, "t", 1)]; len(got) != 1 || !ok || sp.ErrorCode != 0 || sp.HighWatermark != 0 {
		t.Fatalf("after recovery: %v", got)
	}
	if got := answered(dpFetch(t, s, sessionFetch(12, id, 4, nil, nil))); len(got) != 0 {
		t.Fatalf("recovered partition keeps being sent: %v", got)
	}
}

// TestFetchSessionFairness: partitions that returned data move to the end
// of the session, so under a tight response limit partitions take turns.
func TestFetchSessionFairness(t *testing.T) {
	b := newDPBackend(t, map[string]int{"t": 2})
	s := newDPServer(b)
	for p := range int32(2) {
		for range 4 {
			b.part("t", p).append(t, testBatch(t, 1, 500, 1))
		}
	}
	at := []fetchAt{{topic: "t", part: 0}, {topic: "t", part: 1}}
	open := sessionFetch(12, 0, 0, at, nil)
	open.MaxBytes = 1 // one batch per answer (KIP-74)
	resp := dpFetch(t, s, open)
	id := resp.SessionID
	offsets := map[int32]int64{0: 0, 1: 0}
	var order []int32
	advance := func(resp *kmsg.FetchResponse) []fetchAt {
		var moved []fetchAt
		for _, st := range resp.Topics {
			for _, sp := range st.Partitions {
				if n := countRecords(t, sp.RecordBatches); n > 0 {
					order = append(order, sp.Partition)
					offsets[sp.Partition] += int64(n)
					moved = append(moved, fetchAt{topic: "t", part: sp.Partition, offset: offsets[sp.Partition]})
				}
			}
		}
		return moved
	}
	moved := advance(resp)
	for epoch := int32(1); epoch <= 5; epoch++ {
		req := sessionFetch(12, id, epoch, moved, nil)
		req.MaxBytes = 1
		moved = advance(dpFetch(t, s, req))
	}
	want := []int32{0, 1, 0, 1, 0, 1}
	if len(order) != len(want) {
		t.Fatalf("partitions served %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("partitions served %v, want %v", order, want)
		}
	}
}

// TestFetchSessionCache checks the cache's bound and eviction order.
func TestFetchSessionCache(t *testing.T) {
	c := newFetchSessions(2)
	parts := func(n int) []*sessionPartition {
		out := make([]*sessionPartition, n)
		for i := range out {
			out[i] = &sessionPartition{key: sessionKey{topic: "t", partition: int32(i)}}
		}
		return out
	}
	now := int64(1_000_000)
	small := c.create(parts(1), false, now)
	large := c.create(parts(3), false, now+1)
	if small == 0 || large == 0 || c.len() != 2 {
		t.Fatalf("create: %d %d, %d sessions", small, large, c.len())
	}
	// Full: a bigger session evicts the smallest.
	mid := c.create(parts(2), false, now+2)
	if mid == 0 || c.len() != 2 || c.byID[small] != nil {
		t.Fatalf("evict smallest: mid %d, small still there %v", mid, c.byID[small] != nil)
	}
	// A session no bigger than any is refused while none is stale.
	if id := c.create(parts(2), false, now+3); id != 0 {
		t.Fatalf("created %d in a full cache of bigger sessions", id)
	}
	if id := c.create(nil, false, now+3); id != 0 {
		t.Fatal("created an empty session")
	}
	// Once the least recently used is stale, anyone may evict it.
	later := now + fetchSessionEvictAfter.Milliseconds() + 10
	if id := c.create(parts(1), false, later); id == 0 || c.byID[large] != nil || c.len() != 2 {
		t.Fatalf("evict stale: id %d, large still there %v", id, c.byID[large] != nil)
	}
	if nextSessionEpoch(math.MaxInt32) != 1 || nextSessionEpoch(5) != 6 {
		t.Fatal("epoch wrap")
	}
}

// TestConsumeWithKgo produces and consumes through franz-go, which uses
// incremental fetch sessions, and checks every record arrives in order.
func TestConsumeWithKgo(t *testing.T) {
	b := newDPBackend(t, map[string]int{"t": 3})
	s, addr := startDPServer(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const perPartition = 300
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic("t"), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := range perPartition {
		for p := range int32(3) {
			prod.Produce(ctx, &kgo.Record{Partition: p, Value: binary.BigEndian.AppendUint32(nil, uint32(i))}, nil)
		}
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"t": {
			0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart(), 2: kgo.NewOffset().AtStart(),
		}}),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.FetchMaxPartitionBytes(4<<10), // many small fetches
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	next := map[int32]uint32{}
	total := 0
	for total < 3*perPartition {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", total, 3*perPartition, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if got := binary.BigEndian.Uint32(r.Value); got != next[r.Partition] || r.Offset != int64(got) {
				t.Fatalf("partition %d: record %d at offset %d, want %d", r.Partition, got, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
			total++
		})
	}
	if n := s.fetchSessions().len(); n == 0 {
		t.Fatal("the consumer did not open a fetch session")
	}
}
