package wire

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors"
	"github.com/troupe-io/troupe/actors/group"
	"github.com/troupe-io/troupe/metadata"
)

// fakeGroup is a group coordinator actor stand-in for the handler tests.
// It is no coordinator: it answers every request at once, in the
// caller's goroutine, with a canned response of the right type built for
// the request's version (see cannedGroupAnswer) — except that it keeps
// committed offsets, so that commit-then-fetch round trips through real
// clients work. park holds requests instead, to test replies that wait.
type fakeGroup struct {
	id  string
	img func() *metadata.Image

	mu       sync.Mutex
	received []group.Request
	park     bool
	parked   []actors.GroupRequest
	// answer, when set, replaces the canned answer.
	answer func(group.Request) any
	// commits are the committed offsets by topic name and partition.
	commits map[string]map[int32]fakeCommit
	// dropped counts replies that found their channel full: a caller
	// that did not size its reply channel.
	dropped int
}

type fakeCommit struct {
	offset   int64
	epoch    int32
	metadata *string
}

func newFakeGroup(id string, img func() *metadata.Image) *fakeGroup {
	return &fakeGroup{id: id, img: img, commits: map[string]map[int32]fakeCommit{}}
}

func (g *fakeGroup) Send(r actors.GroupRequest) {
	g.mu.Lock()
	g.received = append(g.received, r.Req)
	if g.park {
		g.parked = append(g.parked, r)
		g.mu.Unlock()
		return
	}
	answer := g.answer
	g.mu.Unlock()
	var resp any
	if answer != nil {
		resp = answer(r.Req)
	} else {
		resp = g.cannedGroupAnswer(r.Req)
	}
	g.reply(r, resp)
}

func (g *fakeGroup) reply(r actors.GroupRequest, resp any) {
	select {
	case r.Reply <- group.Reply{Tag: r.Req.Tag, Resp: resp}:
	default:
		g.mu.Lock()
		g.dropped++
		g.mu.Unlock()
	}
}

// setPark parks (true) or stops parking requests; it returns the
// requests parked so far, which the caller answers with reply (or not).
func (g *fakeGroup) setPark(park bool) []actors.GroupRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.park = park
	out := g.parked
	g.parked = nil
	return out
}

func (g *fakeGroup) setAnswer(f func(group.Request) any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.answer = f
}

// requests returns the requests received so far.
func (g *fakeGroup) requests() []group.Request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]group.Request(nil), g.received...)
}

// parkedCount is how many requests are parked now.
func (g *fakeGroup) parkedCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.parked)
}

func (g *fakeGroup) setCommit(topic string, partition int32, c fakeCommit) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.commits[topic] == nil {
		g.commits[topic] = map[int32]fakeCommit{}
	}
	g.commits[topic][partition] = c
}

func (g *fakeGroup) committed(topic string, partition int32) (fakeCommit, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.commits[topic][partition]
	return c, ok
}

// cannedGroupAnswer is a plausible, well-formed answer to r for its
// version. Values are chosen so tests can see them flow through: member
// ids derive from the client id, the client's id and host show up in
// DescribeGroups, and so on.
func (g *fakeGroup) cannedGroupAnswer(r group.Request) any {
	switch req := r.Req.(type) {
	case *kmsg.JoinGroupRequest:
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		member := req.MemberID
		if member == "" {
			member = r.ClientID + "-member"
		}
		resp.Generation, resp.MemberID, resp.LeaderID = 1, member, member
		resp.ProtocolType = kmsg.StringPtr(req.ProtocolType)
		if len(req.Protocols) > 0 {
			p := req.Protocols[0]
			resp.Protocol = kmsg.StringPtr(p.Name)
			m := kmsg.NewJoinGroupResponseMember()
			m.MemberID, m.InstanceID, m.ProtocolMetadata = member, req.InstanceID, p.Metadata
			resp.Members = []kmsg.JoinGroupResponseMember{m}
		}
		return resp
	case *kmsg.SyncGroupRequest:
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ProtocolType, resp.Protocol = req.ProtocolType, req.Protocol
		// The leader's assignment for this member, so that a real
		// client's group session completes.
		for _, a := range req.GroupAssignment {
			if a.MemberID == req.MemberID {
				resp.MemberAssignment = a.MemberAssignment
			}
		}
		return resp
	case *kmsg.HeartbeatRequest:
		return req.ResponseKind()
	case *kmsg.LeaveGroupRequest:
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		for _, m := range req.Members {
			lm := kmsg.NewLeaveGroupResponseMember()
			lm.MemberID, lm.InstanceID = m.MemberID, m.InstanceID
			resp.Members = append(resp.Members, lm)
		}
		return resp
	case *kmsg.OffsetCommitRequest:
		return g.commit(req)
	case *kmsg.OffsetDeleteRequest:
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetDeleteResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetDeleteResponseTopicPartition()
				rp.Partition = p.Partition
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	case *kmsg.ConsumerGroupHeartbeatRequest:
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		member := req.MemberID
		if member == "" {
			member = r.NewMemberID
		}
		resp.MemberID = kmsg.StringPtr(member)
		resp.MemberEpoch = req.MemberEpoch + 1
		resp.HeartbeatIntervalMillis = 5000
		return resp
	case *group.FetchOffsets:
		return g.fetch(req)
	case *group.DescribeGroup:
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group, dg.State, dg.ProtocolType, dg.Protocol = g.id, "Stable", "consumer", "range"
		m := kmsg.NewDescribeGroupsResponseGroupMember()
		m.MemberID, m.ClientID, m.ClientHost = "m1", r.ClientID, r.ClientHost
		dg.Members = []kmsg.DescribeGroupsResponseGroupMember{m}
		if req.IncludeAuthorizedOperations {
			dg.AuthorizedOperations = 1 << aclDescribe
		}
		return &dg
	case *group.DeleteGroup:
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = g.id
		return &dg
	case *group.DescribeConsumerGroup:
		dg := kmsg.NewConsumerGroupDescribeResponseGroup()
		dg.Group, dg.State, dg.Epoch, dg.AssignmentEpoch, dg.AssignorName = g.id, "Stable", 5, 5, "uniform"
		return &dg
	}
	return nil
}

// commit stores a commit's offsets; v10 topic ids are named from the
// image, as the real actor does.
func (g *fakeGroup) commit(req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	img := g.img()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		name := t.Topic
		code := int16(0)
		if req.Version >= 10 {
			if mt := img.TopicByID(t.TopicID); mt != nil {
				name = mt.Name
			} else {
				code = kerr.UnknownTopicID.Code
			}
		}
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
			if code != 0 {
				continue
			}
			if g.commits[name] == nil {
				g.commits[name] = map[int32]fakeCommit{}
			}
			g.commits[name][p.Partition] = fakeCommit{p.Offset, p.LeaderEpoch, p.Metadata}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (g *fakeGroup) fetch(req *group.FetchOffsets) *kmsg.OffsetFetchResponseGroup {
	out := kmsg.NewOffsetFetchResponseGroup()
	out.Group = g.id
	g.mu.Lock()
	defer g.mu.Unlock()
	part := func(name string, p int32) kmsg.OffsetFetchResponseGroupTopicPartition {
		sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		sp.Partition, sp.Offset = p, -1
		if c, ok := g.commits[name][p]; ok {
			sp.Offset, sp.LeaderEpoch, sp.Metadata = c.offset, c.epoch, c.metadata
		}
		return sp
	}
	if req.Topics == nil {
		for _, name := range slices.Sorted(maps.Keys(g.commits)) {
			st := kmsg.NewOffsetFetchResponseGroupTopic()
			st.Topic = name
			for _, p := range slices.Sorted(maps.Keys(g.commits[name])) {
				st.Partitions = append(st.Partitions, part(name, p))
			}
			out.Topics = append(out.Topics, st)
		}
		return &out
	}
	for _, t := range req.Topics {
		st := kmsg.NewOffsetFetchResponseGroupTopic()
		st.Topic = t.Topic
		for _, p := range t.Partitions {
			st.Partitions = append(st.Partitions, part(t.Topic, p))
		}
		out.Topics = append(out.Topics, st)
	}
	return &out
}

// The data-path fake coordinates no group.

func (b *dpBackend) FindCoordinator(context.Context, int8, string) (metadata.Broker, error) {
	return metadata.Broker{}, fmt.Errorf("no groups in the data-path fake: %w", kerr.CoordinatorNotAvailable)
}

func (b *dpBackend) Group(string) (Group, error) {
	return nil, fmt.Errorf("no groups in the data-path fake: %w", kerr.NotCoordinator)
}

func (b *dpBackend) ListGroups() []group.Summary { return nil }
