package wire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetDelete v0 (KIP-496): delete a group's committed offsets of some
// partitions. The group's coordinator actor refuses partitions its
// members are still subscribed to (GROUP_SUBSCRIBED_TO_TOPIC). A request
// that reaches no group carries only the group-level error, as in Kafka.
func init() { register(47, 0, 0, handleOffsetDelete) }

func handleOffsetDelete(s *Server, req *request) reply {
	kreq, ok := req.kreq.(*kmsg.OffsetDeleteRequest)
	if !ok {
		return reply{closeConn: true}
	}
	fail := func(code int16, _ *string) *kmsg.OffsetDeleteResponse {
		resp := kreq.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = code
		return resp
	}
	if kreq.Group == "" {
		return respond(fail(kerr.InvalidGroupID.Code, nil))
	}
	return singleGroup(s, req, kreq.Group, kreq, waitBounded, fail)
}
