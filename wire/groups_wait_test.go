package wire

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors/group"
)

// Tests of group replies that wait: JoinGroup parked until the rebalance
// completes, actors that never answer, and connections or servers that
// go away meanwhile.

func joinReq(id string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version, req.Group, req.ProtocolType = 9, id, "consumer"
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 30000, 300000
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
	return req
}

func heartbeatReq(id string) *kmsg.HeartbeatRequest {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version, req.Group, req.MemberID = 4, id, "m"
	return req
}

// expectSilence asserts nothing arrives on c for d.
func (r *rawClient) expectSilence(d time.Duration) {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(d))
	var b [1]byte
	if n, err := r.c.Read(b[:]); n > 0 || err == nil {
		r.t.Fatal("a reply arrived early")
	}
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
}

// TestJoinGroupParkedAnsweredLater: a parked join is answered when its
// actor answers, however late; replies after it on the same connection
// wait for it (responses leave in request order), and the connection's
// reader keeps going meanwhile.
func TestJoinGroupParkedAnsweredLater(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	g := env.fb.group("g")
	g.setPark(true)

	join := joinReq("g")
	joinCorr := c.send(join)
	hb := heartbeatReq("other")
	hbCorr := c.send(hb)
	eventually(t, "the join to park", func() bool { return g.parkedCount() == 1 })
	// The heartbeat behind it was read and answered by its actor already.
	eventually(t, "the heartbeat to reach its actor", func() bool { return len(env.fb.group("other").requests()) == 1 })
	c.expectSilence(300 * time.Millisecond)

	for _, r := range g.setPark(false) {
		resp := r.Req.Req.(*kmsg.JoinGroupRequest).ResponseKind().(*kmsg.JoinGroupResponse)
		resp.MemberID, resp.Generation, resp.ThrottleMillis = "late-member", 7, 1234
		g.reply(r, resp)
	}
	jr := c.recv(join, joinCorr).(*kmsg.JoinGroupResponse)
	if jr.ErrorCode != 0 || jr.MemberID != "late-member" || jr.Generation != 7 || jr.ThrottleMillis != 0 {
		t.Errorf("join: %+v", jr)
	}
	if hr := c.recv(hb, hbCorr).(*kmsg.HeartbeatResponse); hr.ErrorCode != 0 {
		t.Errorf("heartbeat: %+v", hr)
	}
}

// TestParkedJoinEndsWithItsConnection: a client that goes away while its
// join is parked releases the connection at once, not at the rebalance
// timeout.
func TestParkedJoinEndsWithItsConnection(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	g := env.fb.group("g")
	g.setPark(true)
	c.send(joinReq("g"))
	eventually(t, "the join to park", func() bool { return g.parkedCount() == 1 })
	c.c.Close()
	eventually(t, "the connection to close", func() bool { return env.s.Stats().ConnsOpen == 0 })
	// The actor's late answer goes nowhere and blocks nothing.
	for _, r := range g.setPark(false) {
		g.reply(r, r.Req.Req.(*kmsg.JoinGroupRequest).ResponseKind())
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dropped != 0 {
		t.Errorf("%d replies found their channel full", g.dropped)
	}
}

// TestParkedJoinAndShutdown: a graceful shutdown does not wait out parked
// joins: they are answered NOT_COORDINATOR, sending the members to find
// the group's next coordinator, while replies that do not park finish.
func TestParkedJoinAndShutdown(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	g := env.fb.group("g")
	g.setPark(true)
	join := joinReq("g")
	corr := c.send(join)
	eventually(t, "the join to park", func() bool { return g.parkedCount() == 1 })

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- env.s.Shutdown(ctx)
	}()
	if jr := c.recv(join, corr).(*kmsg.JoinGroupResponse); jr.ErrorCode != kerr.NotCoordinator.Code || jr.Generation != -1 {
		t.Errorf("join: %+v", jr)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown waited for the parked join")
	}
}

// TestSilentGroupActor: an actor that does not answer a request that
// does not park is given up on after groupReplyWait, as a coordinator
// that is not available; in a multi-group request only its own entry
// says so.
func TestSilentGroupActor(t *testing.T) {
	defer func(d time.Duration) { groupReplyWait = d }(groupReplyWait)
	groupReplyWait = 100 * time.Millisecond

	env := newTestEnv(t)
	c := env.dial()
	env.fb.group("silent").setPark(true)

	hb := c.roundTrip(heartbeatReq("silent")).(*kmsg.HeartbeatResponse)
	if hb.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Errorf("heartbeat: %+v", hb)
	}

	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version, req.Groups = 5, []string{"ok", "silent"}
	resp := c.roundTrip(req).(*kmsg.DescribeGroupsResponse)
	if resp.Groups[0].ErrorCode != 0 || resp.Groups[0].State != "Stable" ||
		resp.Groups[1].ErrorCode != kerr.CoordinatorNotAvailable.Code || resp.Groups[1].Group != "silent" {
		t.Errorf("describe: %+v", resp)
	}

	of := kmsg.NewPtrOffsetFetchRequest()
	of.Version, of.Group = 1, "silent"
	of.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}
	ofr := c.roundTrip(of).(*kmsg.OffsetFetchResponse)
	if len(ofr.Topics) != 1 || ofr.Topics[0].Partitions[0].ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Errorf("offset fetch v1: %+v", ofr)
	}
}

// TestGroupActorWrongAnswer: an actor answering with the wrong type is a
// bug, answered UNKNOWN_SERVER_ERROR rather than a panic or a malformed
// response.
func TestGroupActorWrongAnswer(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	g := env.fb.group("bad")
	for _, answer := range []any{"bogus", (*kmsg.HeartbeatResponse)(nil), nil, &kmsg.DescribeGroupsResponseGroup{}} {
		g.setAnswer(func(group.Request) any { return answer })
		hb := c.roundTrip(heartbeatReq("bad")).(*kmsg.HeartbeatResponse)
		if hb.ErrorCode != kerr.UnknownServerError.Code {
			t.Errorf("heartbeat answered with %T: %+v", answer, hb)
		}
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 8
		req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "bad"}}
		if resp := c.roundTrip(req).(*kmsg.OffsetFetchResponse); resp.Groups[0].ErrorCode != kerr.UnknownServerError.Code {
			t.Errorf("offset fetch answered with %T: %+v", answer, resp)
		}
	}
	// A wrong tag is ignored, and the group's entry times out.
	defer func(d time.Duration) { groupReplyWait = d }(groupReplyWait)
	groupReplyWait = 100 * time.Millisecond
	g.setAnswer(nil)
	g.setPark(true)
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Version, req.Groups = 2, []string{"bad"}
	corr := c.send(req)
	eventually(t, "the delete to park", func() bool { return g.parkedCount() == 1 })
	for _, r := range g.setPark(false) {
		r.Req.Tag = 5
		g.reply(r, &kmsg.DeleteGroupsResponseGroup{})
	}
	if resp := c.recv(req, corr).(*kmsg.DeleteGroupsResponse); resp.Groups[0].ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Errorf("delete with a wrong tag: %+v", resp)
	}
}
