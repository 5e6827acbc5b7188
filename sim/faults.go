package sim

import (
	"fmt"
	"slices"
	"strings"

	"github.com/troupe-io/troupe/partlog"
	"github.com/troupe-io/troupe/sim/sched"
	"github.com/troupe-io/troupe/sim/simdisk"
)

// faultPlan injects the configured fault kinds during the safety phase,
// drawing what, where and when from the run's seed, and heals them all
// for the liveness phase.
type faultPlan struct {
	w      *World
	counts map[string]int
	active bool
	// diskTouched: nodes whose disk had faults injected; they restart for
	// the liveness phase (a partition whose fsync failed stays offline
	// until its process restarts, as in Kafka).
	diskTouched map[int32]bool
	// armed, while in the future, is a power loss waiting for its moment
	// (checked after every event by strike).
	armed sched.Time
}

// strike cuts the power once a power loss is armed and some disk has
// writes in flight, or when the arming runs out.
func (f *faultPlan) strike() {
	w := f.w
	if f.armed == 0 {
		return
	}
	pending := false
	for _, n := range w.nodes {
		if n.proc != nil && n.disk.PendingWrites() > 0 {
			pending = true
			break
		}
	}
	if !pending && w.s.Now() < f.armed {
		return
	}
	f.armed = 0
	f.count("power-loss")
	w.s.Tracef("fault power loss")
	for _, n := range w.nodes {
		n.kill(true)
	}
	f.later(500*sched.Millisecond+w.s.Jitter(sched.Second), f.restartAll)
}

func newFaultPlan(w *World) *faultPlan {
	return &faultPlan{w: w, counts: map[string]int{}, diskTouched: map[int32]bool{}}
}

func (f *faultPlan) count(what string) { f.counts[what]++ }

// summary lists the faults injected, by kind.
func (f *faultPlan) summary() string {
	if len(f.counts) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(f.counts))
	for k := range f.counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, f.counts[k])
	}
	return strings.Join(parts, " ")
}

// kinds are the scheduled fault kinds (network noise is always on while
// faulty, see newWorld).
func (f *faultPlan) kinds() []string {
	var ks []string
	for _, k := range []string{FaultPartition, FaultCrash, FaultPause, FaultDisk, FaultClock} {
		if f.w.cfg.has(k) {
			ks = append(ks, k)
		}
	}
	return ks
}

func (f *faultPlan) start() {
	f.active = true
	f.next()
}

// next schedules the next fault.
func (f *faultPlan) next() {
	w := f.w
	ks := f.kinds()
	if len(ks) == 0 {
		return
	}
	w.s.After(sched.Second+w.s.Jitter(2500*sched.Millisecond), func() {
		if !f.active {
			return
		}
		f.inject(ks[w.s.Rand().IntN(len(ks))])
		f.next()
	})
}

func (f *faultPlan) randomNode() *node { return f.w.nodes[f.w.s.Rand().IntN(len(f.w.nodes))] }

// later runs fn after d unless the faults were healed meanwhile.
func (f *faultPlan) later(d sched.Time, fn func()) {
	f.w.s.After(d, func() {
		if f.active {
			fn()
		}
	})
}

func (f *faultPlan) inject(kind string) {
	w := f.w
	rng := w.s.Rand()
	switch kind {
	case FaultCrash:
		if rng.IntN(4) == 0 {
			// Power loss everywhere: every node loses what it had not
			// synced, at once. It strikes at the worst moment within the
			// next second: the first instant some disk holds writes not
			// yet synced (see armed).
			f.armed = w.s.Now() + sched.Second
			return
		}
		n := f.randomNode()
		if n.proc == nil {
			f.restart(n)
			return
		}
		crash := rng.IntN(2) == 0
		if crash {
			f.count("crash")
		} else {
			f.count("kill")
		}
		w.s.Tracef("fault kill node %d crash=%v", n.id, crash)
		n.kill(crash)
		f.later(200*sched.Millisecond+w.s.Jitter(3*sched.Second), func() { f.restart(n) })
	case FaultPause:
		n := f.randomNode()
		if n.proc == nil {
			return
		}
		// Mostly short pauses; one in three outlasts the broker session
		// and the ISR lag bound, so the node is fenced and replaced
		// meanwhile and comes back acting on stale leadership.
		d := 100*sched.Millisecond + w.s.Jitter(2*sched.Second)
		if rng.IntN(3) == 0 {
			d = 7*sched.Second + w.s.Jitter(5*sched.Second)
		}
		f.count("pause")
		w.s.Tracef("fault pause node %d for %v", n.id, d)
		n.pause(w.s.Now() + d)
	case FaultPartition:
		n := f.randomNode()
		switch rng.IntN(3) {
		case 0:
			f.count("isolate")
			w.s.Tracef("fault isolate node %d", n.id)
			w.net.Isolate(n.id)
		case 1:
			other := f.randomNode()
			if other == n {
				return
			}
			f.count("one-way")
			w.s.Tracef("fault cut %d->%d", n.id, other.id)
			w.net.CutOneWay(n.id, other.id)
		default:
			var a, b []int32
			for _, m := range w.nodes {
				if rng.IntN(2) == 0 {
					a = append(a, m.id)
				} else {
					b = append(b, m.id)
				}
			}
			f.count("split")
			w.s.Tracef("fault split %v|%v", a, b)
			w.net.Partition(a, b)
		}
		f.later(500*sched.Millisecond+w.s.Jitter(4*sched.Second), func() {
			w.s.Tracef("fault heal network")
			w.net.Heal()
		})
	case FaultDisk:
		n := f.randomNode()
		f.diskTouched[n.id] = true
		if rng.IntN(3) == 0 {
			f.count("disk-full")
			w.s.Tracef("fault disk full node %d", n.id)
			n.disk.SetFull(true)
			f.later(200*sched.Millisecond+w.s.Jitter(2*sched.Second), func() { n.disk.SetFull(false) })
			return
		}
		f.count("disk-errors")
		w.s.Tracef("fault disk errors node %d", n.id)
		n.disk.SetFaults(simdisk.Faults{WriteErrorRate: 0.05, SyncErrorRate: 0.05, DiskFullRate: 0.02})
		f.later(200*sched.Millisecond+w.s.Jitter(2*sched.Second), func() { n.disk.SetFaults(simdisk.Faults{}) })
	case FaultClock:
		n := f.randomNode()
		jump := rng.Int64N(10_000) - 2_000 // mostly forward, sometimes back
		f.count("clock-jump")
		w.s.Tracef("fault clock node %d %+dms", n.id, jump)
		n.clockOffsetMs += jump
	}
}

func (f *faultPlan) restart(n *node) {
	if n.proc != nil {
		return
	}
	f.w.s.Tracef("restart node %d", n.id)
	if err := n.start(); err != nil {
		// A disk that cannot be opened (a fault struck recovery): try
		// again later.
		f.w.s.Tracef("restart node %d failed: %v", n.id, err)
		f.w.s.After(500*sched.Millisecond, func() { f.restart(n) })
	}
}

func (f *faultPlan) restartAll() {
	for _, n := range f.w.nodes {
		f.restart(n)
	}
}

// heal ends every fault for the liveness phase: the network heals and
// calms down, disks work, pauses end, and every node runs, restarted if
// its disk had faults.
func (f *faultPlan) heal() {
	w := f.w
	f.active = false
	f.armed = 0
	w.net.Heal()
	w.net.SetFaulty(false)
	for _, n := range w.nodes {
		n.disk.SetFaults(simdisk.Faults{})
		n.disk.SetFull(false)
		n.unpause()
		if f.diskTouched[n.id] && n.proc != nil {
			n.kill(false)
		}
		if n.proc == nil {
			f.restart(n)
		}
	}
}

func partlogID(topic string, part int32) partlog.LogID {
	return partlog.LogID{Topic: topic, Partition: part}
}
