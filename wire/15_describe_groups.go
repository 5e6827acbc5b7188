package wire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors/group"
)

// DescribeGroups v0-v6: state, protocol and members of classic groups
// (KIP-848 groups are described as Kafka describes them to old clients).
// Each group is asked of its coordinator actor, all at once; a group
// coordinated elsewhere gets NOT_COORDINATOR (or the load/availability
// error) in its own entry. v3 adds authorized operations, v4 static
// instance ids, v6 (KIP-1043) an error message and GROUP_ID_NOT_FOUND for
// unknown groups — the actors answer those for the request's version.
// The empty group id is described like any other, as Kafka still does.
func init() { register(15, 0, 6, handleDescribeGroups) }

func handleDescribeGroups(s *Server, req *request) reply {
	kreq, ok := req.kreq.(*kmsg.DescribeGroupsRequest)
	if !ok {
		return reply{closeConn: true}
	}
	resp := kreq.ResponseKind().(*kmsg.DescribeGroupsResponse)
	resp.Groups = make([]kmsg.DescribeGroupsResponseGroup, len(kreq.Groups))
	fail := func(i int, code int16, msg *string) {
		g := &resp.Groups[i]
		g.Default()
		g.Group, g.ErrorCode, g.ErrorMessage = kreq.Groups[i], code, msg
	}
	for i := range resp.Groups {
		fail(i, 0, nil)
	}
	withOps := req.version >= 3 && kreq.IncludeAuthorizedOperations
	f := s.fanOutGroups(req, kreq.Groups,
		func(int) any { return &group.DescribeGroup{Version: req.version, IncludeAuthorizedOperations: withOps} },
		func(i int, err error) { fail(i, errCode(err), errMessage(err)) })
	if f.sent == 0 {
		return respond(resp)
	}
	return reply{await: func() reply {
		f.collect(s, req, func(i int, r any) {
			g, ok := r.(*kmsg.DescribeGroupsResponseGroup)
			if !ok || g == nil {
				s.log.Error("group coordinator answered with the wrong type", "api", "DescribeGroups", "got", typeName(r))
				fail(i, kerr.UnknownServerError.Code, nil)
				return
			}
			resp.Groups[i] = *g
			resp.Groups[i].Group = kreq.Groups[i]
		}, func(i int, code int16) { fail(i, code, nil) })
		return respond(resp)
	}}
}
