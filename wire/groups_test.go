package wire

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors/group"
	"github.com/troupe-io/troupe/metadata"
)

// Protocol-level tests of the group handlers against the fake group
// actors (groups_fake_test.go): every advertised version round trips
// through the real server, and what the actors receive and answer is
// routed and folded as each version requires.

// groupAPIs are the group APIs and the versions they advertise.
var groupAPIs = map[int16][2]int16{
	8:  {0, 10}, // OffsetCommit
	9:  {0, 10}, // OffsetFetch
	10: {0, 6},  // FindCoordinator
	11: {0, 9},  // JoinGroup
	12: {0, 4},  // Heartbeat
	13: {0, 5},  // LeaveGroup
	14: {0, 5},  // SyncGroup
	15: {0, 6},  // DescribeGroups
	16: {0, 5},  // ListGroups
	42: {0, 3},  // DeleteGroups
	47: {0, 0},  // OffsetDelete
	68: {0, 1},  // ConsumerGroupHeartbeat
	69: {0, 1},  // ConsumerGroupDescribe
}

func TestGroupAPIsAdvertised(t *testing.T) {
	env := newTestEnv(t)
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "wire-test", "1.0.0"
	resp := env.dial().roundTrip(req).(*kmsg.ApiVersionsResponse)
	got := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	for key, want := range groupAPIs {
		if got[key] != want {
			t.Errorf("%s: advertised %v, want %v", kmsg.NameForKey(key), got[key], want)
		}
		if r := kmsg.RequestForKey(key); r == nil || r.MaxVersion() < want[1] {
			t.Errorf("%s: kmsg cannot speak v%d", kmsg.NameForKey(key), want[1])
		}
	}
}

// checkGroupRequest asserts what the single group actor of g received:
// one request carrying the connection's identity and kreq's type and
// version.
func checkGroupRequest(t *testing.T, g *fakeGroup, v int16, want kmsg.Request) group.Request {
	t.Helper()
	reqs := g.requests()
	if len(reqs) == 0 {
		t.Fatalf("v%d: the group actor received nothing", v)
	}
	r := reqs[len(reqs)-1]
	if r.ClientID != testClientID || r.ClientHost != "/127.0.0.1" || r.NowMs <= 0 || r.Tag != 0 {
		t.Errorf("v%d: request identity: client %q host %q now %d tag %d", v, r.ClientID, r.ClientHost, r.NowMs, r.Tag)
	}
	if want != nil {
		got, ok := r.Req.(kmsg.Request)
		if !ok || got.Key() != want.Key() || got.GetVersion() != v {
			t.Errorf("v%d: actor got %T, want %s v%d", v, r.Req, kmsg.NameForKey(want.Key()), v)
		}
	}
	return r
}

func TestSingleGroupAPIsEveryVersion(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	topic := env.createTopic("t", 2, nil)

	t.Run("OffsetCommit", func(t *testing.T) {
		for v := int16(0); v <= 10; v++ {
			group := fmt.Sprintf("commit-%d", v)
			req := kmsg.NewPtrOffsetCommitRequest()
			req.Version, req.Group = v, group
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic, rt.TopicID = "t", topic.ID
			for p := range int32(2) {
				rp := kmsg.NewOffsetCommitRequestTopicPartition()
				rp.Partition, rp.Offset, rp.Metadata = p, 10+int64(p), ptrTo("md")
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = []kmsg.OffsetCommitRequestTopic{rt}
			resp := c.roundTrip(req).(*kmsg.OffsetCommitResponse)
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 || resp.Topics[0].Partitions[1].ErrorCode != 0 {
				t.Fatalf("v%d: %+v", v, resp)
			}
			if v >= 10 && resp.Topics[0].TopicID != topic.ID {
				t.Errorf("v%d: topic id not echoed", v)
			}
			checkGroupRequest(t, env.fb.group(group), v, req)
			if c, _ := env.fb.group(group).committed("t", 1); c.offset != 11 {
				t.Errorf("v%d: committed %+v", v, c)
			}
		}
	})

	t.Run("JoinGroup", func(t *testing.T) {
		for v := int16(0); v <= 9; v++ {
			req := kmsg.NewPtrJoinGroupRequest()
			req.Version, req.Group, req.ProtocolType = v, "join", "consumer"
			req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 30000, 60000
			req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{1, 2}}}
			resp := c.roundTrip(req).(*kmsg.JoinGroupResponse)
			if resp.ErrorCode != 0 || resp.Generation != 1 || resp.MemberID != "wire-test-member" ||
				derefOr(resp.Protocol, "") != "range" || len(resp.Members) != 1 || string(resp.Members[0].ProtocolMetadata) != "\x01\x02" {
				t.Fatalf("v%d: %+v", v, resp)
			}
			if (v >= 7) != (resp.ProtocolType != nil) {
				t.Errorf("v%d: protocol type %v", v, resp.ProtocolType)
			}
			checkGroupRequest(t, env.fb.group("join"), v, req)
		}
	})

	t.Run("SyncGroup", func(t *testing.T) {
		for v := int16(0); v <= 5; v++ {
			req := kmsg.NewPtrSyncGroupRequest()
			req.Version, req.Group, req.Generation, req.MemberID = v, "sync", 1, "m"
			req.ProtocolType, req.Protocol = ptrTo("consumer"), ptrTo("range")
			req.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: "m", MemberAssignment: []byte("abc")}}
			resp := c.roundTrip(req).(*kmsg.SyncGroupResponse)
			if resp.ErrorCode != 0 || string(resp.MemberAssignment) != "abc" {
				t.Fatalf("v%d: %+v", v, resp)
			}
			if v >= 5 && derefOr(resp.Protocol, "") != "range" {
				t.Errorf("v%d: protocol %v", v, resp.Protocol)
			}
			checkGroupRequest(t, env.fb.group("sync"), v, req)
		}
	})

	t.Run("Heartbeat", func(t *testing.T) {
		for v := int16(0); v <= 4; v++ {
			req := kmsg.NewPtrHeartbeatRequest()
			req.Version, req.Group, req.Generation, req.MemberID = v, "hb", 1, "m"
			if resp := c.roundTrip(req).(*kmsg.HeartbeatResponse); resp.ErrorCode != 0 {
				t.Fatalf("v%d: %+v", v, resp)
			}
			checkGroupRequest(t, env.fb.group("hb"), v, req)
		}
	})

	t.Run("LeaveGroup", func(t *testing.T) {
		for v := int16(0); v <= 5; v++ {
			req := kmsg.NewPtrLeaveGroupRequest()
			req.Version, req.Group, req.MemberID = v, "leave", "m"
			req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "m1"}, {MemberID: "m2", InstanceID: ptrTo("i2")}}
			resp := c.roundTrip(req).(*kmsg.LeaveGroupResponse)
			if resp.ErrorCode != 0 || (v >= 3) != (len(resp.Members) == 2) {
				t.Fatalf("v%d: %+v", v, resp)
			}
			checkGroupRequest(t, env.fb.group("leave"), v, req)
		}
	})

	t.Run("OffsetDelete", func(t *testing.T) {
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = "del"
		req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 1}}}}
		resp := c.roundTrip(req).(*kmsg.OffsetDeleteResponse)
		if resp.ErrorCode != 0 || len(resp.Topics) != 1 || resp.Topics[0].Partitions[0].Partition != 1 {
			t.Fatalf("%+v", resp)
		}
		checkGroupRequest(t, env.fb.group("del"), 0, req)
	})

	t.Run("ConsumerGroupHeartbeat", func(t *testing.T) {
		for v := int16(0); v <= 1; v++ {
			req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			req.Version, req.Group, req.MemberID, req.MemberEpoch = v, "cg", "mid", 0
			req.SubscribedTopicNames = []string{"t"}
			resp := c.roundTrip(req).(*kmsg.ConsumerGroupHeartbeatResponse)
			if resp.ErrorCode != 0 || derefOr(resp.MemberID, "") != "mid" || resp.MemberEpoch != 1 || resp.HeartbeatIntervalMillis != 5000 {
				t.Fatalf("v%d: %+v", v, resp)
			}
			checkGroupRequest(t, env.fb.group("cg"), v, req)
		}
	})
}

func TestFindCoordinator(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	self, _ := env.fb.Image().Broker(1)
	env.fb.mu.Lock()
	env.fb.coordErrs["nobody"] = fmt.Errorf("offsets partition 7 has no leader: %w", kerr.CoordinatorNotAvailable)
	env.fb.mu.Unlock()

	for v := int16(0); v <= 6; v++ {
		for _, keyType := range []int8{0, 1} {
			if v == 0 && keyType == 1 {
				continue // v0 has no key type
			}
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.Version, req.CoordinatorType = v, keyType
			if v <= 3 {
				req.CoordinatorKey = "g"
				resp := c.roundTrip(req).(*kmsg.FindCoordinatorResponse)
				if resp.ErrorCode != 0 || resp.NodeID != 1 || resp.Host != self.Host || resp.Port != self.Port {
					t.Errorf("v%d type %d: %+v", v, keyType, resp)
				}
				req.CoordinatorKey = "nobody"
				resp = c.roundTrip(req).(*kmsg.FindCoordinatorResponse)
				if resp.ErrorCode != kerr.CoordinatorNotAvailable.Code || resp.NodeID != -1 || resp.Host != "" || resp.Port != -1 {
					t.Errorf("v%d type %d, no coordinator: %+v", v, keyType, resp)
				}
				if v >= 1 && derefOr(resp.ErrorMessage, "") != "offsets partition 7 has no leader" {
					t.Errorf("v%d: message %v", v, resp.ErrorMessage)
				}
				continue
			}
			req.CoordinatorKeys = []string{"a", "nobody", "b"}
			resp := c.roundTrip(req).(*kmsg.FindCoordinatorResponse)
			if len(resp.Coordinators) != 3 {
				t.Fatalf("v%d: %+v", v, resp)
			}
			for i, want := range []struct {
				key  string
				code int16
				node int32
			}{{"a", 0, 1}, {"nobody", kerr.CoordinatorNotAvailable.Code, -1}, {"b", 0, 1}} {
				got := resp.Coordinators[i]
				if got.Key != want.key || got.ErrorCode != want.code || got.NodeID != want.node {
					t.Errorf("v%d key %d: %+v, want %+v", v, i, got, want)
				}
			}
		}
	}

	// An unknown key type: the Backend refuses it, per key.
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version, req.CoordinatorType, req.CoordinatorKeys = 4, 7, []string{"x"}
	if resp := c.roundTrip(req).(*kmsg.FindCoordinatorResponse); resp.Coordinators[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("key type 7: %+v", resp)
	}
	// v0 cannot say a key type: always a group.
	req = kmsg.NewPtrFindCoordinatorRequest()
	req.Version, req.CoordinatorKey = 0, "g"
	if resp := c.roundTrip(req).(*kmsg.FindCoordinatorResponse); resp.ErrorCode != 0 {
		t.Errorf("v0: %+v", resp)
	}
}

// singleGroupErrorCases build each single-group request at version v for
// group id, and read back the error it was answered with.
var singleGroupErrorCases = []struct {
	name     string
	versions []int16
	req      func(v int16, id string) kmsg.Request
	code     func(kmsg.Response) []int16
	// emptyID is the answer to the empty group id without an actor; 0
	// when the empty id goes to its actor like any other.
	emptyID int16
}{
	{"JoinGroup", []int16{0, 4, 9}, func(v int16, id string) kmsg.Request {
		r := kmsg.NewPtrJoinGroupRequest()
		r.Version, r.Group, r.MemberID, r.ProtocolType = v, id, "mem", "consumer"
		return r
	}, func(r kmsg.Response) []int16 {
		j := r.(*kmsg.JoinGroupResponse)
		if j.Generation != -1 || j.MemberID != "mem" {
			return []int16{-999}
		}
		return []int16{j.ErrorCode}
	}, kerr.InvalidGroupID.Code},
	{"SyncGroup", []int16{0, 3, 5}, func(v int16, id string) kmsg.Request {
		r := kmsg.NewPtrSyncGroupRequest()
		r.Version, r.Group = v, id
		return r
	}, func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.SyncGroupResponse).ErrorCode} }, kerr.InvalidGroupID.Code},
	{"Heartbeat", []int16{0, 4}, func(v int16, id string) kmsg.Request {
		r := kmsg.NewPtrHeartbeatRequest()
		r.Version, r.Group = v, id
		return r
	}, func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.HeartbeatResponse).ErrorCode} }, kerr.InvalidGroupID.Code},
	{"LeaveGroup", []int16{0, 3, 5}, func(v int16, id string) kmsg.Request {
		r := kmsg.NewPtrLeaveGroupRequest()
		r.Version, r.Group, r.MemberID = v, id, "m"
		r.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "m"}}
		return r
	}, func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.LeaveGroupResponse).ErrorCode} }, kerr.InvalidGroupID.Code},
	{"OffsetDelete", []int16{0}, func(v int16, id string) kmsg.Request {
		r := kmsg.NewPtrOffsetDeleteRequest()
		r.Version, r.Group = v, id
		r.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
		return r
	}, func(r kmsg.Response) []int16 {
		d := r.(*kmsg.OffsetDeleteResponse)
		if len(d.Topics) != 0 {
			return []int16{-999}
		}
		return []int16{d.ErrorCode}
	}, kerr.InvalidGroupID.Code},
	{"ConsumerGroupHeartbeat", []int16{0, 1}, func(v int16, id string) kmsg.Request {
		r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.Version, r.Group, r.MemberID = v, id, "m"
		return r
	}, func(r kmsg.Response) []int16 {
		h := r.(*kmsg.ConsumerGroupHeartbeatResponse)
		if h.MemberID != nil || h.ErrorMessage == nil {
			return []int16{-999}
		}
		return []int16{h.ErrorCode}
	}, kerr.InvalidRequest.Code},
	{"OffsetCommit", []int16{0, 2, 8, 10}, func(v int16, id string) kmsg.Request {
		r := kmsg.NewPtrOffsetCommitRequest()
		r.Version, r.Group = v, id
		r.Topics = []kmsg.OffsetCommitRequestTopic{
			{Topic: "a", TopicID: [16]byte{1}, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0}, {Partition: 3}}},
			{Topic: "b", TopicID: [16]byte{2}, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 1}}},
		}
		return r
	}, func(r kmsg.Response) []int16 {
		var codes []int16
		for _, t := range r.(*kmsg.OffsetCommitResponse).Topics {
			for _, p := range t.Partitions {
				codes = append(codes, p.ErrorCode)
			}
		}
		if len(codes) != 3 {
			return []int16{-999}
		}
		return codes
	}, 0},
	{"OffsetFetch", []int16{0, 1, 2, 7}, func(v int16, id string) kmsg.Request {
		r := kmsg.NewPtrOffsetFetchRequest()
		r.Version, r.Group = v, id
		r.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "a", Partitions: []int32{0, 1}}}
		return r
	}, func(r kmsg.Response) []int16 {
		f := r.(*kmsg.OffsetFetchResponse)
		if f.Version >= 2 {
			if len(f.Topics) != 0 {
				return []int16{-999}
			}
			return []int16{f.ErrorCode}
		}
		// v0-v1: the error is in every requested partition.
		var codes []int16
		for _, t := range f.Topics {
			for _, p := range t.Partitions {
				if p.Offset != -1 || derefOr(p.Metadata, "x") != "" {
					return []int16{-999}
				}
				codes = append(codes, p.ErrorCode)
			}
		}
		if len(codes) != 2 {
			return []int16{-999}
		}
		return codes
	}, 0},
}

// TestSingleGroupCoordinatorErrors: a group not coordinated here is
// answered with Backend.Group's error, in each API's shape, and no actor
// is asked.
func TestSingleGroupCoordinatorErrors(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	for _, e := range []*kerr.Error{kerr.NotCoordinator, kerr.CoordinatorLoadInProgress, kerr.CoordinatorNotAvailable} {
		env.fb.setGroupErr("elsewhere", fmt.Errorf("group elsewhere: %w", e))
		for _, tc := range singleGroupErrorCases {
			for _, v := range tc.versions {
				resp := c.roundTrip(tc.req(v, "elsewhere"))
				for _, code := range tc.code(resp) {
					if code != e.Code {
						t.Errorf("%s v%d: code %d, want %s (%+v)", tc.name, v, code, e.Message, resp)
					}
				}
			}
		}
	}
	if n := env.fb.groupCount(); n != 0 {
		t.Errorf("%d group actors were made for groups coordinated elsewhere", n)
	}
}

// TestSingleGroupEmptyID: where Kafka rejects the empty group id, so does
// the handler, without asking an actor; elsewhere the empty id is a group.
func TestSingleGroupEmptyID(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	for _, tc := range singleGroupErrorCases {
		for _, v := range tc.versions {
			resp := c.roundTrip(tc.req(v, ""))
			if tc.emptyID == 0 {
				continue // answered by the fake actor, checked below
			}
			for _, code := range tc.code(resp) {
				if code != tc.emptyID {
					t.Errorf("%s v%d: code %d, want %d (%+v)", tc.name, v, code, tc.emptyID, resp)
				}
			}
		}
	}
	// Only OffsetCommit and OffsetFetch reached the "" group's actor.
	if !env.fb.hasGroup("") {
		t.Fatal("the empty group id never reached an actor")
	}
	g := env.fb.group("")
	for _, r := range g.requests() {
		switch r.Req.(type) {
		case *kmsg.OffsetCommitRequest, *group.FetchOffsets:
		default:
			t.Errorf("the empty group id reached its actor with %T", r.Req)
		}
	}
}

func TestOffsetFetchOneGroup(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	g := env.fb.group("g")
	g.setCommit("t", 0, fakeCommit{42, 3, ptrTo("meta")})
	g.setCommit("t", 1, fakeCommit{7, -1, nil})
	g.setCommit("u", 0, fakeCommit{1, 1, ptrTo("")})

	for v := int16(0); v <= 7; v++ {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version, req.Group, req.RequireStable = v, "g", true
		req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0, 5}}}
		resp := c.roundTrip(req).(*kmsg.OffsetFetchResponse)
		if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		p0, p5 := resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]
		wantEpoch := int32(3)
		if v < 5 {
			wantEpoch = -1 // not in the wire format
		}
		if p0.Offset != 42 || derefOr(p0.Metadata, "") != "meta" || p0.LeaderEpoch != wantEpoch || p5.Offset != -1 {
			t.Errorf("v%d: partitions %+v %+v", v, p0, p5)
		}
		fo := checkGroupRequest(t, g, v, nil).Req.(*group.FetchOffsets)
		if fo.Version != v || fo.RequireStable != (v >= 7) || fo.MemberEpoch != -1 || len(fo.Topics) != 1 || fo.Topics[0].Topic != "t" {
			t.Errorf("v%d: the actor got %+v", v, fo)
		}
	}

	// Null topics (v2+): every committed offset.
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.Group = 2, "g"
	resp := c.roundTrip(req).(*kmsg.OffsetFetchResponse)
	if len(resp.Topics) != 2 || resp.Topics[0].Topic != "t" || len(resp.Topics[0].Partitions) != 2 || resp.Topics[1].Topic != "u" {
		t.Errorf("all offsets: %+v", resp)
	}
	// v0-v1 cannot ask for all: an empty list is none.
	req.Version = 1
	resp = c.roundTrip(req).(*kmsg.OffsetFetchResponse)
	if fo := checkGroupRequest(t, g, 1, nil).Req.(*group.FetchOffsets); fo.Topics == nil || len(resp.Topics) != 0 {
		t.Errorf("v1 without topics: actor got %+v, answered %+v", fo.Topics, resp)
	}

	// A group-level error from the actor is folded like a routing error.
	g.setAnswer(func(group.Request) any {
		return &kmsg.OffsetFetchResponseGroup{Group: "g", ErrorCode: kerr.GroupAuthorizationFailed.Code}
	})
	for _, v := range []int16{1, 3} {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version, req.Group = v, "g"
		req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}
		resp := c.roundTrip(req).(*kmsg.OffsetFetchResponse)
		var got int16
		if v >= 2 {
			got = resp.ErrorCode
		} else if len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) == 1 {
			got = resp.Topics[0].Partitions[0].ErrorCode
		}
		if got != kerr.GroupAuthorizationFailed.Code {
			t.Errorf("v%d: %+v", v, resp)
		}
	}
}

func TestOffsetFetchGroups(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	topicT := env.createTopic("t", 2, nil)
	topicU := env.createTopic("u", 1, nil)
	for _, id := range []string{"a", "c"} {
		g := env.fb.group(id)
		g.setCommit("t", 1, fakeCommit{int64(len(id)) + 10, 0, nil})
		g.setCommit("u", 0, fakeCommit{5, 0, nil})
		g.setCommit("gone", 0, fakeCommit{9, 0, nil}) // a deleted topic
	}
	env.fb.setGroupErr("b", fmt.Errorf("elsewhere: %w", kerr.NotCoordinator))

	for v := int16(8); v <= 10; v++ {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = v
		for _, id := range []string{"a", "b", "c"} {
			rg := kmsg.NewOffsetFetchRequestGroup()
			rg.Group = id
			rg.MemberID, rg.MemberEpoch = ptrTo("member-"+id), 4
			rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", TopicID: topicT.ID, Partitions: []int32{1}}}
			req.Groups = append(req.Groups, rg)
		}
		resp := c.roundTrip(req).(*kmsg.OffsetFetchResponse)
		if len(resp.Groups) != 3 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		for i, id := range []string{"a", "b", "c"} {
			g := resp.Groups[i]
			if g.Group != id {
				t.Errorf("v%d: group %d is %q, want %q", v, i, g.Group, id)
			}
			if id == "b" {
				if g.ErrorCode != kerr.NotCoordinator.Code || len(g.Topics) != 0 {
					t.Errorf("v%d: group b: %+v", v, g)
				}
				continue
			}
			if g.ErrorCode != 0 || len(g.Topics) != 1 || g.Topics[0].Partitions[0].Offset != 11 {
				t.Errorf("v%d: group %s: %+v", v, id, g)
				continue
			}
			if v >= 10 && g.Topics[0].TopicID != topicT.ID {
				t.Errorf("v%d: group %s: topic id %v", v, id, g.Topics[0].TopicID)
			}
			fo := env.fb.group(id).requests()
			last := fo[len(fo)-1]
			if last.Tag != int64(i) {
				t.Errorf("v%d: group %s sent with tag %d", v, id, last.Tag)
			}
			got := last.Req.(*group.FetchOffsets)
			wantEpoch, wantMember := int32(-1), ""
			if v >= 9 {
				wantEpoch, wantMember = 4, "member-"+id
			}
			if got.MemberEpoch != wantEpoch || derefOr(got.MemberID, "") != wantMember || got.Topics[0].Topic != "t" {
				t.Errorf("v%d: group %s: the actor got %+v", v, id, got)
			}
		}
	}

	// v10: unknown topic ids are answered here; all-topics fetches get
	// ids and lose the topics that have none.
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 10
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = "a"
	rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{
		{TopicID: [16]byte{0xee}, Partitions: []int32{0, 1}},
		{TopicID: topicU.ID, Partitions: []int32{0}},
	}
	all := kmsg.NewOffsetFetchRequestGroup()
	all.Group = "c"
	req.Groups = []kmsg.OffsetFetchRequestGroup{rg, all}
	resp := c.roundTrip(req).(*kmsg.OffsetFetchResponse)
	a, cAll := resp.Groups[0], resp.Groups[1]
	if len(a.Topics) != 2 || a.Topics[0].TopicID != topicU.ID || a.Topics[0].Partitions[0].Offset != 5 ||
		a.Topics[1].TopicID != ([16]byte{0xee}) || len(a.Topics[1].Partitions) != 2 ||
		a.Topics[1].Partitions[1].ErrorCode != kerr.UnknownTopicID.Code || a.Topics[1].Partitions[1].Offset != -1 {
		t.Errorf("v10 by id: %+v", a)
	}
	var ids []metadata.TopicID
	for _, tt := range cAll.Topics {
		ids = append(ids, tt.TopicID)
	}
	if len(ids) != 2 || ids[0] != topicT.ID || ids[1] != topicU.ID {
		t.Errorf("v10 all topics: ids %v (%+v)", ids, cAll)
	}
	if got := env.fb.group("a").requests(); len(got[len(got)-1].Req.(*group.FetchOffsets).Topics) != 1 {
		t.Errorf("the unknown topic id reached the actor")
	}
}

func TestDescribeGroups(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	env.fb.setGroupErr("far", fmt.Errorf("coordinated by node 2: %w", kerr.NotCoordinator))
	env.fb.setGroupErr("loading", fmt.Errorf("offsets partition loading: %w", kerr.CoordinatorLoadInProgress))
	ids := []string{"a", "far", "b", "a", "loading"}
	for v := int16(0); v <= 6; v++ {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Version, req.Groups, req.IncludeAuthorizedOperations = v, ids, true
		resp := c.roundTrip(req).(*kmsg.DescribeGroupsResponse)
		if len(resp.Groups) != len(ids) {
			t.Fatalf("v%d: %+v", v, resp)
		}
		for i, id := range ids {
			g := resp.Groups[i]
			if g.Group != id {
				t.Errorf("v%d: entry %d is %q, want %q", v, i, g.Group, id)
			}
			switch id {
			case "far", "loading":
				want := kerr.NotCoordinator.Code
				if id == "loading" {
					want = kerr.CoordinatorLoadInProgress.Code
				}
				if g.ErrorCode != want || g.State != "" || len(g.Members) != 0 {
					t.Errorf("v%d: %s: %+v", v, id, g)
				}
				if v >= 6 && g.ErrorMessage == nil {
					t.Errorf("v%d: %s: no error message", v, id)
				}
			default:
				if g.ErrorCode != 0 || g.State != "Stable" || len(g.Members) != 1 ||
					g.Members[0].ClientID != testClientID || g.Members[0].ClientHost != "/127.0.0.1" {
					t.Errorf("v%d: %s: %+v", v, id, g)
				}
				if wantOps := v >= 3; wantOps != (g.AuthorizedOperations == 1<<aclDescribe) {
					t.Errorf("v%d: %s: authorized operations %d", v, id, g.AuthorizedOperations)
				}
			}
		}
	}
	// Each group went to its actor once per request, tagged with its
	// index: "a" twice per request.
	if n := len(env.fb.group("a").requests()); n != 14 {
		t.Errorf("group a asked %d times, want 14", n)
	}
}

// TestGroupFanOutOutOfOrder: actors answer in any order; the response
// keeps the request's.
func TestGroupFanOutOutOfOrder(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	ids := []string{"g0", "g1", "g2"}
	for _, id := range ids {
		env.fb.group(id).setPark(true)
	}
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Version, req.Groups = 3, ids
	corr := c.send(req)
	for _, id := range ids {
		g := env.fb.group(id)
		eventually(t, "request parked at "+id, func() bool { return g.parkedCount() == 1 })
	}
	for i := len(ids) - 1; i >= 0; i-- {
		g := env.fb.group(ids[i])
		for _, r := range g.setPark(false) {
			code := int16(0)
			if i == 1 {
				code = kerr.NonEmptyGroup.Code
			}
			g.reply(r, &kmsg.DeleteGroupsResponseGroup{Group: "ignored", ErrorCode: code, ErrorMessage: ptrTo("msg " + ids[i])})
		}
	}
	resp := c.recv(req, corr).(*kmsg.DeleteGroupsResponse)
	for i, id := range ids {
		g := resp.Groups[i]
		wantCode := int16(0)
		if i == 1 {
			wantCode = kerr.NonEmptyGroup.Code
		}
		if g.Group != id || g.ErrorCode != wantCode || derefOr(g.ErrorMessage, "") != "msg "+id {
			t.Errorf("entry %d: %+v", i, g)
		}
	}
}

func TestDeleteGroups(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	env.fb.setGroupErr("far", fmt.Errorf("coordinated by node 2: %w", kerr.NotCoordinator))
	for v := int16(0); v <= 3; v++ {
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Version, req.Groups = v, []string{"a", "far"}
		resp := c.roundTrip(req).(*kmsg.DeleteGroupsResponse)
		if len(resp.Groups) != 2 || resp.Groups[0].Group != "a" || resp.Groups[0].ErrorCode != 0 ||
			resp.Groups[1].Group != "far" || resp.Groups[1].ErrorCode != kerr.NotCoordinator.Code {
			t.Fatalf("v%d: %+v", v, resp)
		}
		if (v >= 3) != (derefOr(resp.Groups[1].ErrorMessage, "") == "coordinated by node 2") {
			t.Errorf("v%d: message %v", v, resp.Groups[1].ErrorMessage)
		}
		r := checkGroupRequest(t, env.fb.group("a"), v, nil)
		if d, ok := r.Req.(*group.DeleteGroup); !ok || d.Version != v {
			t.Errorf("v%d: the actor got %+v", v, r.Req)
		}
	}
}

func TestConsumerGroupDescribe(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	env.fb.setGroupErr("far", fmt.Errorf("coordinated by node 2: %w", kerr.NotCoordinator))
	for v := int16(0); v <= 1; v++ {
		req := kmsg.NewPtrConsumerGroupDescribeRequest()
		req.Version, req.Groups, req.IncludeAuthorizedOperations = v, []string{"a", "", "far"}, true
		resp := c.roundTrip(req).(*kmsg.ConsumerGroupDescribeResponse)
		if len(resp.Groups) != 3 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		a, empty, far := resp.Groups[0], resp.Groups[1], resp.Groups[2]
		if a.Group != "a" || a.ErrorCode != 0 || a.Epoch != 5 || a.AssignorName != "uniform" {
			t.Errorf("v%d: a: %+v", v, a)
		}
		if empty.ErrorCode != kerr.InvalidGroupID.Code || far.ErrorCode != kerr.NotCoordinator.Code ||
			far.Group != "far" || far.AuthorizedOperations != authorizedOpsOmitted {
			t.Errorf("v%d: errors: %+v %+v", v, empty, far)
		}
		r := checkGroupRequest(t, env.fb.group("a"), v, nil)
		if d, ok := r.Req.(*group.DescribeConsumerGroup); !ok || d.Version != v || !d.IncludeAuthorizedOperations {
			t.Errorf("v%d: the actor got %+v", v, r.Req)
		}
	}
	if env.fb.hasGroup("") {
		t.Error("the empty group id reached an actor")
	}
}

func TestListGroups(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	env.fb.setSummaries([]group.Summary{
		{GroupID: "classic-stable", ProtocolType: "consumer", State: "Stable", GroupType: "classic"},
		{GroupID: "offsets-only", ProtocolType: "", State: "Empty", GroupType: "classic"},
		{GroupID: "new-gen", ProtocolType: "consumer", State: "Reconciling", GroupType: "consumer"},
	})
	list := func(v int16, states, types []string) []string {
		t.Helper()
		req := kmsg.NewPtrListGroupsRequest()
		req.Version, req.StatesFilter, req.TypesFilter = v, states, types
		resp := c.roundTrip(req).(*kmsg.ListGroupsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		var out []string
		for _, g := range resp.Groups {
			out = append(out, g.Group)
			if v >= 4 && g.GroupState == "" || v >= 5 && g.GroupType == "" {
				t.Errorf("v%d: %+v", v, g)
			}
		}
		return out
	}
	for v := int16(0); v <= 5; v++ {
		if got := list(v, nil, nil); len(got) != 3 {
			t.Errorf("v%d unfiltered: %v", v, got)
		}
	}
	for _, tc := range []struct {
		v             int16
		states, types []string
		want          int
	}{
		{3, []string{"stable"}, nil, 3}, // filters below their version are not on the wire
		{4, []string{"stable"}, nil, 1},
		{4, []string{"STABLE", "empty"}, nil, 2},
		{4, []string{"Dead"}, nil, 0},
		{4, nil, []string{"consumer"}, 3},
		{5, nil, []string{"CONSUMER"}, 1},
		{5, []string{"empty"}, []string{"Classic"}, 1},
		{5, nil, []string{"share"}, 0},
	} {
		if got := list(tc.v, tc.states, tc.types); len(got) != tc.want {
			t.Errorf("v%d states %v types %v: %v, want %d groups", tc.v, tc.states, tc.types, got, tc.want)
		}
	}
}
