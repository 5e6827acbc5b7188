package sim

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/metadata"
	"github.com/troupe-io/troupe/sim/sched"
)

// ctrlOp is one controller command, run on the active controller's
// process inside its controller task.
type ctrlOp func(c *metadata.Controller, nowMs int64) (any, error)

// controllerTarget is where this process sends controller commands: the
// controller the image names, else the raft leader it knows of, else
// some voter.
func (p *process) controllerTarget(attempt int) int32 {
	w := p.n.w
	if attempt%2 == 0 {
		if id := p.ctrl.Image().ControllerID; id >= 1 {
			return id
		}
		if l := p.raft.Leader(); l >= 1 {
			return l
		}
	}
	return w.voters[w.s.Rand().IntN(len(w.voters))]
}

// callController runs op on the active controller and calls done once
// with its outcome (REQUEST_TIMED_OUT if no answer came in time).
func (p *process) callController(op ctrlOp, done func(any, error)) {
	p.callControllerAt(p.controllerTarget(0), op, done)
}

func (p *process) callControllerAt(target int32, op ctrlOp, done func(any, error)) {
	w := p.n.w
	finished := false
	finish := func(res any, err error) {
		if !finished && !p.dead {
			finished = true
			done(res, err)
		}
	}
	p.after(w.cfg.RequestTimeout, func() { finish(nil, fmt.Errorf("controller call: %w", kerr.RequestTimedOut)) })
	self := p.n.id
	w.send(self, target, classStream, func(q *process) {
		q.controllerCommand(func(*sched.Task) {
			var res any
			err := fmt.Errorf("node %d is not the active controller: %w", q.n.id, kerr.NotController)
			if q.ctrl.Active() {
				res, err = op(q.ctrl, q.n.nowMs())
			}
			w.send(q.n.id, self, classStream, func(p2 *process) {
				if p2 == p {
					finish(res, err)
				}
			})
		})
	})
}

// callControllerTask runs op on the active controller from task t,
// retrying on NOT_CONTROLLER and lost calls for a while, as the daemon's
// callController does.
func (p *process) callControllerTask(t *sched.Task, op ctrlOp) (any, error) {
	w := p.n.w
	deadline := w.s.Now() + 3*w.cfg.RequestTimeout
	for attempt := 0; ; attempt++ {
		var (
			res  any
			err  error
			done bool
		)
		if aerr := t.Await(func(wake func()) {
			p.callControllerAt(p.controllerTarget(attempt), op, func(r any, e error) { res, err, done = r, e, true; wake() })
		}); aerr != nil {
			return nil, fmt.Errorf("process stopped: %w", kerr.RequestTimedOut)
		}
		if !done {
			err = kerr.RequestTimedOut
		}
		retry := errors.Is(err, kerr.NotController) || errors.Is(err, kerr.RequestTimedOut)
		if !retry || w.s.Now() >= deadline {
			return res, err
		}
		if t.Sleep(w.cfg.RetryBackoff) != nil {
			return nil, fmt.Errorf("process stopped: %w", kerr.RequestTimedOut)
		}
	}
}

// kafkaCode is the Kafka error code err wraps.
func kafkaCode(err error) int16 {
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return ke.Code
	case errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	}
	return kerr.UnknownServerError.Code
}

// brokerBeat registers the process with the active controller, then
// heartbeats (KRaft's BrokerRegistration and BrokerHeartbeat).
func (p *process) brokerBeat() {
	w := p.n.w
	next := w.cfg.HeartbeatInterval
	if !p.registered || p.fenced {
		next = 200 * sched.Millisecond
	}
	defer p.after(next, p.brokerBeat)
	self, inc := p.n.id, p.incarnation
	if !p.registered {
		reg := metadata.BrokerRegistration{ID: self, Incarnation: inc, ClusterID: w.clusterID,
			Host: fmt.Sprintf("node%d", self), Port: 9092, ControllerAddr: fmt.Sprintf("node%d:9093", self),
			Roles: metadata.RoleBroker | metadata.RoleController}
		p.callController(func(c *metadata.Controller, nowMs int64) (any, error) {
			return c.RegisterBrokerIncarnation(reg, nowMs)
		}, func(_ any, err error) {
			if err == nil && !p.registered {
				p.registered = true
				w.s.Tracef("node %d registered", self)
			}
		})
		return
	}
	applied := p.ctrl.Image().Offset
	p.callController(func(c *metadata.Controller, nowMs int64) (any, error) {
		return c.BrokerHeartbeat(self, inc, applied, false, nowMs)
	}, func(res any, err error) {
		switch {
		case errors.Is(err, kerr.StaleBrokerEpoch) || errors.Is(err, kerr.BrokerIDNotRegistered):
			p.registered = false
		case err == nil:
			if f := res.(bool); f != p.fenced {
				p.fenced = f
				w.s.Tracef("node %d fenced=%v", self, f)
			}
		}
	})
}
