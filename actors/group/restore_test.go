package group

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRestoreFromLog drives a group through joins, syncs, commits and
// deletions, replays every record its appends wrote into a new core, as
// a new coordinator does after a failover, and checks that the new core
// answers OffsetFetch and DescribeGroups exactly as the old one, with
// the members back in a Stable group and their sessions running again.
func TestRestoreFromLog(t *testing.T) {
	s := DefaultSettings()
	s.InitialRebalanceDelayMs = 100
	h := newGroupHarness(t, s)
	h.view["t"], h.view["u"], h.view["v"] = 3, 1, 1

	// every collects the records of every Append, acknowledged or not;
	// all are acknowledged here, so it must equal h.log.
	var every []Record
	step := func(name string, req any, newID string) string {
		t.Helper()
		h.request(name, "client-"+name, newID, req)
		return h.take()
	}
	ack := func() string {
		t.Helper()
		if h.pending == nil {
			t.Fatal("no append outstanding")
		}
		every = append(every, h.pending.Records...)
		h.complete(0)
		return h.take()
	}
	join := func(member, newID string, instance *string, topics ...string) *kmsg.JoinGroupRequest {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version, req.Group, req.MemberID, req.InstanceID = 5, "g", member, instance
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis, req.ProtocolType = 10000, 20000, "consumer"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", subscription(topics...)
		req.Protocols = []kmsg.JoinGroupRequestProtocol{p}
		return req
	}
	sync := func(member string, gen int32, assign ...string) *kmsg.SyncGroupRequest {
		req := kmsg.NewPtrSyncGroupRequest()
		req.Version, req.Group, req.MemberID, req.Generation = 3, "g", member, gen
		for i := 0; i+1 < len(assign); i += 2 {
			a := kmsg.NewSyncGroupRequestGroupAssignment()
			a.MemberID, a.MemberAssignment = assign[i], []byte(assign[i+1])
			req.GroupAssignment = append(req.GroupAssignment, a)
		}
		return req
	}
	commit := func(member string, gen int32, offsets ...string) *kmsg.OffsetCommitRequest {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version, req.Group, req.MemberID, req.Generation = 8, "g", member, gen
		for _, o := range offsets { // topic:partition:offset:metadata
			f := strings.Split(o, ":")
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic = f[0]
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition = int32(f[1][0] - '0')
			rp.Offset = int64(len(f[2])) * 1000
			rp.LeaderEpoch = int32(len(f[0]))
			rp.Metadata = kmsg.StringPtr(f[3])
			rt.Partitions = []kmsg.OffsetCommitRequestTopicPartition{rp}
			req.Topics = append(req.Topics, rt)
		}
		return req
	}
	expect := func(got, want string) {
		t.Helper()
		if !strings.Contains(got, want) {
			t.Fatalf("got\n%s\nwant it to contain %q", got, want)
		}
	}

	// Generation 1: a (dynamic) and b (static) on t and u.
	h.now = 1000
	expect(step("ja", join("", "a", nil, "t"), "a"), "ja: join MEMBER_ID_REQUIRED member=a") // KIP-394
	step("ja", join("a", "", nil, "t"), "")
	step("jb", join("", "b", kmsg.StringPtr("ib"), "t", "u"), "b")
	// The initial rebalance delay runs twice: b joined during the first.
	h.tick(1100)
	h.tick(1200)
	expect(h.take(), "jb: join NONE member=b gen=1")
	step("sa", sync("a", 1, "a", "A1", "b", "B1"), "")
	expect(ack(), "sa: sync NONE")
	expect(step("sb", sync("b", 1), ""), "sb: sync NONE")

	// Commits, two of them decided while the first is in flight; one to
	// v, which no member reads and which is deleted again.
	step("c1", commit("a", 1, "t:0:xx:a-0", "t:1:xxx:a-1"), "")
	step("c2", commit("b", 1, "u:0:x:b-0"), "")
	step("c3", commit("a", 1, "v:0:xxxx:gone"), "")
	expect(ack(), "c1: commit t/0=NONE t/1=NONE")
	expect(ack(), "c3: commit v/0=NONE")
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "g"
	odt := kmsg.NewOffsetDeleteRequestTopic()
	odt.Topic = "v"
	odt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}
	od.Topics = []kmsg.OffsetDeleteRequestTopic{odt}
	step("od", od, "")
	expect(ack(), "od: offset-delete NONE v/0=NONE")

	// Generation 2: c joins, then b's commit of a newer offset.
	h.now = 3000
	step("jc", join("", "c", nil, "t"), "c")
	step("jc", join("c", "", nil, "t"), "")
	step("ja2", join("a", "", nil, "t"), "")
	expect(step("jb2", join("b", "", kmsg.StringPtr("ib"), "t", "u"), ""), "ja2: join NONE member=a gen=2")
	step("sa2", sync("a", 2, "a", "A2", "b", "B2", "c", "C2"), "")
	expect(ack(), "sa2: sync NONE")
	step("sb2", sync("b", 2), "")
	step("sc2", sync("c", 2), "")
	step("c4", commit("b", 2, "u:0:xxxxx:b-1", "t:2:xxxxxx:b-2"), "")
	expect(ack(), "c4: commit u/0=NONE t/2=NONE")
	if sum := h.c.Summary(); sum.State != "Stable" {
		t.Fatalf("the group is %s before the restart", sum.State)
	}

	if h.pending != nil {
		t.Fatal("an append is still outstanding")
	}
	if len(every) != len(h.log) {
		t.Fatalf("%d records appended, %d acknowledged", len(every), len(h.log))
	}

	// A new coordinator replays the log.
	var rp Replayer
	for i, rec := range every {
		if err := rp.Add(rec.Key, rec.Value); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	loaded := rp.Groups()["g"]
	if loaded == nil || loaded.Group == nil || len(loaded.Offsets) != 4 {
		t.Fatalf("replayed %+v", loaded)
	}
	// The old core answers now; the new one, started later, must answer
	// the same.
	const restartMs = 60000
	old := h.c
	oldSummary := old.Summary()
	restored := New("g", s, loaded, restartMs)

	ask := func(c *Core, now int64, req any) string {
		h.c, h.now = c, now
		h.request("q", "", "", req)
		return h.take()
	}
	for _, q := range []any{
		&FetchOffsets{Version: 8, MemberEpoch: -1},
		&FetchOffsets{Version: 8, MemberEpoch: -1, RequireStable: true, Topics: []kmsg.OffsetFetchRequestGroupTopic{
			{Topic: "t", Partitions: []int32{0, 1, 2, 3}}, {Topic: "u", Partitions: []int32{0}}, {Topic: "v", Partitions: []int32{0}},
		}},
		&FetchOffsets{Version: 10, MemberEpoch: -1},
		&DescribeGroup{Version: 5, IncludeAuthorizedOperations: true},
	} {
		want, got := ask(old, 3000, q), ask(restored, restartMs, q)
		if got != want {
			t.Errorf("%T: the restored core answers\n%s\nthe old one\n%s", q, got, want)
		}
	}
	h.c = restored
	if got := restored.Summary(); got != oldSummary || got.State != "Stable" {
		t.Fatalf("restored summary %+v, old %+v", got, oldSummary)
	}
	if restored.classic.generation != 2 || restored.classic.leader != "a" || restored.classic.protocol != "range" {
		t.Fatalf("restored generation %d leader %q protocol %q", restored.classic.generation, restored.classic.leader, restored.classic.protocol)
	}

	// Sessions run again from the restart: every member must heartbeat
	// within its session timeout of it.
	if got := restored.NextTickMs(); got != restartMs+10000 {
		t.Fatalf("next tick %d, want %d", got, restartMs+10000)
	}
	for _, m := range restored.classic.members {
		if m.hbDeadline != restartMs+10000 {
			t.Errorf("member %s session deadline %d, want %d", m.id, m.hbDeadline, restartMs+10000)
		}
	}
	hb := func(member string, instance *string) *kmsg.HeartbeatRequest {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Version, req.Group, req.MemberID, req.InstanceID, req.Generation = 4, "g", member, instance, 2
		return req
	}
	h.now = restartMs + 9000
	expect(step("ha", hb("a", nil), ""), "ha: heartbeat NONE")
	expect(step("hb", hb("b", kmsg.StringPtr("ib")), ""), "hb: heartbeat NONE")
	// c stays silent and is removed at its deadline; a and b rejoin.
	h.tick(restartMs + 10000)
	if sum := restored.Summary(); sum.State != "PreparingRebalance" || restored.classic.byID["c"] != nil || len(restored.classic.members) != 2 {
		t.Fatalf("after c's session: %+v with %d members", sum, len(restored.classic.members))
	}
	expect(step("ha3", hb("a", nil), ""), "ha3: heartbeat REBALANCE_IN_PROGRESS")
	// During that rebalance the restored generation still commits.
	expect(step("c5", commit("a", 2, "t:0:xxxxxxx:a-2"), ""), "")
	expect(ack(), "c5: commit t/0=NONE")
}
