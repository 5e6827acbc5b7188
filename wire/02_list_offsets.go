package wire

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors"
)

// ListOffsets v1-v10. v0 (the old multi-offset shape) is not served. The
// special timestamps, answered as a broker without tiered storage answers
// them:
//
//	-2 earliest (log start)      -1 latest (high watermark; the LSO under
//	-3 largest timestamp (v7+)      read_committed, which is the same
//	-4 earliest local (v8+):        until transactions exist)
//	   the log start             -5 latest tiered (v9+): -1, nothing tiered
//
// A special timestamp below the version that introduced it, or any other
// negative one, is UNSUPPORTED_VERSION for that partition (as Kafka's
// ReplicaManager does); a partition listed twice is INVALID_REQUEST.
// v10 adds only a timeout for remote-storage lookups, which never happen.
func init() { register(2, 1, 10, handleListOffsets) }

// listOffsetsWait bounds the wait for partition actors.
const listOffsetsWait = 30 * time.Second

// listOffsetsMinVersion is the first version allowed to send each special
// timestamp.
func listOffsetsMinVersion(ts int64) (int16, bool) {
	switch ts {
	case -1, -2:
		return 1, true
	case -3:
		return 7, true
	case -4:
		return 8, true
	case -5:
		return 9, true
	}
	return 0, false
}

func handleListOffsets(s *Server, req *request) reply {
	kreq, ok := req.kreq.(*kmsg.ListOffsetsRequest)
	if !ok {
		return reply{closeConn: true}
	}
	img := s.b.Image()
	resp := kreq.ResponseKind().(*kmsg.ListOffsetsResponse)
	n := 0
	for i := range kreq.Topics {
		n += len(kreq.Topics[i].Partitions)
	}
	parts := make([]kmsg.ListOffsetsResponseTopicPartition, n)
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, len(kreq.Topics))
	dup := duplicatePartitions(kreq)
	readCommitted := kreq.IsolationLevel == 1

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
			sp.Default()
			sp.Partition = rp.Partition
			if dup != nil && dup[tp{rt.Topic, rp.Partition}] {
				sp.ErrorCode = kerr.InvalidRequest.Code
				continue
			}
			if rp.Timestamp < 0 {
				if minV, ok := listOffsetsMinVersion(rp.Timestamp); !ok || kreq.Version < minV {
					sp.ErrorCode = kerr.UnsupportedVersion.Code
					continue
				}
			}
			if topic == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			// Fencing comes before leadership, as in Kafka.
			if code := checkLeaderEpoch(imagePartition(topic, rp.Partition), rp.CurrentLeaderEpoch); code != 0 {
				sp.ErrorCode = code
				continue
			}
			p, code := lookupPartition(s.b, topic, rp.Partition)
			if p == nil {
				sp.ErrorCode = code
				continue
			}
			ts := rp.Timestamp
			switch ts {
			case -5:
				continue // nothing is tiered: offset, timestamp, epoch stay -1
			case -4:
				ts = -2 // all of the log is local
			}
			if results == nil {
				results = make(chan actors.ListOffsetsResult, n)
			}
			p.ListOffsets(actors.ListOffsetsRequest{Timestamp: ts, ReadCommitted: readCommitted, Tag: tag, Reply: results})
			sp.Offset = listOffsetsPending
			sent++
		}
	}
	if sent == 0 {
		return reply{resp: resp}
	}
	return reply{await: func() reply {
		collectListOffsets(parts, results, sent)
		return reply{resp: resp}
	}}
}

// listOffsetsPending marks, in Offset, a partition whose actor has not
// answered yet.
const listOffsetsPending = -3

func collectListOffsets(parts []kmsg.ListOffsetsResponseTopicPartition, results <-chan actors.ListOffsetsResult, sent int) {
	collectTagged(results, sent, listOffsetsWait, func(r actors.ListOffsetsResult) {
		if r.Tag < 0 || r.Tag >= len(parts) || parts[r.Tag].Offset != listOffsetsPending {
			return
		}
		sp := &parts[r.Tag]
		sp.ErrorCode = r.ErrorCode
		sp.Offset, sp.Timestamp, sp.LeaderEpoch = r.Offset, r.Timestamp, r.LeaderEpoch
		if r.ErrorCode != 0 || r.Offset < 0 {
			// Failed, or no record is that new: Kafka leaves all three
			// unknown.
			sp.Offset, sp.Timestamp, sp.LeaderEpoch = -1, -1, -1
		}
	}, func() {
		for i := range parts {
			if parts[i].Offset == listOffsetsPending {
				parts[i].Offset = -1
				parts[i].ErrorCode = kerr.RequestTimedOut.Code
			}
		}
	})
}

// tp names a topic partition.
type tp struct {
	topic     string
	partition int32
}

// duplicatePartitions returns the partitions a ListOffsets request names
// more than once, or nil when there are none.
func duplicatePartitions(kreq *kmsg.ListOffsetsRequest) map[tp]bool {
	n := 0
	for i := range kreq.Topics {
		n += len(kreq.Topics[i].Partitions)
	}
	if n < 2 {
		return nil
	}
	seen := make(map[tp]bool, n)
	var dup map[tp]bool
	for ti := range kreq.Topics {
		for pi := range kreq.Topics[ti].Partitions {
			k := tp{kreq.Topics[ti].Topic, kreq.Topics[ti].Partitions[pi].Partition}
			if seen[k] {
				if dup == nil {
					dup = make(map[tp]bool)
				}
				dup[k] = true
			}
			seen[k] = true
		}
	}
	return dup
}
