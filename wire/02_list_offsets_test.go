package wire

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type listAt struct {
	topic string
	part  int32
	ts    int64
	epoch int32 // CurrentLeaderEpoch; 0 means -1
}

func listOffsetsReq(version int16, isolation int8, parts ...listAt) *kmsg.ListOffsetsRequest {
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = version
	req.IsolationLevel = isolation
	for _, p := range parts {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != p.topic {
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = p.topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p.part, p.ts
		if p.epoch != 0 {
			rp.CurrentLeaderEpoch = p.epoch
		}
		rt := &req.Topics[len(req.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	return req
}

// TestListOffsets resolves every kind of timestamp at every version.
func TestListOffsets(t *testing.T) {
	b := newDPBackend(t, map[string]int{"t": 1, "empty": 1})
	s := newDPServer(b)
	p := b.part("t", 0)
	p.append(t, testBatch(t, 3, 5, 1000)) // offsets 0-2, timestamps 1000-1002
	p.append(t, testBatch(t, 2, 5, 5000)) // offsets 3-4, timestamps 5000-5001
	p.append(t, testBatch(t, 2, 5, 3000)) // offsets 5-6, timestamps 3000-3001
	p.logStart = 1

	type want struct {
		code      int16
		offset    int64
		timestamp int64
	}
	tests := []struct {
		name  string
		at    listAt
		minV  int16 // first version the answer holds for
		want  want
		below want // the answer before minV
	}{
		{name: "earliest", at: listAt{topic: "t", ts: -2}, minV: 1, want: want{0, 1, -1}},
		{name: "latest", at: listAt{topic: "t", ts: -1}, minV: 1, want: want{0, 7, -1}},
		{name: "max-timestamp", at: listAt{topic: "t", ts: -3}, minV: 7, want: want{0, 4, 5001},
			below: want{kerr.UnsupportedVersion.Code, -1, -1}},
		{name: "earliest-local", at: listAt{topic: "t", ts: -4}, minV: 8, want: want{0, 1, -1},
			below: want{kerr.UnsupportedVersion.Code, -1, -1}},
		{name: "latest-tiered", at: listAt{topic: "t", ts: -5}, minV: 9, want: want{0, -1, -1},
			below: want{kerr.UnsupportedVersion.Code, -1, -1}},
		{name: "undefined-special", at: listAt{topic: "t", ts: -7}, minV: 99, below: want{kerr.UnsupportedVersion.Code, -1, -1}},
		{name: "by-time", at: listAt{topic: "t", ts: 2000}, minV: 1, want: want{0, 3, 5000}},
		{name: "by-time-exact", at: listAt{topic: "t", ts: 1001}, minV: 1, want: want{0, 1, 1001}},
		{name: "by-time-none", at: listAt{topic: "t", ts: 9000}, minV: 1, want: want{0, -1, -1}},
		{name: "empty-latest", at: listAt{topic: "empty", ts: -1}, minV: 1, want: want{0, 0, -1}},
		{name: "unknown-topic", at: listAt{topic: "nope", ts: -1}, minV: 1, want: want{kerr.UnknownTopicOrPartition.Code, -1, -1}},
		{name: "unknown-partition", at: listAt{topic: "t", part: 3, ts: -1}, minV: 1, want: want{kerr.UnknownTopicOrPartition.Code, -1, -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for v := int16(1); v <= 10; v++ {
				w := tt.want
				if v < tt.minV {
					w = tt.below
				}
				resp := dpCall(t, s, listOffsetsReq(v, 0, tt.at)).resp.(*kmsg.ListOffsetsResponse)
				sp := resp.Topics[0].Partitions[0]
				if resp.Topics[0].Topic != tt.at.topic || sp.Partition != tt.at.part {
					t.Fatalf("v%d: answered %s-%d", v, resp.Topics[0].Topic, sp.Partition)
				}
				if sp.ErrorCode != w.code || sp.Offset != w.offset || sp.Timestamp != w.timestamp {
					t.Fatalf("v%d: got code %d offset %d ts %d, want %+v", v, sp.ErrorCode, sp.Offset, sp.Timestamp, w)
				}
				wantEpoch := int32(-1)
				if v >= 4 && w.code == 0 && w.offset >= 0 {
					wantEpoch = 0
				}
				if sp.LeaderEpoch != wantEpoch {
					t.Fatalf("v%d: leader epoch %d, want %d", v, sp.LeaderEpoch, wantEpoch)
				}
			}
		})
	}
}

// TestListOffsetsChecks covers fencing, leadership, duplicates and the
// many-partition mapping of answers.
func TestListOffsetsChecks(t *testing.T) {
	b := newDPBackend(t, map[string]int{"t": 3})
	b.part("t", 1).append(t, testBatch(t, 4, 1, 1))
	b.setLeader("t", 0, dpNodeID, 5)
	b.setLeader("t", 2, 2, 1)
	s := newDPServer(b)
	resp := dpCall(t, s, listOffsetsReq(7, 0,
		listAt{topic: "t", part: 0, ts: -1, epoch: 4},
		listAt{topic: "t", part: 0, ts: -1, epoch: 6},
		listAt{topic: "t", part: 1, ts: -1},
		listAt{topic: "t", part: 2, ts: -1},
	)).resp.(*kmsg.ListOffsetsResponse)
	codes := []int16{}
	for _, sp := range resp.Topics[0].Partitions {
		codes = append(codes, sp.ErrorCode)
	}
	// Partition 0 is listed twice: both are INVALID_REQUEST, before any
	// epoch check.
	want := []int16{kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, 0, kerr.NotLeaderForPartition.Code}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("codes %v, want %v", codes, want)
		}
	}
	if off := resp.Topics[0].Partitions[2].Offset; off != 4 {
		t.Fatalf("partition 1 latest %d, want 4", off)
	}

	for _, tc := range []struct {
		epoch int32
		code  int16
	}{{4, kerr.FencedLeaderEpoch.Code}, {6, kerr.UnknownLeaderEpoch.Code}, {5, 0}} {
		resp := dpCall(t, s, listOffsetsReq(4, 0, listAt{topic: "t", part: 0, ts: -1, epoch: tc.epoch})).resp.(*kmsg.ListOffsetsResponse)
		if c := resp.Topics[0].Partitions[0].ErrorCode; c != tc.code {
			t.Fatalf("epoch %d: code %d, want %d", tc.epoch, c, tc.code)
		}
	}
	// read_committed latest is the last stable offset, which equals the
	// high watermark here.
	resp = dpCall(t, s, listOffsetsReq(5, 1, listAt{topic: "t", part: 1, ts: -1})).resp.(*kmsg.ListOffsetsResponse)
	if sp := resp.Topics[0].Partitions[0]; sp.ErrorCode != 0 || sp.Offset != 4 {
		t.Fatalf("read_committed latest: %+v", sp)
	}
}
