package wire

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/metadata"
)

func init() { register(43, 0, 2, handleElectLeaders) }

// handleElectLeaders runs preferred (v0: always) or unclean leader
// elections on the active controller, through the Backend, and answers
// one result per partition.
//
// Null topics mean every partition; then, as Kafka does, only the
// partitions that needed an election are answered — whatever the Backend
// returns, ELECTION_NOT_NEEDED results are dropped here. A failure of the
// whole call (or an unknown election type) is the top-level error (v1+)
// and, as Kafka's error response has it, every requested partition's
// error too, so that v0 clients see it.
func handleElectLeaders(s *Server, req *request) reply {
	kreq := req.kreq.(*kmsg.ElectLeadersRequest)
	resp := kreq.ResponseKind().(*kmsg.ElectLeadersResponse)

	typ := metadata.ElectPreferred
	if req.version >= 1 {
		typ = metadata.ElectionType(kreq.ElectionType)
	}
	if typ != metadata.ElectPreferred && typ != metadata.ElectUnclean {
		return electLeadersError(kreq, resp, fmt.Errorf("unknown election type %d: %w", kreq.ElectionType, kerr.InvalidRequest))
	}

	all := kreq.Topics == nil
	var parts []metadata.TopicPartition
	if !all {
		// Non-nil even when empty: a nil list asks the Backend for
		// every partition.
		parts = make([]metadata.TopicPartition, 0, len(kreq.Topics))
		for _, t := range kreq.Topics {
			for _, p := range t.Partitions {
				parts = append(parts, metadata.TopicPartition{Topic: t.Topic, Partition: p})
			}
		}
		if len(parts) == 0 {
			return respond(resp)
		}
	}

	ctx, cancel := adminContext(req, kreq.TimeoutMillis)
	results, err := s.b.ElectLeaders(ctx, typ, parts)
	cancel()
	if err != nil {
		return electLeadersError(kreq, resp, err)
	}

	// Results are grouped by topic, topics in the order they first
	// appear; topicAt indexes resp.Topics by name.
	topicAt := map[string]int{}
	for _, r := range results {
		if all && errors.Is(r.Err, kerr.ElectionNotNeeded) {
			continue
		}
		i, ok := topicAt[r.Topic]
		if !ok {
			i = len(resp.Topics)
			topicAt[r.Topic] = i
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = r.Topic
			resp.Topics = append(resp.Topics, rt)
		}
		rp := kmsg.NewElectLeadersResponseTopicPartition()
		rp.Partition = r.Partition
		rp.ErrorCode = errCode(r.Err)
		rp.ErrorMessage = errMessage(r.Err)
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, rp)
	}
	return respond(resp)
}

// electLeadersError answers every requested partition, and the request
// as a whole (v1+), with err.
func electLeadersError(kreq *kmsg.ElectLeadersRequest, resp *kmsg.ElectLeadersResponse, err error) reply {
	resp.ErrorCode = errCode(err)
	for _, t := range kreq.Topics {
		rt := kmsg.NewElectLeadersResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.ElectLeadersResponseTopicPartition, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			rp := kmsg.NewElectLeadersResponseTopicPartition()
			rp.Partition = p
			rp.ErrorCode = errCode(err)
			rp.ErrorMessage = errMessage(err)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return respond(resp)
}
