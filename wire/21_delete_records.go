package wire

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors"
)

// DeleteRecords v0-v2: move partitions' log start offsets up. An offset of
// -1 means the high watermark; the partition actor checks the range
// (OFFSET_OUT_OF_RANGE past the high watermark) and answers the new low
// watermark. v1 only changes throttling, v2 is flexible.
func init() { register(21, 0, 2, handleDeleteRecords) }

// deleteRecordsWaitFloor is the least time to wait for actors, whatever
// the request's timeout says (the deletion proceeds regardless).
const deleteRecordsWaitFloor = 5 * time.Second

// deleteRecordsPending marks, in LowWatermark, a partition whose actor has
// not answered yet.
const deleteRecordsPending = -2

func handleDeleteRecords(s *Server, req *request) reply {
	kreq, ok := req.kreq.(*kmsg.DeleteRecordsRequest)
	if !ok {
		return reply{closeConn: true}
	}
	img := s.b.Image()
	resp := kreq.ResponseKind().(*kmsg.DeleteRecordsResponse)
	n := 0
	for i := range kreq.Topics {
		n += len(kreq.Topics[i].Partitions)
	}
	parts := make([]kmsg.DeleteRecordsResponseTopicPartition, n)
	resp.Topics = make([]kmsg.DeleteRecordsResponseTopic, len(kreq.Topics))

	var (
		results chan actors.DeleteRecordsResult
		sent    int
		k       int
	)
	for ti := range kreq.Topics {
		rt := &kreq.Topics[ti]
		st := &resp.Topics[ti]
		st.Topic = rt.Topic
		st.Partitions = parts[k : k+len(rt.Partitions) : k+len(rt.Partitions)]
		topic := img.Topic(rt.Topic)
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			sp := &parts[k]
			tag := k
			k++
			sp.Default()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			if topic == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			p, code := lookupPartition(s.b, topic, rp.Partition)
			if p == nil {
				sp.ErrorCode = code
				continue
			}
			if results == nil {
				results = make(chan actors.DeleteRecordsResult, n)
			}
			p.DeleteRecords(actors.DeleteRecordsRequest{Offset: rp.Offset, Tag: tag, Reply: results})
			sp.LowWatermark = deleteRecordsPending
			sent++
		}
	}
	if sent == 0 {
		return reply{resp: resp}
	}
	wait := max(time.Duration(kreq.TimeoutMillis)*time.Millisecond, deleteRecordsWaitFloor)
	return reply{await: func() reply {
		collectDeleteRecords(parts, results, sent, wait)
		return reply{resp: resp}
	}}
}

func collectDeleteRecords(parts []kmsg.DeleteRecordsResponseTopicPartition, results <-chan actors.DeleteRecordsResult, sent int, wait time.Duration) {
	collectTagged(results, sent, wait, func(r actors.DeleteRecordsResult) {
		if r.Tag < 0 || r.Tag >= len(parts) || parts[r.Tag].LowWatermark != deleteRecordsPending {
			return
		}
		sp := &parts[r.Tag]
		sp.ErrorCode = r.ErrorCode
		sp.LowWatermark = r.LowWatermark
		if r.ErrorCode != 0 {
			sp.LowWatermark = -1
		}
	}, func() {
		for i := range parts {
			if parts[i].LowWatermark == deleteRecordsPending {
				parts[i].LowWatermark = -1
				parts[i].ErrorCode = kerr.RequestTimedOut.Code
			}
		}
	})
}
