package wire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup v0-v9: a member joins a classic group. The group's
// coordinator actor parks the request until the rebalance it starts or
// joins completes — up to the members' rebalance timeouts, minutes — so
// the reply waits with no deadline of its own (see waitParked); v4+
// members that join without a member id are first sent back with one
// (MEMBER_ID_REQUIRED, KIP-394), which the actor draws from the fresh id
// the host puts in the request.
//
// A request that reaches no group echoes the member id with generation
// -1, as Kafka answers.
func init() { register(11, 0, 9, handleJoinGroup) }

func handleJoinGroup(s *Server, req *request) reply {
	kreq, ok := req.kreq.(*kmsg.JoinGroupRequest)
	if !ok {
		return reply{closeConn: true}
	}
	fail := func(code int16, _ *string) *kmsg.JoinGroupResponse {
		resp := kreq.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = code
		resp.Generation = -1
		resp.MemberID = kreq.MemberID
		return resp
	}
	if kreq.Group == "" {
		return respond(fail(kerr.InvalidGroupID.Code, nil))
	}
	return singleGroup(s, req, kreq.Group, kreq, waitParked, fail)
}
