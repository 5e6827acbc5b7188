package wire

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups v0-v5: the groups this node coordinates (clients ask every
// broker and merge). v4 filters by state (KIP-518) and v5 by group type,
// "classic" or "consumer" (KIP-848); both filters match case-
// insensitively, as Kafka's do, and an empty filter matches everything.
// The answer comes from the Backend's summaries, without asking any
// actor.
func init() { register(16, 0, 5, handleListGroups) }

func handleListGroups(s *Server, req *request) reply {
	kreq, ok := req.kreq.(*kmsg.ListGroupsRequest)
	if !ok {
		return reply{closeConn: true}
	}
	resp := kreq.ResponseKind().(*kmsg.ListGroupsResponse)
	var states, types []string
	if req.version >= 4 {
		states = kreq.StatesFilter
	}
	if req.version >= 5 {
		types = kreq.TypesFilter
	}
	for _, g := range s.b.ListGroups() {
		if !matchesFold(states, g.State) || !matchesFold(types, g.GroupType) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.GroupID, g.ProtocolType, g.State, g.GroupType
		resp.Groups = append(resp.Groups, lg)
	}
	return respond(resp)
}

// matchesFold reports whether filter is empty or holds v, ignoring case.
func matchesFold(filter []string, v string) bool {
	if len(filter) == 0 {
		return true
	}
	for _, f := range filter {
		if strings.EqualFold(f, v) {
			return true
		}
	}
	return false
}
