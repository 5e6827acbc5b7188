package sim

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/internal/mutation"
	"github.com/troupe-io/troupe/sim/check"
	"github.com/troupe-io/troupe/sim/sched"
	"github.com/troupe-io/troupe/sim/simdisk"
	"github.com/troupe-io/troupe/sim/simnet"
)

// Result is what a run found.
type Result struct {
	Seed       uint64
	Faults     []string
	Mutation   mutation.Kind
	Steps      uint64
	SimTime    sched.Time
	TraceHash  string
	Violations []check.Violation
	// FaultSummary counts the faults injected, by kind.
	FaultSummary string
	// CheckSummary is the checkers' one line per invariant.
	CheckSummary string
	// Workload counts.
	Acked, Consumed, Commits int
	// Err is an internal failure that ended the run (not a checker
	// violation): a bug in the simulator or an invariant the code asserts.
	Err error
}

// Failed reports whether the run found anything wrong.
func (r *Result) Failed() bool { return r.Err != nil || len(r.Violations) > 0 }

// topicName is the workload's topic.
const topicName = "events"

// Run simulates one seed. Runs in one process take turns.
func Run(cfg Config) *Result {
	return deterministicRaft(func() *Result { return run(cfg) })
}

func run(cfg Config) *Result {
	cfg = cfg.withDefaults()
	prev := mutation.Set(cfg.Mutation)
	defer mutation.Set(prev)

	w := newWorld(cfg)
	defer w.close()
	res := &Result{Seed: cfg.Seed, Faults: cfg.Faults, Mutation: cfg.Mutation}
	w.runPhases()
	res.Steps, res.SimTime, res.TraceHash = w.s.Steps(), w.s.Now(), w.s.TraceHash()
	res.Violations = append(w.check.Violations(), w.extra...)
	res.CheckSummary = w.check.Summary()
	res.FaultSummary = w.faults.summary()
	res.Err = w.fatalErr
	for _, c := range w.producers {
		res.Acked += c.stats.acked
	}
	for _, c := range w.consumers {
		res.Consumed += c.stats.records
		res.Commits += c.stats.commits
	}
	return res
}

func newWorld(cfg Config) *World {
	s := sched.New(cfg.Seed)
	if cfg.Trace != nil {
		s.SetTraceOutput(cfg.Trace)
	}
	netCfg := simnet.Config{MinDelay: 100 * sched.Microsecond, MaxDelay: 2 * sched.Millisecond}
	if cfg.has(FaultNetwork) {
		netCfg.DropRate, netCfg.DuplicateRate, netCfg.ReorderRate, netCfg.LongTailRate = 0.02, 0.01, 0.05, 0.005
		netCfg.LongTailDelay = 500 * sched.Millisecond
	}
	w := &World{cfg: cfg, s: s, net: simnet.New(s, netCfg), check: check.New(),
		logger: slog.New(slog.DiscardHandler), clusterID: fmt.Sprintf("sim-%d", cfg.Seed)}
	w.net.SetFaulty(false)
	for i := range cfg.Nodes {
		id := int32(i + 1)
		w.voters = append(w.voters, id)
		w.nodes = append(w.nodes, &node{w: w, id: id,
			disk: simdisk.New(simdisk.Config{Seed: cfg.Seed*1000 + uint64(id), Tracked: simdisk.Outside("/data/raft", "/data/logs/__index")})})
	}
	w.faults = newFaultPlan(w)
	return w
}

// close stops every goroutine the run started.
func (w *World) close() {
	for _, n := range w.nodes {
		n.kill(false)
	}
	w.s.Close()
}

// step runs one event and what follows every event. It reports false
// when the run must end.
func (w *World) step() bool {
	if !w.s.Step() {
		return false
	}
	w.poll()
	w.faults.strike()
	if w.fatalErr != nil {
		return false
	}
	if w.cfg.StopAtViolation && w.violations() > 0 {
		return false
	}
	return true
}

// runUntil runs events until time end or until done holds.
func (w *World) runUntil(end sched.Time, done func() bool) bool {
	for w.s.Now() < end {
		if done != nil && done() {
			return true
		}
		if !w.step() {
			return false
		}
	}
	return done != nil && done()
}

func (w *World) runPhases() {
	s := w.s
	for _, n := range w.nodes {
		if err := n.start(); err != nil {
			w.fatalErr = err
			return
		}
	}
	// Bootstrap, without faults: a controller, every broker in, the
	// workload's topic created through CreateTopics.
	admin := w.newClient("admin")
	created := false
	var create func()
	create = func() {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Version = 5
		req.TimeoutMillis = 5000
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = topicName, w.cfg.Partitions, int16(min(3, w.cfg.Nodes))
		req.Topics = append(req.Topics, t)
		admin.request(admin.anyNode(), req, func(resp kmsg.Response, _ responder, err error) {
			if err == nil {
				r := resp.(*kmsg.CreateTopicsResponse)
				if len(r.Topics) == 1 && (r.Topics[0].ErrorCode == 0 || r.Topics[0].ErrorCode == 36) {
					created = true
					return
				}
			}
			s.After(500*sched.Millisecond, create)
		})
	}
	s.After(sched.Second, create)
	if !w.runUntil(30*sched.Second, func() bool { return created && w.allLeadersKnown() }) {
		if w.fatalErr == nil {
			w.report("liveness", "the cluster did not form and create the topic within 30s")
		}
		return
	}
	s.Tracef("bootstrapped")

	// Safety: the workload under faults.
	for range w.cfg.Producers {
		pr := w.newProducer(topicName, w.cfg.Partitions)
		w.producers = append(w.producers, pr)
		s.After(0, pr.tick)
	}
	for range w.cfg.Consumers {
		cs := w.newConsumer("sim-group", topicName)
		w.consumers = append(w.consumers, cs)
		s.After(0, cs.tick)
	}
	w.startAdmin(admin)
	w.net.SetFaulty(true)
	w.faults.start()
	safetyEnd, safetyFrom := s.Now()+w.cfg.SafetyTime, s.Steps()
	for s.Now() < safetyEnd {
		if w.cfg.MaxSteps > 0 && s.Steps()-safetyFrom >= w.cfg.MaxSteps {
			break
		}
		if !w.step() {
			return
		}
	}

	// Liveness: heal everything; all pending work must finish.
	s.Tracef("liveness")
	w.faults.heal()
	for _, pr := range w.producers {
		pr.stopped = true
	}
	w.adminStopped = true
	livenessEnd := s.Now() + w.cfg.LivenessTime
	if !w.runUntil(livenessEnd, w.converged) {
		if w.fatalErr == nil && (!w.cfg.StopAtViolation || w.violations() == 0) {
			w.report("liveness", "not converged after healing: "+w.notConverged())
		}
		return
	}
	s.Tracef("converged")
	w.finalCheck()
}

// allLeadersKnown reports whether every node's image shows a leader for
// every partition of the workload's topic and the node has caught up.
func (w *World) allLeadersKnown() bool {
	for _, n := range w.nodes {
		p := n.proc
		if p == nil || !p.caughtUp {
			return false
		}
		t := p.ctrl.Image().Topic(topicName)
		if t == nil {
			return false
		}
		for _, mp := range t.Partitions {
			if mp.Leader < 0 {
				return false
			}
		}
	}
	return true
}

// converged reports whether the healed cluster finished: no producer has
// a batch in flight, every replica of every partition is in the ISR with
// the leader's log, and the consumers have read everything.
func (w *World) converged() bool { return w.notConverged() == "" }

// notConverged says what is still pending ("" when nothing is).
func (w *World) notConverged() string {
	for _, pr := range w.producers {
		if pr.busy() {
			return pr.c.name + " has batches in flight"
		}
	}
	for _, n := range w.nodes {
		if n.proc == nil || !n.proc.caughtUp {
			return fmt.Sprintf("node %d is not up", n.id)
		}
	}
	img := w.nodes[0].proc.ctrl.Image()
	for _, name := range []string{topicName, offsetsTopic} {
		t := img.Topic(name)
		if t == nil {
			continue
		}
		for _, mp := range t.Partitions {
			if mp.Leader < 0 || len(mp.ISR) != len(mp.Replicas) {
				return fmt.Sprintf("%s-%d ISR %v of %v", name, mp.Index, mp.ISR, mp.Replicas)
			}
			var hw int64 = -1
			for _, id := range mp.Replicas {
				n := w.node(id)
				r := n.proc.replicas[partlogID(name, mp.Index)]
				if r == nil || r.closed {
					return fmt.Sprintf("%s-%d has no replica on node %d", name, mp.Index, id)
				}
				st := r.cell.Status()
				if st.LogEnd != st.HighWatermark || (hw >= 0 && st.HighWatermark != hw) {
					return fmt.Sprintf("%s-%d replicas disagree (node %d hw %d end %d)", name, mp.Index, id, st.HighWatermark, st.LogEnd)
				}
				hw = st.HighWatermark
			}
			if name == topicName && len(w.consumers) > 0 && !w.consumedTo(mp.Index, hw) {
				return fmt.Sprintf("%s-%d not consumed to %d", name, mp.Index, hw)
			}
		}
	}
	return ""
}

// consumedTo reports whether some consumer owns part and has read it to
// hw.
func (w *World) consumedTo(part int32, hw int64) bool {
	for _, cs := range w.consumers {
		if op := cs.owned[part]; op != nil && op.position >= hw {
			return true
		}
	}
	return false
}

// finalCheck hands the checkers every replica's final committed log.
func (w *World) finalCheck() {
	img := w.nodes[0].proc.ctrl.Image()
	t := img.Topic(topicName)
	view := check.FinalView{Partitions: map[check.TP]check.FinalPartition{}}
	for _, mp := range t.Partitions {
		tp := check.TP{Topic: topicName, Partition: mp.Index}
		fp := check.FinalPartition{Replicas: map[int32][]check.Record{}, ISR: slices.Clone(mp.ISR)}
		for _, id := range mp.Replicas {
			r := w.node(id).proc.replicas[partlogID(topicName, mp.Index)]
			recs, start := r.finalLog()
			fp.Replicas[id] = recs
			fp.LogStart = max(fp.LogStart, start)
		}
		view.Partitions[tp] = fp
	}
	w.check.Final(view)
}

// finalLog reads the replica's whole log below its high watermark.
func (r *replica) finalLog() ([]check.Record, int64) {
	st := r.cell.Status()
	var out []check.Record
	_, _ = r.readRange(st.LogStart, st.HighWatermark, func(off int64, value string) {
		out = append(out, check.Record{Offset: off, Value: value})
	})
	return out, st.LogStart
}

// Summary is the run's report as `troupe sim` prints it.
func (r *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d  faults %s  mutation %s\n", r.Seed, strings.Join(r.Faults, ","), r.Mutation)
	fmt.Fprintf(&b, "simulated %v in %d steps; acked %d records, consumed %d, %d commits\n", r.SimTime, r.Steps, r.Acked, r.Consumed, r.Commits)
	fmt.Fprintf(&b, "faults: %s\n", r.FaultSummary)
	b.WriteString(r.CheckSummary)
	if !strings.HasSuffix(r.CheckSummary, "\n") {
		b.WriteByte('\n')
	}
	if r.Err != nil {
		fmt.Fprintf(&b, "internal failure: %v\n", r.Err)
	}
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "VIOLATION %s: %s\n", v.Check, v.Detail)
	}
	fmt.Fprintf(&b, "trace hash %s\n", r.TraceHash)
	return b.String()
}

// FindViolation runs seeds 1..maxSeeds with mutation k on and returns the
// first seed whose run fails a checker, with its result (0, nil if none
// does).
func FindViolation(k mutation.Kind, maxSeeds int) (uint64, *Result) {
	for seed := uint64(1); seed <= uint64(maxSeeds); seed++ {
		cfg := DefaultConfig()
		cfg.Seed = seed
		cfg.Mutation = k
		cfg.StopAtViolation = true
		if res := Run(cfg); res.Failed() {
			return seed, res
		}
	}
	return 0, nil
}
