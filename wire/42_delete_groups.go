package wire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors/group"
)

// DeleteGroups v0-v3: delete empty groups with their committed offsets.
// Each group is asked of its coordinator actor, all at once, which
// refuses a group that still has members (NON_EMPTY_GROUP) and answers
// GROUP_ID_NOT_FOUND for one it does not know; a group coordinated
// elsewhere gets NOT_COORDINATOR (or the load/availability error) in its
// own entry. v2 is flexible; v3 adds an error message per group.
func init() { register(42, 0, 3, handleDeleteGroups) }

func handleDeleteGroups(s *Server, req *request) reply {
	kreq, ok := req.kreq.(*kmsg.DeleteGroupsRequest)
	if !ok {
		return reply{closeConn: true}
	}
	resp := kreq.ResponseKind().(*kmsg.DeleteGroupsResponse)
	resp.Groups = make([]kmsg.DeleteGroupsResponseGroup, len(kreq.Groups))
	fail := func(i int, code int16, msg *string) {
		g := &resp.Groups[i]
		g.Default()
		g.Group, g.ErrorCode, g.ErrorMessage = kreq.Groups[i], code, msg
	}
	for i := range resp.Groups {
		fail(i, 0, nil)
	}
	f := s.fanOutGroups(req, kreq.Groups,
		func(int) any { return &group.DeleteGroup{Version: req.version} },
		func(i int, err error) { fail(i, errCode(err), errMessage(err)) })
	if f.sent == 0 {
		return respond(resp)
	}
	return reply{await: func() reply {
		f.collect(s, req, func(i int, r any) {
			g, ok := r.(*kmsg.DeleteGroupsResponseGroup)
			if !ok || g == nil {
				s.log.Error("group coordinator answered with the wrong type", "api", "DeleteGroups", "got", typeName(r))
				fail(i, kerr.UnknownServerError.Code, nil)
				return
			}
			resp.Groups[i] = *g
			resp.Groups[i].Group = kreq.Groups[i]
		}, func(i int, code int16) { fail(i, code, nil) })
		return respond(resp)
	}}
}
