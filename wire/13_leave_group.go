package wire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup v0-v5: members leave a classic group. v0-v2 name one member;
// v3+ (KIP-345) name a batch of members or static instances, each
// answered on its own by the group's coordinator actor. v5 adds a reason.
// A request that reaches no group is answered with only the top-level
// error, as Kafka does.
func init() { register(13, 0, 5, handleLeaveGroup) }

func handleLeaveGroup(s *Server, req *request) reply {
	kreq, ok := req.kreq.(*kmsg.LeaveGroupRequest)
	if !ok {
		return reply{closeConn: true}
	}
	fail := func(code int16, _ *string) *kmsg.LeaveGroupResponse {
		resp := kreq.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = code
		return resp
	}
	if kreq.Group == "" {
		return respond(fail(kerr.InvalidGroupID.Code, nil))
	}
	return singleGroup(s, req, kreq.Group, kreq, waitBounded, fail)
}
