package actors

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/actors/group"
)

// groupActor is the daemon's host of one group's groupCell: it stamps
// requests with the clock and a fresh member id, steps the cell, and
// writes the core's records to the group's offsets partition (acks=-1),
// feeding the outcome back as group.Appended through its mailbox.
type groupActor struct {
	groups *Groups
	shard  *groupShard
	cell   *groupCell
	clock  func() time.Time
	logger *slog.Logger
	root   *actor.RootContext
	self   *actor.PID

	// summary is what ListGroups shows, published after every step.
	summary atomic.Pointer[group.Summary]
	// retiring is set once the actor asked to be retired, so that it asks
	// once per time it goes dead.
	retiring bool

	timer   *time.Timer
	timerAt int64
}

// groupAppended is the offsets partition's answer to an Append.
type groupAppended struct{ errorCode int16 }

// retireGroup asks the actor whether it may stop (answered true when the
// core is dead).
type retireGroup struct{}

func (a *groupActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *GroupRequest:
		a.cell.request(m, a.clock().UnixMilli(), a.groups.newMemberID(m.Req.ClientID), a.groups.cfg.Topics())
	case groupAppended:
		a.cell.appended(a.clock().UnixMilli(), m.errorCode)
	case tick:
		a.timerAt = -1
		a.cell.tick(a.clock().UnixMilli())
	case retireGroup:
		dead := a.cell.retirable()
		ctx.Respond(dead)
		if !dead {
			a.retiring = false
		}
		return
	case *actor.Started:
		a.self = ctx.Self()
	case *actor.Stopping:
		a.stop()
		return
	default:
		return
	}
	if ap := a.cell.settle(); ap != nil {
		a.append(ap)
	}
	core := a.cell.core
	sum := core.Summary()
	a.summary.Store(&sum)
	a.armTimer()
	if a.cell.retirable() && !a.retiring {
		a.retiring = true
		go a.groups.retire(a.shard, core.ID())
	}
}

// append writes the core's records to the group's offsets partition and
// reports the outcome back to the actor.
func (a *groupActor) append(ap *group.Append) {
	part := a.groups.cfg.OffsetsPartition(a.shard.partition)
	if part == nil {
		a.logger.Warn("cannot persist group records", "err", errAppendNoPartition)
		a.selfSend(groupAppended{errorCode: kerr.NotLeaderForPartition.Code})
		return
	}
	req, code := groupAppendRequest(ap, part.BatchOptions(), a.clock().UnixMilli(), a.logger)
	if code != 0 {
		a.selfSend(groupAppended{errorCode: code})
		return
	}
	reply := make(chan ProduceResult, 1)
	req.Reply = reply
	part.Produce(req)
	self, root := a.self, a.root
	go func() {
		r := <-reply
		root.Send(self, groupAppended{errorCode: r.ErrorCode})
	}()
}

// selfSend delivers msg to this actor from another goroutine: sending to
// its own bounded mailbox from Receive would wait forever if it is full.
func (a *groupActor) selfSend(msg any) {
	self, root := a.self, a.root
	go root.Send(self, msg)
}

// armTimer keeps one timer set for the core's next deadline (as the
// partition cell does).
func (a *groupActor) armTimer() {
	next := a.cell.core.NextTickMs()
	if next < 0 || next == a.timerAt {
		return
	}
	if a.timerAt >= 0 && a.timerAt <= next {
		return
	}
	a.timerAt = next
	d := max(time.Duration(next-a.clock().UnixMilli())*time.Millisecond, 0)
	if a.timer == nil {
		self, root := a.self, a.root
		a.timer = time.AfterFunc(d, func() { root.Send(self, tick{}) })
		return
	}
	a.timer.Reset(d)
}

// stop answers every caller still waiting with NOT_COORDINATOR.
func (a *groupActor) stop() {
	if a.timer != nil {
		a.timer.Stop()
	}
	a.cell.stop()
}
