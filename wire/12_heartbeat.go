package wire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat v0-v4: a classic group member's liveness signal. The answer
// says whether the member must rejoin (REBALANCE_IN_PROGRESS) or was
// dropped (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID);
// the group's coordinator actor decides.
func init() { register(12, 0, 4, handleHeartbeat) }

func handleHeartbeat(s *Server, req *request) reply {
	kreq, ok := req.kreq.(*kmsg.HeartbeatRequest)
	if !ok {
		return reply{closeConn: true}
	}
	fail := func(code int16, _ *string) *kmsg.HeartbeatResponse {
		resp := kreq.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = code
		return resp
	}
	if kreq.Group == "" {
		return respond(fail(kerr.InvalidGroupID.Code, nil))
	}
	return singleGroup(s, req, kreq.Group, kreq, waitBounded, fail)
}
