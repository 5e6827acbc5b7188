package wire

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/metadata"
)

func init() { register(37, 0, 3, handleCreatePartitions) }

// handleCreatePartitions grows topics to the requested partition counts
// (or, with ValidateOnly, checks that it could). Whether the count and
// the optional assignment of the new partitions fit the topic is the
// Backend's to judge; duplicates within the request are rejected here.
func handleCreatePartitions(s *Server, req *request) reply {
	kreq := req.kreq.(*kmsg.CreatePartitionsRequest)
	resp := kreq.ResponseKind().(*kmsg.CreatePartitionsResponse)

	counts := make(map[string]int, len(kreq.Topics))
	for _, t := range kreq.Topics {
		counts[t.Topic]++
	}
	resp.Topics = make([]kmsg.CreatePartitionsResponseTopic, len(kreq.Topics))
	var (
		reqs []metadata.CreatePartitions
		at   []int
	)
	for i, t := range kreq.Topics {
		rt := &resp.Topics[i]
		*rt = kmsg.NewCreatePartitionsResponseTopic()
		rt.Topic = t.Topic
		if counts[t.Topic] > 1 {
			setCreatePartitionsError(rt, fmt.Errorf("topic %q appears more than once in the request: %w", t.Topic, kerr.InvalidRequest))
			continue
		}
		cp := metadata.CreatePartitions{Topic: t.Topic, Count: t.Count}
		if t.Assignment != nil {
			cp.Assignment = make([][]int32, len(t.Assignment))
			for k, a := range t.Assignment {
				cp.Assignment[k] = slices.Clone(a.Replicas)
			}
		}
		reqs = append(reqs, cp)
		at = append(at, i)
	}
	if len(reqs) > 0 {
		ctx, cancel := adminContext(req, kreq.TimeoutMillis)
		errs := s.b.CreatePartitions(ctx, reqs, kreq.ValidateOnly)
		cancel()
		for j, i := range at {
			setCreatePartitionsError(&resp.Topics[i], errAt(errs, j))
		}
	}
	return respond(resp)
}

func setCreatePartitionsError(rt *kmsg.CreatePartitionsResponseTopic, err error) {
	rt.ErrorCode = errCode(err)
	rt.ErrorMessage = errMessage(err)
}
