package sim

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"

	"github.com/troupe-io/troupe/metadata"
	"github.com/troupe-io/troupe/sim/check"
	"github.com/troupe-io/troupe/sim/sched"
	"github.com/troupe-io/troupe/sim/simnet"
)

// Traffic classes on the simulated network.
const (
	// classRaft carries raft messages: raft tolerates loss, duplication
	// and reordering.
	classRaft = simnet.Datagram
	// classStream carries request/response traffic that runs over one
	// TCP connection in the daemon (Kafka requests, controller RPCs):
	// in order per link, never duplicated.
	classStream = simnet.Stream
)

// World is one simulated cluster and its clients.
type World struct {
	cfg    Config
	s      *sched.Scheduler
	net    *simnet.Network
	check  *check.Checker
	logger *slog.Logger

	clusterID string
	voters    []int32
	nodes     []*node

	// fatalErr is the first internal failure (a bug in the simulator or
	// an invariant the code itself asserts); it ends the run.
	fatalErr error

	// pollers are the conditions tasks wait on (see waitFor), checked
	// after every event.
	pollers []*poller

	clients      []*client
	producers    []*producer
	consumers    []*consumer
	adminStopped bool
	extraTopics  int
	faults       *faultPlan
	// extra are violations found by the simulator itself (liveness,
	// corrupt reads), beside the checkers'.
	extra []check.Violation
}

// report records a violation the simulator found itself.
func (w *World) report(name, detail string) {
	w.s.Tracef("violation %s: %s", name, detail)
	w.extra = append(w.extra, check.Violation{Check: name, Detail: detail})
}

// violations counts every violation so far.
func (w *World) violations() int { return len(w.check.Violations()) + len(w.extra) }

// node returns the node with id, or nil.
func (w *World) node(id int32) *node {
	if id < 1 || int(id) > len(w.nodes) {
		return nil
	}
	return w.nodes[id-1]
}

// send carries fn to node to's running process over the network; it is
// dropped if the node is down (or restarted: a new process never gets
// its predecessor's traffic) when it lands.
func (w *World) send(from, to int32, class simnet.Class, fn func(p *process)) {
	dst := w.node(to)
	if dst == nil {
		return
	}
	w.net.Send(from, to, class, func() {
		if p := dst.proc; p != nil {
			p.run(func() { fn(p) })
		}
	})
}

// tickJitter is the interval to a node's next raft tick: raft's election
// timeout is a whole number of ticks, and since the simulator makes
// raft's own random draw constant (see raftRandomness), the seeded
// jitter here is what breaks election ties.
func (w *World) tickJitter() sched.Time {
	base := w.cfg.TickInterval
	return base - base/4 + w.s.Jitter(base/2+1)
}

// fatal records an internal failure; the run stops at the next check.
func (w *World) fatal(p *process, err error) {
	if w.fatalErr == nil {
		w.fatalErr = fmt.Errorf("node %d: %w", p.n.id, err)
		w.s.Tracef("fatal %v", w.fatalErr)
	}
}

func (w *World) metadataDefaults() metadata.Defaults {
	return metadata.Defaults{
		NumPartitions:          1,
		ReplicationFactor:      int16(min(3, w.cfg.Nodes)),
		DeleteTopicEnable:      true,
		BrokerConfig:           map[string]string{"min.insync.replicas": strconv.Itoa(min(2, w.cfg.Nodes))},
		BrokerSessionTimeoutMs: w.cfg.SessionTimeout.Ms(),
	}
}

// idSource is a seeded stand-in for crypto/rand where the code takes
// one (topic ids).
func (w *World) idSource() io.Reader { return randReader{w.s} }

type randReader struct{ s *sched.Scheduler }

func (r randReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(r.s.Rand().UintN(256))
	}
	return len(b), nil
}

// raftRandomness serialises runs: each replaces crypto/rand.Reader for its
// duration (see deterministicRaft).
var raftRandomness sync.Mutex

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// deterministicRaft runs fn with etcd raft's election-timeout draw made
// constant, and returns what fn returns.
//
// raft v3.7.0 draws each follower's randomised election timeout from
// crypto/rand.Reader through a package-level source with no hook to seed
// it. For the length of a run the simulator replaces crypto/rand.Reader
// with a reader of zeros: every draw is then 0 and every timeout exactly
// ElectionTick ticks. The randomness elections need comes back, seeded,
// from each node's tick schedule (tickJitter). This drives elections from
// the simulator's seed without patching raft; the price is that nothing
// else in the process may use crypto/rand while a run is on (the runs
// take turns, and troupe sim and the sim tests do nothing else).
func deterministicRaft[T any](fn func() T) T {
	raftRandomness.Lock()
	defer raftRandomness.Unlock()
	prev := rand.Reader
	rand.Reader = zeroReader{}
	defer func() { rand.Reader = prev }()
	return fn()
}

// poller is a condition someone waits for: a task (waitFor) or a
// callback (whenReady).
type poller struct {
	cond func() bool
	wake func()
	done bool
	// owner, when set, drops the poller once its process died.
	owner *process
}

// whenReady calls fn (as an event) once cond holds, checked after every
// event, unless p dies first.
func (p *process) whenReady(cond func() bool, fn func()) {
	w := p.n.w
	if cond() {
		p.after(0, fn)
		return
	}
	w.pollers = append(w.pollers, &poller{cond: cond, owner: p, wake: func() { p.after(0, fn) }})
}

// waitFor parks t until cond holds (checked after every event) or
// timeout passes; it reports whether cond held.
func (w *World) waitFor(t *sched.Task, timeout sched.Time, cond func() bool) (bool, error) {
	if cond() {
		return true, nil
	}
	pl := &poller{cond: cond}
	err := t.Await(func(wake func()) {
		pl.wake = wake
		w.pollers = append(w.pollers, pl)
		w.s.After(timeout, wake)
	})
	pl.done = true
	if err != nil {
		return false, err
	}
	return cond(), nil
}

// poll wakes the tasks whose conditions now hold.
func (w *World) poll() {
	if len(w.pollers) == 0 {
		return
	}
	live := w.pollers[:0]
	for _, pl := range w.pollers {
		if pl.done || (pl.owner != nil && pl.owner.dead) {
			continue
		}
		if pl.cond() {
			pl.done = true
			pl.wake()
			continue
		}
		live = append(live, pl)
	}
	clear(w.pollers[len(live):])
	w.pollers = live
}
