package wire

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/metadata"
)

func init() { register(46, 0, 0, handleListPartitionReassignments) }

// handleListPartitionReassignments lists the reassignments in progress:
// all of them for null topics, else those of the requested partitions.
// As in Kafka, partitions (and topics) that are not being reassigned, or
// do not exist, are simply left out, and a topic appears only with at
// least one partition.
func handleListPartitionReassignments(s *Server, req *request) reply {
	kreq := req.kreq.(*kmsg.ListPartitionReassignmentsRequest)
	resp := kreq.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)

	if kreq.Topics != nil && !anyPartition(kreq.Topics) {
		return respond(resp)
	}
	ctx, cancel := adminContext(req, kreq.TimeoutMillis)
	list, err := s.b.ListPartitionReassignments(ctx)
	cancel()
	if err != nil {
		resp.ErrorCode = errCode(err)
		resp.ErrorMessage = errMessage(err)
		return respond(resp)
	}

	var wanted map[metadata.TopicPartition]bool // nil: everything
	if kreq.Topics != nil {
		wanted = make(map[metadata.TopicPartition]bool)
		for _, t := range kreq.Topics {
			for _, p := range t.Partitions {
				wanted[metadata.TopicPartition{Topic: t.Topic, Partition: p}] = true
			}
		}
	}
	topicAt := map[string]int{}
	for _, r := range list {
		if wanted != nil && !wanted[metadata.TopicPartition{Topic: r.Topic, Partition: r.Partition}] {
			continue
		}
		i, ok := topicAt[r.Topic]
		if !ok {
			i = len(resp.Topics)
			topicAt[r.Topic] = i
			rt := kmsg.NewListPartitionReassignmentsResponseTopic()
			rt.Topic = r.Topic
			resp.Topics = append(resp.Topics, rt)
		}
		rp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		rp.Partition = r.Partition
		rp.Replicas = r.Replicas
		rp.AddingReplicas = r.AddingReplicas
		rp.RemovingReplicas = r.RemovingReplicas
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, rp)
	}
	return respond(resp)
}

func anyPartition(topics []kmsg.ListPartitionReassignmentsRequestTopic) bool {
	for _, t := range topics {
		if len(t.Partitions) > 0 {
			return true
		}
	}
	return false
}
