package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-io/troupe/actors/partition"
)

// partitionActor is the daemon's host of a PartitionCell: protoactor runs
// one message at a time, which makes the cell the only code touching the
// log's write side (the owner goroutine in partlog's contract). It is the
// cell's CellEnv: the wall clock, a time.AfterFunc timer, a syncer
// goroutine for fsyncs while more work is queued, and its own mailbox for
// the controller's answers.
type partitionActor struct {
	cell  *PartitionCell
	clock func() time.Time
	self  *actor.PID
	root  *actor.RootContext
	// mailbox lets the actor see whether more work is queued behind the
	// message it is handling (see RequestSync).
	mailbox actor.Mailbox

	// The syncer goroutine owns fsync so the actor keeps appending while a
	// sync runs (group commit). syncReq has capacity 1: a request while
	// one is pending is merged.
	syncReq  chan struct{}
	syncStop chan struct{}
	syncDone chan struct{}

	// timer delivers the cell's Tick (see SetTimer).
	timer *time.Timer
	// timerSelf is the actor's PID as its own context reports it, taken
	// on the actor's goroutine before any timer exists.
	timerSelf *actor.PID
}

// Messages only this package sends to a partition actor.
type (
	// tick is the message a timer sends its actor.
	tick struct{}
	// synced is the syncer's fsync outcome.
	synced struct {
		end int64
		err error
	}
	// resign steps a leader down before the node stops (Host.Resign).
	resign struct{}
	// alterISRAnswer carries the controller's answer to an AlterISR.
	alterISRAnswer struct{ res partition.AlterISRResult }
)

func (a *partitionActor) syncLoop() {
	defer close(a.syncDone)
	for {
		select {
		case <-a.syncStop:
			return
		case <-a.syncReq:
			end, err := a.cell.log.Sync()
			a.root.Send(a.self, &synced{end: end, err: err})
		}
	}
}

func (a *partitionActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *synced:
		a.cell.synced(m.end, m.err)
	case tick:
		a.cell.Tick()
	case *alterISRAnswer:
		a.cell.AlterISRAnswer(m.res)
	case resign:
		a.cell.Resign()
	case *actor.Started:
		a.timerSelf = ctx.Self()
		a.cell.armTimer()
	case *actor.Stopping:
		a.stop()
	case actor.AutoReceiveMessage, actor.SystemMessage:
		// protoactor's own lifecycle (Stopped, Restarting, ...).
	default:
		a.cell.Handle(m)
	}
}

// NowMs implements CellEnv.
func (a *partitionActor) NowMs() int64 { return a.clock().UnixMilli() }

// SetTimer implements CellEnv: the timer fires by sending a tick to the
// actor's own mailbox.
func (a *partitionActor) SetTimer(atMs int64) {
	if atMs < 0 {
		if a.timer != nil {
			a.timer.Stop()
		}
		return
	}
	d := max(time.Duration(atMs-a.NowMs())*time.Millisecond, 0)
	if a.timer == nil {
		self, root := a.timerSelf, a.root
		a.timer = time.AfterFunc(d, func() { root.Send(self, tick{}) })
		return
	}
	a.timer.Reset(d)
}

// RequestSync implements CellEnv.
func (a *partitionActor) RequestSync() bool {
	if a.mailbox != nil && a.mailbox.UserMessageCount() == 0 {
		// Nothing is queued behind this message, so no group commit is
		// lost by syncing right here; doing it inline saves the two
		// goroutine hand-offs through the syncer, which is most of an
		// idle partition's produce latency besides the fsync.
		return true
	}
	// More work is queued: let the syncer fsync while this actor keeps
	// appending; the next fsync covers what arrives.
	select {
	case a.syncReq <- struct{}{}:
	default:
	}
	return false
}

// DeliverAlterISR implements CellEnv; it may run on any goroutine.
func (a *partitionActor) DeliverAlterISR(r partition.AlterISRResult) {
	a.root.Send(a.timerSelf, &alterISRAnswer{res: r})
}

// stop runs when the actor is stopping: no more messages will be handled.
// The syncer stops first, so that the cell's final fsync is the last.
func (a *partitionActor) stop() {
	if a.timer != nil {
		a.timer.Stop()
	}
	close(a.syncStop)
	<-a.syncDone
	_ = a.cell.Close() // logged by the cell
}
