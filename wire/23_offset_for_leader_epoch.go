package wire

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors"
)

// OffsetForLeaderEpoch v0-v4. Consumers call it after a leader change, or
// when resuming from a committed position, to check that the log was not
// truncated under them (KIP-320): they send the leader epoch of the last
// record they consumed, and the broker answers the largest epoch at or
// below it and where that epoch ended.
//
// Troupe keeps no epoch history per partition, so it answers:
//
//	requested epoch undefined (-1) or above ours → epoch -1, end offset -1
//	                                               (Kafka's answer for an
//	                                               epoch it does not know)
//	otherwise → the requested epoch, ending at the high watermark
//
// For the current epoch this is exactly Kafka's answer. For an older epoch
// it says "nothing after your position was lost", which holds while
// partitions are never truncated (a single node; the replicated log never
// truncates committed records either).
//
// v1 adds the epoch to the answer, v2 CurrentLeaderEpoch fencing, v3 the
// replica id, v4 flexible encoding.
func init() { register(23, 0, 4, handleOffsetForLeaderEpoch) }

// offsetForLeaderEpochWait bounds the wait for partition actors.
const offsetForLeaderEpochWait = 30 * time.Second

// offsetForLeaderEpochPending marks, in EndOffset, a partition whose actor
// has not answered yet.
const offsetForLeaderEpochPending = -2

func handleOffsetForLeaderEpoch(s *Server, req *request) reply {
	kreq, ok := req.kreq.(*kmsg.OffsetForLeaderEpochRequest)
	if !ok {
		return reply{closeConn: true}
	}
	img := s.b.Image()
	resp := kreq.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	n := 0
	for i := range kreq.Topics {
		n += len(kreq.Topics[i].Partitions)
	}
	parts := make([]kmsg.OffsetForLeaderEpochResponseTopicPartition, n)
	resp.Topics = make([]kmsg.OffsetForLeaderEpochResponseTopic, len(kreq.Topics))

	var (
		results chan actors.ListOffsetsResult
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
			sp.Default() // epoch -1, end offset -1
			sp.Partition = rp.Partition
			mp := imagePartition(topic, rp.Partition)
			if mp == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			if code := checkLeaderEpoch(mp, rp.CurrentLeaderEpoch); code != 0 {
				sp.ErrorCode = code
				continue
			}
			p, code := lookupPartition(s.b, topic, rp.Partition)
			if p == nil {
				sp.ErrorCode = code
				continue
			}
			if rp.LeaderEpoch < 0 || rp.LeaderEpoch > mp.LeaderEpoch {
				continue // an epoch we do not know: -1, -1
			}
			if results == nil {
				results = make(chan actors.ListOffsetsResult, n)
			}
			p.ListOffsets(actors.ListOffsetsRequest{Timestamp: -1, Tag: tag, Reply: results})
			sp.LeaderEpoch = rp.LeaderEpoch
			sp.EndOffset = offsetForLeaderEpochPending
			sent++
		}
	}
	if sent == 0 {
		return reply{resp: resp}
	}
	return reply{await: func() reply {
		collectOffsetForLeaderEpoch(parts, results, sent)
		return reply{resp: resp}
	}}
}

func collectOffsetForLeaderEpoch(parts []kmsg.OffsetForLeaderEpochResponseTopicPartition, results <-chan actors.ListOffsetsResult, sent int) {
	collectTagged(results, sent, offsetForLeaderEpochWait, func(r actors.ListOffsetsResult) {
		if r.Tag < 0 || r.Tag >= len(parts) || parts[r.Tag].EndOffset != offsetForLeaderEpochPending {
			return
		}
		sp := &parts[r.Tag]
		sp.ErrorCode = r.ErrorCode
		sp.EndOffset = r.Offset
		if r.ErrorCode != 0 {
			sp.LeaderEpoch, sp.EndOffset = -1, -1
		}
	}, func() {
		for i := range parts {
			if parts[i].EndOffset == offsetForLeaderEpochPending {
				parts[i].LeaderEpoch, parts[i].EndOffset = -1, -1
				parts[i].ErrorCode = kerr.RequestTimedOut.Code
			}
		}
	})
}
