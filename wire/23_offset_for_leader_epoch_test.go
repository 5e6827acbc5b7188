package wire

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/batch"
)

type epochAt struct {
	topic   string
	part    int32
	epoch   int32 // LeaderEpoch asked about
	current int32 // CurrentLeaderEpoch; 0 means -1
}

func offsetForLeaderEpochReq(version int16, parts ...epochAt) *kmsg.OffsetForLeaderEpochRequest {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version = version
	for _, p := range parts {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != p.topic {
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = p.topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.LeaderEpoch = p.part, p.epoch
		if p.current != 0 {
			rp.CurrentLeaderEpoch = p.current
		}
		rt := &req.Topics[len(req.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	return req
}

// TestOffsetForLeaderEpoch checks the answers at every version: the
// handler routes each partition to its actor, which answers from the
// log's epoch history (the fake: partlog's EndOffsetForEpoch, plus its
// current epoch ending at the log end).
func TestOffsetForLeaderEpoch(t *testing.T) {
	b := newDPBackend(t, map[string]int{"t": 2, "u": 1})
	b.part("t", 0).append(t, testBatch(t, 4, 1, 1))
	b.setLeader("u", 0, dpNodeID, 3)
	// u's history: epoch 1 wrote offsets 0-1, epoch 2 offsets 2-4.
	for _, e := range []struct {
		epoch int32
		n     int
	}{{1, 2}, {2, 3}} {
		rb := testBatch(t, e.n, 1, 1)
		batch.SetPartitionLeaderEpoch(rb, e.epoch)
		b.part("u", 0).append(t, rb)
	}
	s := newDPServer(b)
	type want struct {
		code  int16
		epoch int32
		end   int64
	}
	tests := []struct {
		name string
		at   epochAt
		minV int16 // first version the answer holds for (fencing needs v2)
		want want
	}{
		{name: "current-epoch", at: epochAt{topic: "t", epoch: 0}, want: want{0, 0, 4}},
		{name: "empty-partition", at: epochAt{topic: "t", part: 1, epoch: 0}, want: want{0, 0, 0}},
		{name: "older-epoch", at: epochAt{topic: "u", epoch: 1}, want: want{0, 1, 2}},
		{name: "latest-in-history", at: epochAt{topic: "u", epoch: 2}, want: want{0, 2, 5}},
		{name: "below-history", at: epochAt{topic: "u", epoch: 0}, want: want{0, 0, 0}},
		{name: "leader-epoch", at: epochAt{topic: "u", epoch: 3}, want: want{0, 3, 5}},
		{name: "newer-epoch", at: epochAt{topic: "u", epoch: 4}, want: want{0, -1, -1}},
		{name: "undefined-epoch", at: epochAt{topic: "u", epoch: -1}, want: want{0, -1, -1}},
		{name: "unknown-topic", at: epochAt{topic: "nope"}, want: want{kerr.UnknownTopicOrPartition.Code, -1, -1}},
		{name: "unknown-partition", at: epochAt{topic: "t", part: 7}, want: want{kerr.UnknownTopicOrPartition.Code, -1, -1}},
		{name: "fenced", at: epochAt{topic: "u", epoch: 3, current: 2}, minV: 2, want: want{kerr.FencedLeaderEpoch.Code, -1, -1}},
		{name: "unknown-current", at: epochAt{topic: "u", epoch: 3, current: 4}, minV: 2, want: want{kerr.UnknownLeaderEpoch.Code, -1, -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for v := max(tt.minV, 0); v <= 4; v++ {
				resp := dpCall(t, s, offsetForLeaderEpochReq(v, tt.at)).resp.(*kmsg.OffsetForLeaderEpochResponse)
				sp := resp.Topics[0].Partitions[0]
				w := tt.want
				if v < 1 {
					w.epoch = -1 // not in the protocol yet
				}
				if sp.Partition != tt.at.part || sp.ErrorCode != w.code || sp.LeaderEpoch != w.epoch || sp.EndOffset != w.end {
					t.Fatalf("v%d: got code %d epoch %d end %d, want %+v", v, sp.ErrorCode, sp.LeaderEpoch, sp.EndOffset, w)
				}
			}
		})
	}
	// Not the leader.
	b.setLeader("t", 1, 2, 1)
	resp := dpCall(t, s, offsetForLeaderEpochReq(4, epochAt{topic: "t", part: 1, epoch: 1})).resp.(*kmsg.OffsetForLeaderEpochResponse)
	if c := resp.Topics[0].Partitions[0].ErrorCode; c != kerr.NotLeaderForPartition.Code {
		t.Fatalf("not leader: code %d", c)
	}
}
