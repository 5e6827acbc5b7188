package wire

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors"
)

// OffsetForLeaderEpoch v0-v4. Consumers call it after a leader change, or
// when resuming from a committed position, to check that the log was not
// truncated under them (KIP-320); followers may call it to find where
// their log left the leader's. They send a leader epoch, and the leader
// answers the largest epoch at or below it that its log knows and the
// offset where that epoch ended — from the log's leader-epoch history
// (partlog's EpochEntries / EndOffsetForEpoch), plus the leader's own
// current epoch, which Kafka's epoch cache holds from the moment it leads
// (the partition actor combines the two):
//
//	the leader's current epoch      → (epoch, log end offset)
//	an older epoch in the history   → (largest epoch ≤ it, start of the next)
//	below the whole history         → (the epoch, start of the first entry)
//	undefined (-1) or above ours    → (-1, -1)
//
// Errors: UNKNOWN_TOPIC_OR_PARTITION; FENCED_LEADER_EPOCH and
// UNKNOWN_LEADER_EPOCH for a CurrentLeaderEpoch older or newer than the
// partition's (v2+); NOT_LEADER_OR_FOLLOWER from a follower, unless the
// requester is a debugging client (replica id -2, v3+), as in Kafka.
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
		results chan actors.EpochResult
		sent    int
		k       int
	)
	replicaID := int32(-1) // before v3 only consumers asked
	if kreq.Version >= 3 {
		replicaID = kreq.ReplicaID
	}
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
			// A follower is fenced by the partition's own epoch (the
			// actor checks it); a client also by this node's image, as
			// for its other requests.
			if replicaID < 0 {
				if code := checkLeaderEpoch(mp, rp.CurrentLeaderEpoch); code != 0 {
					sp.ErrorCode = code
					continue
				}
			}
			p, code := lookupPartition(s.b, topic, rp.Partition)
			if p == nil {
				sp.ErrorCode = code
				continue
			}
			if results == nil {
				results = make(chan actors.EpochResult, n)
			}
			p.OffsetForLeaderEpoch(actors.EpochRequest{
				LeaderEpoch: rp.LeaderEpoch, CurrentLeaderEpoch: rp.CurrentLeaderEpoch,
				ReplicaID: replicaID, Tag: tag, Reply: results,
			})
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

func collectOffsetForLeaderEpoch(parts []kmsg.OffsetForLeaderEpochResponseTopicPartition, results <-chan actors.EpochResult, sent int) {
	collectTagged(results, sent, offsetForLeaderEpochWait, func(r actors.EpochResult) {
		if r.Tag < 0 || r.Tag >= len(parts) || parts[r.Tag].EndOffset != offsetForLeaderEpochPending {
			return
		}
		sp := &parts[r.Tag]
		sp.ErrorCode, sp.LeaderEpoch, sp.EndOffset = r.ErrorCode, r.LeaderEpoch, r.EndOffset
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
