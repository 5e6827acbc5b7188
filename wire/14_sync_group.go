package wire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup v0-v5: after a classic group's join, the leader hands in the
// assignment and every member receives its share. A follower's request
// parks in the group's coordinator actor until the leader's arrives (or
// the rebalance fails), so the reply waits with no deadline of its own
// (see waitParked). v5 echoes the protocol type and name.
func init() { register(14, 0, 5, handleSyncGroup) }

func handleSyncGroup(s *Server, req *request) reply {
	kreq, ok := req.kreq.(*kmsg.SyncGroupRequest)
	if !ok {
		return reply{closeConn: true}
	}
	fail := func(code int16, _ *string) *kmsg.SyncGroupResponse {
		resp := kreq.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
		return resp
	}
	if kreq.Group == "" {
		return respond(fail(kerr.InvalidGroupID.Code, nil))
	}
	return singleGroup(s, req, kreq.Group, kreq, waitParked, fail)
}
