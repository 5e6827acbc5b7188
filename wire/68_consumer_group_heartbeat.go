package wire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupHeartbeat v0-v1 (KIP-848): a member of a consumer group
// joins (epoch 0), heartbeats, reconciles its assignment or leaves (epoch
// -1, -2 for a static member that will come back), all through this one
// request; the group's coordinator actor computes the assignment. v1
// members draw their own member id and may subscribe by regex.
//
// An empty group id is INVALID_REQUEST with Kafka's message; a request
// that reaches no group carries only the error.
func init() { register(68, 0, 1, handleConsumerGroupHeartbeat) }

func handleConsumerGroupHeartbeat(s *Server, req *request) reply {
	kreq, ok := req.kreq.(*kmsg.ConsumerGroupHeartbeatRequest)
	if !ok {
		return reply{closeConn: true}
	}
	fail := func(code int16, msg *string) *kmsg.ConsumerGroupHeartbeatResponse {
		resp := kreq.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode, resp.ErrorMessage = code, msg
		return resp
	}
	if kreq.Group == "" {
		return respond(fail(kerr.InvalidRequest.Code, stringPtr("GroupId can't be empty.")))
	}
	return singleGroup(s, req, kreq.Group, kreq, waitBounded, fail)
}
