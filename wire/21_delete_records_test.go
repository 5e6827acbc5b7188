package wire

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func deleteRecordsReq(version int16, topic string, offsets map[int32]int64, order ...int32) *kmsg.DeleteRecordsRequest {
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.Version = version
	req.TimeoutMillis = 1000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	for _, p := range order {
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = p, offsets[p]
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// TestDeleteRecords moves log start offsets at every version and checks
// that fetches below them fail afterwards.
func TestDeleteRecords(t *testing.T) {
	for v := int16(0); v <= 2; v++ {
		b := newDPBackend(t, map[string]int{"t": 3})
		b.setLeader("t", 2, 2, 1)
		s := newDPServer(b)
		for p := range int32(2) {
			b.part("t", p).append(t, testBatch(t, 5, 1, 1))
		}
		resp := dpCall(t, s, deleteRecordsReq(v, "t", map[int32]int64{0: 3, 1: -1, 2: 1, 9: 1}, 0, 1, 2, 9)).resp.(*kmsg.DeleteRecordsResponse)
		type got struct {
			part int32
			code int16
			low  int64
		}
		want := []got{{0, 0, 3}, {1, 0, 5}, {2, kerr.NotLeaderForPartition.Code, -1}, {9, kerr.UnknownTopicOrPartition.Code, -1}}
		for i, sp := range resp.Topics[0].Partitions {
			if g := (got{sp.Partition, sp.ErrorCode, sp.LowWatermark}); g != want[i] {
				t.Fatalf("v%d: partition answer %d: %+v, want %+v", v, i, g, want[i])
			}
		}
		// Past the high watermark is out of range.
		resp = dpCall(t, s, deleteRecordsReq(v, "t", map[int32]int64{0: 6}, 0)).resp.(*kmsg.DeleteRecordsResponse)
		if sp := resp.Topics[0].Partitions[0]; sp.ErrorCode != kerr.OffsetOutOfRange.Code || sp.LowWatermark != -1 {
			t.Fatalf("v%d: past the end: %+v", v, sp)
		}
		// Fetching below the new start fails; at it succeeds.
		fr := dpFetch(t, s, fetchReq(11, fetchAt{topic: "t", part: 0, offset: 2}))
		if sp := fr.Topics[0].Partitions[0]; sp.ErrorCode != kerr.OffsetOutOfRange.Code || sp.LogStartOffset != 3 {
			t.Fatalf("v%d: fetch below start: %+v", v, sp)
		}
		lr := dpCall(t, s, listOffsetsReq(1, 0, listAt{topic: "t", part: 0, ts: -2})).resp.(*kmsg.ListOffsetsResponse)
		if off := lr.Topics[0].Partitions[0].Offset; off != 3 {
			t.Fatalf("v%d: earliest after delete %d", v, off)
		}
	}
	// An unknown topic.
	b := newDPBackend(t, nil)
	resp := dpCall(t, newDPServer(b), deleteRecordsReq(1, "nope", map[int32]int64{0: 1}, 0)).resp.(*kmsg.DeleteRecordsResponse)
	if c := resp.Topics[0].Partitions[0].ErrorCode; c != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: code %d", c)
	}
}
