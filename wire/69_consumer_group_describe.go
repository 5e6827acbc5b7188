package wire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors/group"
)

// ConsumerGroupDescribe v0-v1 (KIP-848): epochs, assignor, members and
// their target and current assignments of consumer groups. Each group is
// asked of its coordinator actor, all at once; a group coordinated
// elsewhere gets NOT_COORDINATOR (or the load/availability error) in its
// own entry, and the empty group id is INVALID_GROUP_ID without asking
// anyone, as in Kafka. v1 only widens what members may report.
func init() { register(69, 0, 1, handleConsumerGroupDescribe) }

func handleConsumerGroupDescribe(s *Server, req *request) reply {
	kreq, ok := req.kreq.(*kmsg.ConsumerGroupDescribeRequest)
	if !ok {
		return reply{closeConn: true}
	}
	resp := kreq.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	resp.Groups = make([]kmsg.ConsumerGroupDescribeResponseGroup, len(kreq.Groups))
	fail := func(i int, code int16, msg *string) {
		g := &resp.Groups[i]
		g.Default()
		g.Group, g.ErrorCode, g.ErrorMessage = kreq.Groups[i], code, msg
	}
	for i := range resp.Groups {
		fail(i, 0, nil)
	}
	f := s.fanOutGroups(req, kreq.Groups,
		func(i int) any {
			if kreq.Groups[i] == "" {
				fail(i, kerr.InvalidGroupID.Code, nil)
				return nil
			}
			return &group.DescribeConsumerGroup{Version: req.version, IncludeAuthorizedOperations: kreq.IncludeAuthorizedOperations}
		},
		func(i int, err error) { fail(i, errCode(err), errMessage(err)) })
	if f.sent == 0 {
		return respond(resp)
	}
	return reply{await: func() reply {
		f.collect(s, req, func(i int, r any) {
			g, ok := r.(*kmsg.ConsumerGroupDescribeResponseGroup)
			if !ok || g == nil {
				s.log.Error("group coordinator answered with the wrong type", "api", "ConsumerGroupDescribe", "got", typeName(r))
				fail(i, kerr.UnknownServerError.Code, nil)
				return
			}
			resp.Groups[i] = *g
			resp.Groups[i].Group = kreq.Groups[i]
		}, func(i int, code int16) { fail(i, code, nil) })
		return respond(resp)
	}}
}
