package wire

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/metadata"
)

// Only v0: v1 adds AllowReplicationFactorChange (Kafka 4.1), which the
// Backend has no way to enforce yet.
func init() { register(45, 0, 0, handleAlterPartitionReassignments) }

// handleAlterPartitionReassignments starts, changes or (null replicas)
// cancels partition reassignments on the active controller, through the
// Backend in one call. Each partition is answered with the Backend's
// error for it; whether a target is valid is the Backend's to judge. If
// the call as a whole fails, that error is the top-level one and every
// partition's, as in Kafka's error response.
func handleAlterPartitionReassignments(s *Server, req *request) reply {
	kreq := req.kreq.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := kreq.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)

	n := 0
	for _, t := range kreq.Topics {
		n += len(t.Partitions)
	}
	reqs := make([]metadata.Reassignment, 0, n)
	for _, t := range kreq.Topics {
		for _, p := range t.Partitions {
			// Replicas keeps the request's null (cancel) apart from
			// its empty list (an invalid target): kmsg decodes the
			// one as nil, the other as a non-nil empty slice.
			reqs = append(reqs, metadata.Reassignment{Topic: t.Topic, Partition: p.Partition, Replicas: p.Replicas})
		}
	}

	var (
		errs []error
		err  error
	)
	if len(reqs) > 0 {
		ctx, cancel := adminContext(req, kreq.TimeoutMillis)
		errs, err = s.b.AlterPartitionReassignments(ctx, reqs)
		cancel()
	}
	if err != nil {
		resp.ErrorCode = errCode(err)
		resp.ErrorMessage = errMessage(err)
	}

	resp.Topics = make([]kmsg.AlterPartitionAssignmentsResponseTopic, 0, len(kreq.Topics))
	j := 0 // index into reqs and errs
	for _, t := range kreq.Topics {
		rt := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.AlterPartitionAssignmentsResponseTopicPartition, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			pErr := err
			if pErr == nil {
				pErr = errAt(errs, j)
			}
			j++
			rp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = errCode(pErr)
			rp.ErrorMessage = errMessage(pErr)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return respond(resp)
}
