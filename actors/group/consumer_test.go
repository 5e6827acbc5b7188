package group

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeTopics is a TopicView over topic names and partition counts; a
// topic's id is its name's bytes, so ids sort like names.
type fakeTopics struct{ partitions map[string]int32 }

func (f *fakeTopics) TopicByName(name string) ([16]byte, int32, bool) {
	n, ok := f.partitions[name]
	return testTopicID(name), n, ok
}

func (f *fakeTopics) TopicByID(id [16]byte) (string, int32, bool) {
	name := strings.TrimRight(string(id[:]), "\x00")
	n, ok := f.partitions[name]
	return name, n, ok
}

func (f *fakeTopics) TopicNames() []string {
	var names []string
	for name := range f.partitions {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// testClient is a consumer as the coordinator's counterpart sees it,
// behaving like franz-go: it takes partitions as soon as an assignment
// names them, but keeps those the assignment dropped until it revoked
// them (committing first), and only then reports them gone.
type testClient struct {
	name       string
	id         string
	instanceID *string
	epoch      int32
	topics     []string
	regex      *string
	assignor   string
	rebalance  int32
	// assigned is the coordinator's last word; owned what the client
	// still consumes (assigned plus what it is revoking).
	assigned, owned assignment
}

type harness struct {
	t       testing.TB
	c       *Core
	view    *fakeTopics
	now     int64
	tag     int64
	clients map[string]*testClient
}

func newHarness(t testing.TB, s Settings) *harness {
	return &harness{
		t:       t,
		c:       New("g", s, nil, 0),
		view:    &fakeTopics{partitions: map[string]int32{}},
		clients: map[string]*testClient{},
	}
}

// step sends one request and returns its only reply.
func (h *harness) step(req any) any {
	h.t.Helper()
	h.tag++
	h.c.Step(Request{
		Tag: h.tag, NowMs: h.now, ClientID: "cli", ClientHost: "/127.0.0.1",
		NewMemberID: fmt.Sprintf("gen-%d", h.tag), Topics: h.view, Req: req,
	})
	rd := h.c.Ready()
	if len(rd.Replies) != 1 || rd.Replies[0].Tag != h.tag {
		h.t.Fatalf("want one reply to tag %d, got %+v", h.tag, rd.Replies)
	}
	return rd.Replies[0].Resp
}

func (h *harness) client(name string) *testClient {
	cl := h.clients[name]
	if cl == nil {
		cl = &testClient{name: name, id: name, rebalance: 60000, assignor: "uniform"}
		h.clients[name] = cl
	}
	return cl
}

func toRequestTopics(a assignment) []kmsg.ConsumerGroupHeartbeatRequestTopic {
	out := []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	for _, id := range a.sortedTopicIDs() {
		if len(a[id]) == 0 {
			continue
		}
		t := kmsg.NewConsumerGroupHeartbeatRequestTopic()
		t.TopicID, t.Partitions = id, slices.Clone(a[id])
		out = append(out, t)
	}
	return out
}

// request builds cl's next heartbeat: a join (epoch 0), a full request
// (every field, the partitions it owns) or a keepalive (nothing optional).
func (cl *testClient) request(kind string) *kmsg.ConsumerGroupHeartbeatRequest {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group = "g"
	req.MemberID = cl.id
	req.MemberEpoch = cl.epoch
	if kind == "keepalive" {
		req.RebalanceTimeoutMillis = -1
		return req
	}
	req.InstanceID = cl.instanceID
	req.RebalanceTimeoutMillis = cl.rebalance
	if cl.regex != nil && *cl.regex != "" {
		req.SubscribedTopicRegex = cl.regex
	} else {
		req.SubscribedTopicNames = append([]string{}, cl.topics...)
		req.SubscribedTopicRegex = cl.regex // "" drops a regex subscription
	}
	if cl.assignor != "" {
		req.ServerAssignor = kmsg.StringPtr(cl.assignor)
	}
	req.Topics = toRequestTopics(cl.owned)
	if kind == "join" {
		req.MemberEpoch = 0
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	}
	return req
}

// apply takes a heartbeat response into the client as franz-go does.
func (cl *testClient) apply(resp *kmsg.ConsumerGroupHeartbeatResponse) {
	switch resp.ErrorCode {
	case 0:
	case kerr.UnknownMemberID.Code, kerr.FencedMemberEpoch.Code:
		// Abandon everything and rejoin (franz-go keeps the member id
		// on FENCED; on UNKNOWN it draws a new one, the harness keeps
		// the name).
		cl.owned, cl.assigned, cl.epoch = nil, nil, 0
		return
	default:
		return
	}
	if resp.MemberID != nil {
		cl.id = *resp.MemberID
	}
	cl.epoch = resp.MemberEpoch
	if resp.Assignment != nil {
		cl.assigned = assignment{}
		for _, t := range resp.Assignment.Topics {
			cl.assigned[t.TopicID] = slices.Clone(t.Partitions)
		}
		owned := assignment{}
		for id, ps := range cl.assigned {
			owned[id] = unionSorted(ps, cl.owned[id])
		}
		for id, ps := range cl.owned {
			if _, ok := owned[id]; !ok {
				owned[id] = ps
			}
		}
		cl.owned = owned
	}
}

// revoke finishes revoking: the client keeps only what it is assigned.
func (cl *testClient) revoke() {
	cl.owned = assignment{}
	for id, ps := range cl.assigned {
		cl.owned[id] = slices.Clone(ps)
	}
}

func (h *harness) heartbeat(cl *testClient, kind string) *kmsg.ConsumerGroupHeartbeatResponse {
	h.t.Helper()
	resp := h.step(cl.request(kind)).(*kmsg.ConsumerGroupHeartbeatResponse)
	cl.apply(resp)
	return resp
}

func (h *harness) leave(cl *testClient, static bool) *kmsg.ConsumerGroupHeartbeatResponse {
	h.t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group = "g"
	req.MemberID = cl.id
	req.MemberEpoch = leaveGroupMemberEpoch
	if static {
		req.MemberEpoch = leaveGroupStaticMemberEpoch // no InstanceID: as franz-go sends it
	}
	resp := h.step(req).(*kmsg.ConsumerGroupHeartbeatResponse)
	if resp.ErrorCode == 0 {
		cl.owned, cl.assigned, cl.epoch = nil, nil, 0
	}
	return resp
}

func (h *harness) describe() *kmsg.ConsumerGroupDescribeResponseGroup {
	h.t.Helper()
	return h.step(&DescribeConsumerGroup{Version: 1}).(*kmsg.ConsumerGroupDescribeResponseGroup)
}

// checkInvariants asserts that no partition is ever handed to two
// members at once: on the coordinator, every partition has at most one
// holder (assigned or pending revocation) and owners says exactly that;
// on the clients, no two live members consume the same partition.
func (h *harness) checkInvariants() {
	h.t.Helper()
	cs := &h.c.consumer
	held := map[topicPartition]string{}
	for _, id := range cs.sortedMemberIDs() {
		m := cs.members[id]
		for _, a := range []assignment{m.assigned, m.revoking} {
			for tid, ps := range a {
				for _, p := range ps {
					k := topicPartition{tid, p}
					if other, dup := held[k]; dup {
						h.t.Fatalf("coordinator: %x-%d held by %s and %s", tid[:2], p, other, id)
					}
					held[k] = id
				}
			}
		}
	}
	if len(held) != len(cs.owners) {
		h.t.Fatalf("owners has %d entries, members hold %d", len(cs.owners), len(held))
	}
	for k, id := range held {
		if cs.owners[k] != id {
			h.t.Fatalf("owners[%x-%d] = %q, held by %q", k.id[:2], k.p, cs.owners[k], id)
		}
	}
	// The subscription and assignor counts follow the members.
	names, regexes, votes := map[string]int{}, map[string]int{}, map[string]int{}
	for _, m := range cs.members {
		for _, n := range m.topicNames {
			names[n]++
		}
		if m.regex != "" {
			regexes[m.regex]++
		}
		if m.assignor != "" {
			votes[m.assignor]++
		}
	}
	rs := map[string]int{}
	for re, sub := range cs.regexSubs {
		rs[re] = sub.members
	}
	if !maps.Equal(names, cs.nameSubs) || !maps.Equal(regexes, rs) || !maps.Equal(votes, cs.assignorVotes) {
		h.t.Fatalf("counts out of step: names %v/%v regexes %v/%v votes %v/%v", names, cs.nameSubs, regexes, rs, votes, cs.assignorVotes)
	}
	consumed := map[topicPartition]string{}
	for _, name := range slices.Sorted(mapKeys(h.clients)) {
		cl := h.clients[name]
		m := cs.members[cl.id]
		if m == nil {
			continue // a zombie: the coordinator fenced it and will reject it
		}
		for tid, ps := range cl.owned {
			for _, p := range ps {
				k := topicPartition{tid, p}
				if other, dup := consumed[k]; dup {
					h.t.Fatalf("clients %s and %s both consume %x-%d", other, name, tid[:2], p)
				}
				consumed[k] = name
				if !m.assigned.contains(tid, p) && !m.revoking.contains(tid, p) {
					h.t.Fatalf("client %s consumes %x-%d that the coordinator does not account to it", name, tid[:2], p)
				}
			}
		}
	}
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// fmtAssignment prints partitions by topic name: t[0 1] u[2].
func fmtAssignment(a assignment) string {
	var parts []string
	for _, id := range a.sortedTopicIDs() {
		if len(a[id]) > 0 {
			parts = append(parts, fmt.Sprintf("%s%v", strings.TrimRight(string(id[:]), "\x00"), a[id]))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func fmtResponse(name string, resp *kmsg.ConsumerGroupHeartbeatResponse) string {
	if resp.ErrorCode != 0 {
		msg := ""
		if resp.ErrorMessage != nil {
			msg = ": " + *resp.ErrorMessage
		}
		return fmt.Sprintf("%s: %s%s\n", name, kerr.ErrorForCode(resp.ErrorCode).(*kerr.Error).Message, msg)
	}
	s := fmt.Sprintf("%s: epoch=%d", name, resp.MemberEpoch)
	if resp.Assignment != nil {
		a := assignment{}
		for _, t := range resp.Assignment.Topics {
			a[t.TopicID] = t.Partitions
		}
		s += " assignment=" + fmtAssignment(a)
	}
	return s + "\n"
}

func (h *harness) fmtState() string {
	cs := &h.c.consumer
	state, _ := h.c.consumerSummary()
	var b strings.Builder
	fmt.Fprintf(&b, "group epoch=%d assignment-epoch=%d state=%s\n", cs.epoch, cs.assignmentEpoch, state)
	for _, id := range cs.sortedMemberIDs() {
		m := cs.members[id]
		fmt.Fprintf(&b, "%s: epoch=%d %s assigned=%s", id, m.epoch, m.state, fmtAssignment(m.assigned))
		if len(m.revoking) > 0 {
			fmt.Fprintf(&b, " revoking=%s", fmtAssignment(m.revoking))
		}
		fmt.Fprintf(&b, " target=%s\n", fmtAssignment(m.target))
	}
	return b.String()
}

func fmtDescribe(g *kmsg.ConsumerGroupDescribeResponseGroup) string {
	var b strings.Builder
	if g.ErrorCode != 0 {
		fmt.Fprintf(&b, "error %s: %s\n", kerr.ErrorForCode(g.ErrorCode).(*kerr.Error).Message, *g.ErrorMessage)
		return b.String()
	}
	fmt.Fprintf(&b, "group %s state=%s epoch=%d assignment-epoch=%d assignor=%s\n", g.Group, g.State, g.Epoch, g.AssignmentEpoch, g.AssignorName)
	kas := func(a kmsg.Assignment) string {
		var parts []string
		for _, t := range a.TopicPartitions {
			parts = append(parts, fmt.Sprintf("%s%v", t.Topic, t.Partitions))
		}
		if len(parts) == 0 {
			return "-"
		}
		return strings.Join(parts, " ")
	}
	for _, m := range g.Members {
		inst := ""
		if m.InstanceID != nil {
			inst = " instance=" + *m.InstanceID
		}
		if m.RackID != nil {
			inst += " rack=" + *m.RackID
		}
		sub := strings.Join(m.SubscribedTopics, ",")
		if m.SubscribedTopicRegex != nil {
			sub += " regex=" + *m.SubscribedTopicRegex
		}
		fmt.Fprintf(&b, "  %s%s epoch=%d client=%s@%s type=%d topics=%s assignment=%s target=%s\n",
			m.MemberID, inst, m.MemberEpoch, m.ClientID, m.ClientHost, m.MemberType, sub, kas(m.Assignment), kas(m.TargetAssignment))
	}
	return b.String()
}

// TestConsumerDataDriven runs testdata/consumer_*.txt: each command drives
// the coordinator through modelled clients and prints what they got.
// Rewrite the expectations after a deliberate change with
//
//	go test ./actors/group -run TestConsumerDataDriven -rewrite
//
// and review the diff.
//
// Commands:
//
//	new [session=MS] [interval=MS] [max=N] [assignors=(a,b)]
//	topic name=T partitions=N        create or grow a topic
//	delete-topic name=T
//	join member=M [topics=(T,...)] [regex=RE] [instance=I] [assignor=A] [rebalance=MS] [rack=R]
//	hb member=M [epoch=N]            a full heartbeat reporting what M consumes
//	keepalive member=M [epoch=N]     a heartbeat with no optional field
//	revoke member=M                  M finishes revoking, then sends a full heartbeat
//	subscribe member=M topics=(...)  M subscribes to these names (full heartbeat)
//	leave member=M [static]
//	advance ms=N                     move the clock, then Tick
//	commit member=M epoch=N          consumerValidateCommit
//	state | describe
func TestConsumerDataDriven(t *testing.T) {
	files, err := filepath.Glob("testdata/consumer_*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no consumer test files: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var h *harness
			datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
				if td.Cmd != "new" && h == nil {
					t.Fatalf("%s: %s before new", td.Pos, td.Cmd)
				}
				str := func(key string) string {
					var s string
					td.MaybeScanArgs(t, key, &s)
					return s
				}
				num := func(key string, def int64) int64 {
					v := def
					td.MaybeScanArgs(t, key, &v)
					return v
				}
				member := func() *testClient {
					cl := h.client(str("member"))
					if td.HasArg("epoch") && td.Cmd != "commit" {
						cl.epoch = int32(num("epoch", 0)) // a client out of step
					}
					return cl
				}
				var out string
				switch td.Cmd {
				case "new":
					s := DefaultSettings()
					s.ConsumerSessionTimeoutMs = int32(num("session", 45000))
					s.ConsumerHeartbeatIntervalMs = int32(num("interval", 5000))
					s.ConsumerMaxSize = int(num("max", 1<<31-1))
					if td.HasArg("assignors") {
						td.ScanArgs(t, "assignors", &s.ConsumerAssignors)
					}
					h = newHarness(t, s)
					return "ok\n"
				case "topic":
					h.view.partitions[str("name")] = int32(num("partitions", 1))
					return "ok\n"
				case "delete-topic":
					delete(h.view.partitions, str("name"))
					return "ok\n"
				case "join":
					cl := member()
					if td.HasArg("topics") {
						td.ScanArgs(t, "topics", &cl.topics)
					}
					if re := str("regex"); re != "" {
						cl.regex = &re
					}
					if inst := str("instance"); inst != "" {
						cl.instanceID = &inst
					}
					if td.HasArg("assignor") {
						cl.assignor = str("assignor")
					}
					cl.rebalance = int32(num("rebalance", 60000))
					req := cl.request("join")
					if rack := str("rack"); rack != "" {
						req.RackID = &rack
					}
					resp := h.step(req).(*kmsg.ConsumerGroupHeartbeatResponse)
					cl.apply(resp)
					out = fmtResponse(cl.name, resp)
				case "hb":
					cl := member()
					out = fmtResponse(cl.name, h.heartbeat(cl, "full"))
				case "keepalive":
					cl := member()
					out = fmtResponse(cl.name, h.heartbeat(cl, "keepalive"))
				case "revoke":
					cl := member()
					cl.revoke()
					out = fmtResponse(cl.name, h.heartbeat(cl, "full"))
				case "subscribe":
					cl := member()
					td.ScanArgs(t, "topics", &cl.topics)
					if cl.regex != nil {
						cl.regex = new(string)
					}
					out = fmtResponse(cl.name, h.heartbeat(cl, "full"))
				case "leave":
					cl := member()
					out = fmtResponse(cl.name, h.leave(cl, td.HasArg("static")))
				case "advance":
					h.now += num("ms", 0)
					h.c.Step(Tick{NowMs: h.now})
					if rd := h.c.Ready(); len(rd.Replies) > 0 {
						t.Fatalf("tick replied: %+v", rd.Replies)
					}
					out = fmt.Sprintf("now=%d next-tick=%d\n", h.now, h.c.NextTickMs())
				case "commit":
					cl := member()
					code := h.c.consumerValidateCommit(cl.id, int32(num("epoch", 0)), h.now)
					if code == 0 {
						out = "ok\n"
					} else {
						out = kerr.ErrorForCode(code).(*kerr.Error).Message + "\n"
					}
				case "state":
					out = h.fmtState()
				case "describe":
					out = fmtDescribe(h.describe())
				default:
					t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
				}
				h.checkInvariants()
				return out
			})
		})
	}
}
