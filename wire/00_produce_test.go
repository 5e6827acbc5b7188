package wire

import (
	"context"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/batch"
)

// produceReq builds a produce request of one topic (by name, or by id from
// v13) with the given partitions' records.
func produceReq(version int16, acks int16, topic string, records map[int32][]byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = version
	req.Acks = acks
	req.TimeoutMillis = 1000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rt.TopicID = dpTopicID(topic)
	parts := make([]int32, 0, len(records))
	for p := range records {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = records[p]
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

func producePartition(t *testing.T, res dpResult) *kmsg.ProduceResponseTopicPartition {
	t.Helper()
	resp, ok := res.resp.(*kmsg.ProduceResponse)
	if !ok {
		t.Fatalf("produce answered %T (closeConn %v)", res.resp, res.closeConn)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("want one partition in the answer, got %+v", resp.Topics)
	}
	return &resp.Topics[0].Partitions[0]
}

// TestProduceVersions appends at every version and acks setting, and
// checks offsets, echoed names or ids, and that the records land.
func TestProduceVersions(t *testing.T) {
	b := newDPBackend(t, map[string]int{"t": 1})
	s := newDPServer(b)
	p := b.part("t", 0)
	next := int64(0)
	for v := int16(3); v <= 13; v++ {
		for _, acks := range []int16{-1, 1, 0} {
			rec := testBatch(t, 3, 10, 1000)
			res := dpCall(t, s, produceReq(v, acks, "t", map[int32][]byte{0: rec}))
			if acks == 0 {
				if res.resp != nil || res.closeConn {
					t.Fatalf("v%d acks=0: want no response and an open connection, got %v, close %v", v, res.resp, res.closeConn)
				}
			} else {
				sp := producePartition(t, res)
				if sp.ErrorCode != 0 || sp.BaseOffset != next {
					t.Fatalf("v%d acks=%d: code %d base %d, want 0 and %d", v, acks, sp.ErrorCode, sp.BaseOffset, next)
				}
				wantLogStart := int64(0)
				if v < 5 {
					wantLogStart = -1 // not in the protocol yet
				}
				if sp.LogAppendTime != -1 || sp.LogStartOffset != wantLogStart {
					t.Fatalf("v%d: log append time %d, log start %d", v, sp.LogAppendTime, sp.LogStartOffset)
				}
				resp := res.resp.(*kmsg.ProduceResponse)
				if v >= 13 && resp.Topics[0].TopicID != dpTopicID("t") {
					t.Fatalf("v%d: topic id not echoed", v)
				}
				if v < 13 && resp.Topics[0].Topic != "t" {
					t.Fatalf("v%d: topic name not echoed", v)
				}
			}
			next += 3
			if got := p.log.EndOffset(); got != next {
				t.Fatalf("v%d acks=%d: log end %d, want %d", v, acks, got, next)
			}
		}
	}
}

// TestProduceErrors covers the per-partition failures decided before the
// actor is involved.
func TestProduceErrors(t *testing.T) {
	good := func(t *testing.T) []byte { return testBatch(t, 2, 10, 1000) }
	corrupt := func(t *testing.T) []byte {
		b := good(t)
		b[len(b)-1] ^= 0xFF // breaks the CRC
		return b
	}
	twoBatches := func(t *testing.T) []byte { return append(good(t), good(t)...) }
	zstd := func(t *testing.T) []byte {
		b, err := batch.BuildBatch(batch.BuildOptions{Codec: batch.CodecZstd, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
			[]batch.Record{{Value: []byte("z")}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name    string
		version int16
		acks    int16
		topic   string
		part    int32
		records func(*testing.T) []byte
		setup   func(*dpBackend)
		code    int16
		msg     string // substring of the error message (v8+)
	}{
		{name: "invalid-acks", version: 9, acks: 2, topic: "t", records: good, code: kerr.InvalidRequiredAcks.Code},
		{name: "unknown-topic", version: 9, acks: 1, topic: "nope", records: good, code: kerr.UnknownTopicOrPartition.Code},
		{name: "unknown-partition", version: 9, acks: 1, topic: "t", part: 5, records: good, code: kerr.UnknownTopicOrPartition.Code},
		{name: "unknown-topic-id", version: 13, acks: 1, topic: "nope", records: good, code: kerr.UnknownTopicID.Code},
		{name: "not-leader", version: 9, acks: 1, topic: "t", records: good, code: kerr.NotLeaderForPartition.Code,
			setup: func(b *dpBackend) { b.setLeader("t", 0, 2, 1) }},
		{name: "empty-records", version: 9, acks: 1, topic: "t", records: func(*testing.T) []byte { return nil },
			code: kerr.InvalidRecord.Code, msg: "at least one record batch"},
		{name: "corrupt", version: 8, acks: 1, topic: "t", records: corrupt, code: kerr.CorruptMessage.Code, msg: "crc"},
		{name: "corrupt-v7-no-message", version: 7, acks: 1, topic: "t", records: corrupt, code: kerr.CorruptMessage.Code},
		{name: "truncated", version: 9, acks: 1, topic: "t", records: func(t *testing.T) []byte { return good(t)[:40] },
			code: kerr.CorruptMessage.Code},
		{name: "two-batches", version: 9, acks: 1, topic: "t", records: twoBatches, code: kerr.InvalidRecord.Code, msg: "exactly one"},
		{name: "too-large", version: 9, acks: 1, topic: "t", records: func(t *testing.T) []byte { return testBatch(t, 1, 5000, 1000) },
			setup: func(b *dpBackend) { b.part("t", 0).opts.MaxBatchBytes = 1000 }, code: kerr.MessageTooLarge.Code},
		{name: "zstd-before-v7", version: 6, acks: 1, topic: "t", records: zstd, code: kerr.UnsupportedCompressionType.Code},
		{name: "zstd-v7", version: 7, acks: 1, topic: "t", records: zstd, code: 0},
		{name: "old-magic", version: 9, acks: 1, topic: "t", records: func(t *testing.T) []byte {
			b := good(t)
			b[16] = 1 // magic
			return b
		}, code: kerr.InvalidRecord.Code},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newDPBackend(t, map[string]int{"t": 1})
			if tt.setup != nil {
				tt.setup(b)
			}
			s := newDPServer(b)
			sp := producePartition(t, dpCall(t, s, produceReq(tt.version, tt.acks, tt.topic, map[int32][]byte{tt.part: tt.records(t)})))
			if sp.ErrorCode != tt.code {
				t.Fatalf("code %d (%v), want %d", sp.ErrorCode, kerr.ErrorForCode(sp.ErrorCode), tt.code)
			}
			if tt.code != 0 && sp.BaseOffset != -1 {
				t.Fatalf("failed partition has base offset %d, want -1", sp.BaseOffset)
			}
			if tt.msg != "" {
				if sp.ErrorMessage == nil || !strings.Contains(strings.ToLower(*sp.ErrorMessage), tt.msg) {
					t.Fatalf("error message %v does not mention %q", sp.ErrorMessage, tt.msg)
				}
			}
			if tt.version < 8 && sp.ErrorMessage != nil {
				t.Fatalf("v%d carries an error message", tt.version)
			}
			if tt.code != 0 && b.part("t", 0).log.EndOffset() != 0 {
				t.Fatal("a rejected produce was appended")
			}
		})
	}
}

// TestProduceNotLeaderHints checks KIP-951's leader hints from v10 on.
func TestProduceNotLeaderHints(t *testing.T) {
	for _, v := range []int16{9, 10, 13} {
		b := newDPBackend(t, map[string]int{"t": 1})
		b.setLeader("t", 0, 2, 4)
		s := newDPServer(b)
		res := dpCall(t, s, produceReq(v, -1, "t", map[int32][]byte{0: testBatch(t, 1, 1, 1)}))
		resp := res.resp.(*kmsg.ProduceResponse)
		sp := resp.Topics[0].Partitions[0]
		if sp.ErrorCode != kerr.NotLeaderForPartition.Code {
			t.Fatalf("v%d: code %d", v, sp.ErrorCode)
		}
		if v < 10 {
			if sp.CurrentLeader.LeaderID != -1 || len(resp.Brokers) != 0 {
				t.Fatalf("v%d: hints before v10: %+v %+v", v, sp.CurrentLeader, resp.Brokers)
			}
			continue
		}
		if sp.CurrentLeader.LeaderID != 2 || sp.CurrentLeader.LeaderEpoch != 4 {
			t.Fatalf("v%d: current leader %+v", v, sp.CurrentLeader)
		}
		if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 2 || resp.Brokers[0].Host != "10.0.0.2" {
			t.Fatalf("v%d: brokers %+v", v, resp.Brokers)
		}
	}
}

// TestProduceAcksZeroErrorClosesConnection: with acks=0 the client gets no
// answer, so a failure is signalled by closing the connection, as Kafka
// does.
func TestProduceAcksZeroErrorClosesConnection(t *testing.T) {
	b := newDPBackend(t, map[string]int{"t": 1})
	s := newDPServer(b)
	res := dpCall(t, s, produceReq(9, 0, "nope", map[int32][]byte{0: testBatch(t, 1, 1, 1)}))
	if res.resp != nil || !res.closeConn {
		t.Fatalf("got resp %v close %v, want no response and close", res.resp, res.closeConn)
	}
}

// TestProduceManyPartitions answers every partition of a multi-topic
// request, in request order, with the actor results matched by tag.
func TestProduceManyPartitions(t *testing.T) {
	b := newDPBackend(t, map[string]int{"a": 3, "b": 2})
	s := newDPServer(b)
	req := produceReq(9, -1, "a", map[int32][]byte{0: testBatch(t, 1, 1, 1), 1: testBatch(t, 2, 1, 1), 2: testBatch(t, 3, 1, 1)})
	other := produceReq(9, -1, "b", map[int32][]byte{1: testBatch(t, 4, 1, 1), 7: testBatch(t, 1, 1, 1)})
	req.Topics = append(req.Topics, other.Topics...)
	// Pre-fill a-2 so its base offset differs.
	b.part("a", 2).append(t, testBatch(t, 5, 1, 1))
	resp := dpCall(t, s, req).resp.(*kmsg.ProduceResponse)
	type want struct {
		topic string
		part  int32
		code  int16
		base  int64
	}
	var got []want
	for _, st := range resp.Topics {
		for _, sp := range st.Partitions {
			got = append(got, want{st.Topic, sp.Partition, sp.ErrorCode, sp.BaseOffset})
		}
	}
	expected := []want{{"a", 0, 0, 0}, {"a", 1, 0, 0}, {"a", 2, 0, 5}, {"b", 1, 0, 0}, {"b", 7, kerr.UnknownTopicOrPartition.Code, -1}}
	if !slices.Equal(got, expected) {
		t.Fatalf("got %+v\nwant %+v", got, expected)
	}
}

// TestProduceTimesOut: an actor that does not answer within the wait gets
// REQUEST_TIMED_OUT for its partition; the others are answered normally.
func TestProduceTimesOut(t *testing.T) {
	old := produceWaitFloor
	produceWaitFloor = 50 * time.Millisecond
	defer func() { produceWaitFloor = old }()
	b := newDPBackend(t, map[string]int{"t": 2})
	b.part("t", 1).setHold(true)
	s := newDPServer(b)
	req := produceReq(9, -1, "t", map[int32][]byte{0: testBatch(t, 1, 1, 1), 1: testBatch(t, 1, 1, 1)})
	req.TimeoutMillis = 10
	resp := dpCall(t, s, req).resp.(*kmsg.ProduceResponse)
	if c := resp.Topics[0].Partitions[0].ErrorCode; c != 0 {
		t.Fatalf("partition 0: code %d", c)
	}
	if sp := resp.Topics[0].Partitions[1]; sp.ErrorCode != kerr.RequestTimedOut.Code || sp.BaseOffset != -1 {
		t.Fatalf("partition 1: %+v", sp)
	}
	b.part("t", 1).setHold(false) // the late answer goes to a buffered channel nobody reads
}

// TestProduceInternalTopic: only the admin client id may write to internal
// topics.
func TestProduceInternalTopic(t *testing.T) {
	b := newDPBackend(t, nil)
	b.mu.Lock()
	b.apply(metadataInternalTopic("__consumer_offsets"))
	b.mu.Unlock()
	s := newDPServer(b)
	sp := producePartition(t, dpCall(t, s, produceReq(9, 1, "__consumer_offsets", map[int32][]byte{0: testBatch(t, 1, 1, 1)})))
	if sp.ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("code %d, want INVALID_TOPIC_EXCEPTION", sp.ErrorCode)
	}
}

// TestProduceWithKgo produces through a real client with each acks
// setting and reads everything back.
func TestProduceWithKgo(t *testing.T) {
	b := newDPBackend(t, map[string]int{"t": 2})
	_, addr := startDPServer(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	total := 0
	for _, acks := range []kgo.Acks{kgo.AllISRAcks(), kgo.LeaderAck(), kgo.NoAck()} {
		opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.RequiredAcks(acks), kgo.DefaultProduceTopic("t"),
			kgo.RecordPartitioner(kgo.RoundRobinPartitioner())}
		if acks != kgo.AllISRAcks() {
			opts = append(opts, kgo.DisableIdempotentWrite())
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			r := &kgo.Record{Value: binary.BigEndian.AppendUint32(nil, uint32(i))}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("acks %v: produce %d: %v", acks, i, err)
			}
		}
		cl.Close()
		total += 20
	}
	eventually := time.Now().Add(5 * time.Second)
	for {
		got := b.part("t", 0).log.EndOffset() + b.part("t", 1).log.EndOffset()
		if got == int64(total) {
			break
		}
		if time.Now().After(eventually) {
			t.Fatalf("logs hold %d records, want %d", got, total)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
