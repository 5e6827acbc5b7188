package wire

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit v0-v10: commit a group's consumed offsets. The group's
// coordinator actor validates the member and generation (or, for a
// KIP-848 group, the member epoch), the topics — v10 names them by topic
// id, which the actor resolves — and the metadata size, and answers once
// the commit is in the offsets topic. An empty group id is accepted, as
// Kafka keeps accepting it for old clients' offset storage.
func init() { register(8, 0, 10, handleOffsetCommit) }

func handleOffsetCommit(s *Server, req *request) reply {
	kreq, ok := req.kreq.(*kmsg.OffsetCommitRequest)
	if !ok {
		return reply{closeConn: true}
	}
	fail := func(code int16, _ *string) *kmsg.OffsetCommitResponse {
		return offsetCommitError(kreq, code)
	}
	return singleGroup(s, req, kreq.Group, kreq, waitBounded, fail)
}

// offsetCommitError answers every partition of the request with code, as
// Kafka answers a commit that reached no group.
func offsetCommitError(kreq *kmsg.OffsetCommitRequest, code int16) *kmsg.OffsetCommitResponse {
	resp := kreq.ResponseKind().(*kmsg.OffsetCommitResponse)
	n := 0
	for i := range kreq.Topics {
		n += len(kreq.Topics[i].Partitions)
	}
	parts := make([]kmsg.OffsetCommitResponseTopicPartition, n)
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(kreq.Topics))
	k := 0
	for i := range kreq.Topics {
		rt := &kreq.Topics[i]
		st := &resp.Topics[i]
		st.Default()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		st.Partitions = parts[k : k+len(rt.Partitions) : k+len(rt.Partitions)]
		for j := range rt.Partitions {
			sp := &parts[k]
			k++
			sp.Default()
			sp.Partition, sp.ErrorCode = rt.Partitions[j].Partition, code
		}
	}
	return resp
}
