package group

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// This file holds the test harness of the classic protocol and offsets:
// a Core with a simulated offsets partition (appends complete only when
// the test says so), a topic view, and printers for replies and records.

// topicView is a TopicView over a fixed map; ids derive from names.
type topicView map[string]int32

func viewTopicID(name string) [16]byte {
	var id [16]byte
	copy(id[:], "id:"+name)
	return id
}

func (v topicView) TopicByName(name string) ([16]byte, int32, bool) {
	n, ok := v[name]
	return viewTopicID(name), n, ok
}

func (v topicView) TopicByID(id [16]byte) (string, int32, bool) {
	for name, n := range v {
		if viewTopicID(name) == id {
			return name, n, true
		}
	}
	return "", 0, false
}

func (v topicView) TopicNames() []string {
	names := make([]string, 0, len(v))
	for n := range v {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// groupHarness drives one Core. Requests are tagged by name; the
// outstanding Append waits for complete().
type groupHarness struct {
	t       testing.TB
	c       *Core
	s       Settings
	now     int64
	view    topicView
	tags    map[int64]string
	nextTag int64
	// log is every record an append acknowledged, in order: what the
	// offsets partition holds.
	log     []Record
	pending *Append
	out     strings.Builder // what the last steps produced
}

func newGroupHarness(t testing.TB, s Settings) *groupHarness {
	h := &groupHarness{t: t, s: s, view: topicView{}, tags: map[int64]string{}}
	h.c = New("g", s, nil, 0)
	return h
}

// request steps req tagged name at the harness time.
func (h *groupHarness) request(name, clientID, newMemberID string, req any) {
	h.nextTag++
	h.tags[h.nextTag] = name
	h.c.Step(Request{
		Tag: h.nextTag, NowMs: h.now,
		ClientID: clientID, ClientHost: "/10.0.0.1",
		NewMemberID: newMemberID, Topics: h.view, Req: req,
	})
	h.drain()
}

func (h *groupHarness) tick(now int64) {
	h.now = now
	h.c.Step(Tick{NowMs: now})
	h.drain()
}

// complete finishes the outstanding append with errCode.
func (h *groupHarness) complete(errCode int16) {
	if h.pending == nil {
		h.out.WriteString("error: no append outstanding\n")
		return
	}
	if errCode == 0 {
		h.log = append(h.log, h.pending.Records...)
	}
	h.pending = nil
	h.c.Step(Appended{NowMs: h.now, ErrorCode: errCode})
	h.drain()
}

// drain collects Ready into h.out and the harness state.
func (h *groupHarness) drain() {
	rd := h.c.Ready()
	for _, r := range rd.Replies {
		fmt.Fprintf(&h.out, "%s: %s\n", h.tags[r.Tag], formatResp(r.Resp))
		delete(h.tags, r.Tag)
	}
	if rd.Append != nil {
		if h.pending != nil {
			h.t.Fatalf("a second append while one is outstanding")
		}
		h.pending = rd.Append
		fmt.Fprintf(&h.out, "append:\n")
		for _, rec := range rd.Append.Records {
			fmt.Fprintf(&h.out, "  %s\n", formatRecord(rec))
		}
	}
}

func (h *groupHarness) take() string {
	s := h.out.String()
	h.out.Reset()
	if s == "" {
		return "ok\n"
	}
	return s
}

// restart replays the acknowledged log into a new core at the harness
// time, as a new coordinator would.
func (h *groupHarness) restart() {
	var rp Replayer
	for _, rec := range h.log {
		if err := rp.Add(rec.Key, rec.Value); err != nil {
			h.t.Fatalf("replaying the log: %v", err)
		}
	}
	h.c = New("g", h.s, rp.Groups()["g"], h.now)
	h.pending = nil
	h.tags = map[int64]string{}
}

func errName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return e.Message
	}
	return strconv.Itoa(int(code))
}

func errCode(t testing.TB, name string) int16 {
	if n, err := strconv.Atoi(name); err == nil {
		return int16(n)
	}
	for code := int16(-1); code < 200; code++ {
		if errName(code) == name {
			return code
		}
	}
	t.Fatalf("unknown error %q", name)
	return 0
}

func strp(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// subscription encodes a consumer-protocol subscription to topics.
func subscription(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

// formatMeta prints protocol metadata: the topics of a consumer
// subscription, else the raw bytes.
func formatMeta(b []byte) string {
	var m kmsg.ConsumerMemberMetadata
	if len(b) > 0 && m.ReadFrom(b) == nil {
		return strings.Join(m.Topics, "+")
	}
	return fmt.Sprintf("%q", b)
}

func formatResp(resp any) string {
	var b strings.Builder
	switch r := resp.(type) {
	case *kmsg.JoinGroupResponse:
		fmt.Fprintf(&b, "join %s member=%s gen=%d", errName(r.ErrorCode), r.MemberID, r.Generation)
		if r.ErrorCode == 0 || r.LeaderID != "" {
			fmt.Fprintf(&b, " leader=%s ptype=%s proto=%s", r.LeaderID, strp(r.ProtocolType), strp(r.Protocol))
		}
		if len(r.Members) > 0 {
			var ms []string
			for _, m := range r.Members {
				s := m.MemberID + "[" + formatMeta(m.ProtocolMetadata) + "]"
				if m.InstanceID != nil {
					s += "/" + *m.InstanceID
				}
				ms = append(ms, s)
			}
			fmt.Fprintf(&b, " members=(%s)", strings.Join(ms, ", "))
		}
		if r.SkipAssignment {
			b.WriteString(" skip-assignment")
		}
	case *kmsg.SyncGroupResponse:
		fmt.Fprintf(&b, "sync %s assignment=%q", errName(r.ErrorCode), r.MemberAssignment)
		if r.ProtocolType != nil || r.Protocol != nil {
			fmt.Fprintf(&b, " ptype=%s proto=%s", strp(r.ProtocolType), strp(r.Protocol))
		}
	case *kmsg.HeartbeatResponse:
		fmt.Fprintf(&b, "heartbeat %s", errName(r.ErrorCode))
	case *kmsg.LeaveGroupResponse:
		fmt.Fprintf(&b, "leave %s", errName(r.ErrorCode))
		for _, m := range r.Members {
			fmt.Fprintf(&b, " %s", m.MemberID)
			if m.InstanceID != nil {
				fmt.Fprintf(&b, "/%s", *m.InstanceID)
			}
			fmt.Fprintf(&b, "=%s", errName(m.ErrorCode))
		}
	case *kmsg.OffsetCommitResponse:
		b.WriteString("commit")
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				fmt.Fprintf(&b, " %s/%d=%s", t.Topic, p.Partition, errName(p.ErrorCode))
			}
		}
	case *kmsg.OffsetFetchResponseGroup:
		fmt.Fprintf(&b, "fetch %s", errName(r.ErrorCode))
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				fmt.Fprintf(&b, " %s/%d=", t.Topic, p.Partition)
				if p.ErrorCode != 0 {
					b.WriteString(errName(p.ErrorCode))
					continue
				}
				fmt.Fprintf(&b, "%d", p.Offset)
				if p.Offset >= 0 {
					fmt.Fprintf(&b, "(e%d,%q)", p.LeaderEpoch, strp(p.Metadata))
				}
			}
		}
	case *kmsg.OffsetDeleteResponse:
		fmt.Fprintf(&b, "offset-delete %s", errName(r.ErrorCode))
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				fmt.Fprintf(&b, " %s/%d=%s", t.Topic, p.Partition, errName(p.ErrorCode))
			}
		}
	case *kmsg.DescribeGroupsResponseGroup:
		fmt.Fprintf(&b, "describe %s state=%s ptype=%q proto=%q", errName(r.ErrorCode), r.State, r.ProtocolType, r.Protocol)
		if r.AuthorizedOperations != -2147483648 {
			fmt.Fprintf(&b, " ops=%d", r.AuthorizedOperations)
		}
		for _, m := range r.Members {
			fmt.Fprintf(&b, "\n  %s", m.MemberID)
			if m.InstanceID != nil {
				fmt.Fprintf(&b, "/%s", *m.InstanceID)
			}
			fmt.Fprintf(&b, " client=%s host=%s meta=%s assignment=%q", m.ClientID, m.ClientHost, formatMeta(m.ProtocolMetadata), m.MemberAssignment)
		}
	case *kmsg.DeleteGroupsResponseGroup:
		fmt.Fprintf(&b, "delete %s", errName(r.ErrorCode))
	default:
		fmt.Fprintf(&b, "%T %v", resp, resp)
	}
	return b.String()
}

// formatRecord decodes a record of the offsets topic for printing.
func formatRecord(rec Record) string {
	var rp Replayer
	if err := rp.Add(rec.Key, rec.Value); err != nil {
		return "undecodable: " + err.Error()
	}
	var k kmsg.OffsetCommitKey
	if rec.Key[1] < 2 && k.ReadFrom(rec.Key) == nil {
		if rec.Value == nil {
			return fmt.Sprintf("offset %s %s/%d tombstone", k.Group, k.Topic, k.Partition)
		}
		o := rp.Groups()[k.Group].Offsets[TopicPartition{k.Topic, k.Partition}]
		s := fmt.Sprintf("offset %s %s/%d = %d epoch=%d meta=%q ts=%d", k.Group, k.Topic, k.Partition, o.Offset, o.LeaderEpoch, o.Metadata, o.CommitTimestampMs)
		if o.ExpireTimestampMs != noExpireTimestamp {
			s += fmt.Sprintf(" expire=%d", o.ExpireTimestampMs)
		}
		return s
	}
	var gk kmsg.GroupMetadataKey
	if gk.ReadFrom(rec.Key) != nil {
		return "undecodable key"
	}
	if rec.Value == nil {
		return fmt.Sprintf("group %s tombstone", gk.Group)
	}
	return fmt.Sprintf("group %s %s", gk.Group, formatGroupValue(rp.Groups()[gk.Group].Group))
}

func formatGroupValue(v *kmsg.GroupMetadataValue) string {
	var b strings.Builder
	fmt.Fprintf(&b, "gen=%d ptype=%q proto=%s leader=%s since=%d", v.Generation, v.ProtocolType, strp(v.Protocol), strp(v.Leader), v.CurrentStateTimestamp)
	for _, m := range v.Members {
		fmt.Fprintf(&b, " [%s", m.MemberID)
		if m.InstanceID != nil {
			fmt.Fprintf(&b, "/%s", *m.InstanceID)
		}
		fmt.Fprintf(&b, " %s/%s rt=%d st=%d sub=%s assign=%q]", m.ClientID, m.ClientHost, m.RebalanceTimeoutMillis, m.SessionTimeoutMillis, formatMeta(m.Subscription), m.Assignment)
	}
	return b.String()
}

// formatState prints the core's observable state and its internals
// that the scripts check.
func (h *groupHarness) formatState() string {
	var b strings.Builder
	c := h.c
	g := &c.classic
	sum := c.Summary()
	fmt.Fprintf(&b, "%s %s ptype=%q gen=%d", sum.GroupType, sum.State, sum.ProtocolType, g.generation)
	if g.hasProtocol {
		fmt.Fprintf(&b, " proto=%s", g.protocol)
	}
	if g.leader != "" {
		fmt.Fprintf(&b, " leader=%s", g.leader)
	}
	fmt.Fprintf(&b, " dead=%v next-tick=%d\n", c.Dead(), c.NextTickMs())
	for _, m := range g.members {
		fmt.Fprintf(&b, "  member %s", m.id)
		if m.instanceID != nil {
			fmt.Fprintf(&b, "/%s", *m.instanceID)
		}
		fmt.Fprintf(&b, " hb=%d", m.hbDeadline)
		if m.join != nil {
			b.WriteString(" in-join")
		}
		if m.sync != nil {
			b.WriteString(" in-sync")
		}
		if _, ok := g.pendingSync[m.id]; ok {
			b.WriteString(" pending-sync")
		}
		fmt.Fprintf(&b, " assignment=%q\n", m.assignment)
	}
	var pending []string
	for id, at := range g.pending {
		pending = append(pending, fmt.Sprintf("%s@%d", id, at))
	}
	slices.Sort(pending)
	for _, p := range pending {
		fmt.Fprintf(&b, "  pending %s\n", p)
	}
	for _, topic := range c.offsets.sortedTopics() {
		for _, p := range sortedPartitions(c.offsets.topics[topic]) {
			fmt.Fprintf(&b, "  offset %s/%d %s\n", topic, p, c.offsets.topics[topic][p])
		}
	}
	return b.String()
}
