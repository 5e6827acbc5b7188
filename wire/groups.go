package wire

import (
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors"
	"github.com/troupe-io/troupe/actors/group"
)

// Helpers shared by the group coordinator handlers (OffsetCommit,
// OffsetFetch, JoinGroup, …). A group request goes to the actor that
// coordinates its group on this node (Backend.Group); the actor builds the
// response for the request's version, and the handler only routes it:
// it answers itself when the group is not coordinated here, and folds the
// per-group answers of multi-group requests into one response.
//
// Byte fields of a request (JoinGroup protocol metadata, SyncGroup
// assignments) alias its frame, and the actor may keep them for as long
// as the group lives: that is safe only because frames of requests other
// than Produce are never recycled (see conn.go, framepool.go).

// groupReplyWait bounds the wait for a group actor's answer to a request
// that does not park. An actor answers such requests as soon as its
// offsets-topic append (if any) completes; one that has not answered in
// this long is stuck or gone, which clients handle as a coordinator that
// is not available: they look the coordinator up again and retry. Kafka
// likewise turns its coordinator's write timeouts into
// COORDINATOR_NOT_AVAILABLE. A variable only so that tests can shorten
// it.
var groupReplyWait = 60 * time.Second

// groupWait says how an await for a group actor's answer ends when the
// answer is late.
type groupWait int

const (
	// waitBounded gives up after groupReplyWait.
	waitBounded groupWait = iota
	// waitParked has no deadline: JoinGroup and SyncGroup legitimately
	// park until the rebalance completes, which the members' rebalance
	// timeouts bound (minutes). It still ends when the connection does,
	// and when the server shuts down, so that a parked member does not
	// hold the shutdown up.
	waitParked
)

// groupRequest is the actor message for one group's share of req.
func groupRequest(req *request, tag int64, payload any, reply chan<- group.Reply) actors.GroupRequest {
	return actors.GroupRequest{
		Req: group.Request{
			Tag:        tag,
			NowMs:      req.nowMs,
			ClientID:   req.clientID,
			ClientHost: clientHost(req.remote),
			Req:        payload,
		},
		Reply: reply,
	}
}

// clientHost is the client address as Kafka shows it in DescribeGroups:
// the host alone, after a slash ("/127.0.0.1").
func clientHost(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	return "/" + host
}

// awaitGroup waits for one answer on ch. The code is 0 with an answer,
// else what to answer instead: COORDINATOR_NOT_AVAILABLE when the actor
// did not answer in time or the connection is gone (nobody reads that
// reply), NOT_COORDINATOR when the server shuts down under a parked
// request — as Kafka answers the members parked in a coordinator it
// unloads. An answer already there wins over all of these, so that it is
// used whatever the clock or the connection's state (the simulator relies
// on it, see inproc.go).
func (s *Server) awaitGroup(req *request, ch <-chan group.Reply, wait groupWait) (group.Reply, int16) {
	select {
	case r := <-ch:
		return r, 0
	default:
	}
	var (
		timeout <-chan time.Time
		stop    <-chan struct{}
	)
	if wait == waitParked {
		stop = s.stopCh
	} else {
		t := time.NewTimer(groupReplyWait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case r := <-ch:
		return r, 0
	case <-ctxDone(req.ctx):
		return group.Reply{}, kerr.CoordinatorNotAvailable.Code
	case <-stop:
		return group.Reply{}, kerr.NotCoordinator.Code
	case <-timeout:
		s.log.Warn("group coordinator did not answer in time", "api", kmsg.NameForKey(req.key),
			"client_id", req.clientID, "wait", groupReplyWait)
		return group.Reply{}, kerr.CoordinatorNotAvailable.Code
	}
}

// singleGroup sends a request addressed to one group (payload is the kmsg
// request itself) to the group's coordinator actor and answers with the
// actor's response. fail builds the response to answer with an error
// code instead, and an error message where the API has one: when the
// group is not coordinated here (Backend.Group's error, without touching
// any actor), when the actor does not answer (see awaitGroup), and when
// it answers something other than an R (a bug, logged).
func singleGroup[T any, R interface {
	*T
	kmsg.Response
}](s *Server, req *request, groupID string, payload any, wait groupWait, fail func(code int16, msg *string) R) reply {
	g, err := s.b.Group(groupID)
	if err != nil {
		return respond(fail(errCode(err), errMessage(err)))
	}
	ch := make(chan group.Reply, 1) // the actor never blocks on a reply
	g.Send(groupRequest(req, 0, payload, ch))
	return reply{await: func() reply {
		r, code := s.awaitGroup(req, ch, wait)
		if code != 0 {
			return respond(fail(code, nil))
		}
		resp, ok := r.Resp.(R)
		if !ok || resp == nil {
			s.log.Error("group coordinator answered with the wrong type", "api", kmsg.NameForKey(req.key), "got", typeName(r.Resp))
			return respond(fail(kerr.UnknownServerError.Code, nil))
		}
		zeroThrottle(resp)
		return respond(resp)
	}}
}

// zeroThrottle clears a response's throttle time: Troupe does not
// throttle, whatever an actor put there.
func zeroThrottle(resp kmsg.Response) {
	if t, ok := resp.(kmsg.SetThrottleResponse); ok {
		t.SetThrottle(0)
	}
}

// typeName names v's dynamic type for logs.
func typeName(v any) string { return fmt.Sprintf("%T", v) }

// groupFanOut is a multi-group request in flight: one actor request per
// group coordinated here, each tagged with the group's index in the
// request, all answering on ch (sized for every group, so that no actor
// blocks on its reply).
type groupFanOut struct {
	ch chan group.Reply
	// waiting[i] is set while group i's actor has not answered; groups
	// not sent to an actor are never waiting.
	waiting []bool
	sent    int
}

// fanOutGroups sends payload(i) for each ids[i] whose group is
// coordinated here; for the others it calls failed(i, err) with
// Backend.Group's error. A nil payload means group i is already answered
// (an invalid id, say) and goes nowhere.
func (s *Server) fanOutGroups(req *request, ids []string, payload func(i int) any, failed func(i int, err error)) groupFanOut {
	f := groupFanOut{waiting: make([]bool, len(ids))}
	for i, id := range ids {
		p := payload(i)
		if p == nil {
			continue
		}
		g, err := s.b.Group(id)
		if err != nil {
			failed(i, err)
			continue
		}
		if f.ch == nil {
			f.ch = make(chan group.Reply, len(ids)-i)
		}
		f.waiting[i] = true
		f.sent++
		g.Send(groupRequest(req, int64(i), p, f.ch))
	}
	return f
}

// collect gathers the fan-out's answers, calling answer(i, resp) for
// each; then, if some actors did not answer in time or the connection
// went away first, missing(i, code) for each group still waiting.
// Answers already there are taken before the timer or the connection's
// end is looked at (see awaitGroup).
func (f groupFanOut) collect(s *Server, req *request, answer func(i int, resp any), missing func(i int, code int16)) {
	if f.sent == 0 {
		return
	}
	timer := time.NewTimer(groupReplyWait)
	defer timer.Stop()
	var code int16
	take := func(r group.Reply) bool {
		if r.Tag < 0 || r.Tag >= int64(len(f.waiting)) || !f.waiting[r.Tag] {
			return false // not a tag we sent, or a second answer: an actor bug
		}
		f.waiting[r.Tag] = false
		answer(int(r.Tag), r.Resp)
		return true
	}
	for left := f.sent; left > 0 && code == 0; {
		select {
		case r := <-f.ch:
			if take(r) {
				left--
			}
			continue
		default:
		}
		select {
		case r := <-f.ch:
			if take(r) {
				left--
			}
		case <-ctxDone(req.ctx):
			code = kerr.CoordinatorNotAvailable.Code
		case <-timer.C:
			s.log.Warn("group coordinators did not answer in time", "api", kmsg.NameForKey(req.key),
				"client_id", req.clientID, "unanswered", left, "wait", groupReplyWait)
			code = kerr.CoordinatorNotAvailable.Code
		}
	}
	if code == 0 {
		return
	}
	for i, w := range f.waiting {
		if w {
			missing(i, code)
		}
	}
}
