package sim

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/troupe-io/troupe/metadata"
	"github.com/troupe-io/troupe/metadata/quorum"
	"github.com/troupe-io/troupe/partlog"
	"github.com/troupe-io/troupe/raftlog"
	"github.com/troupe-io/troupe/sim/sched"
	"github.com/troupe-io/troupe/sim/simdisk"
)

// node is one simulated machine: a disk that outlives its processes, a
// clock with its own offset, and at most one running process
// (a process, below) at a time.
type node struct {
	w    *World
	id   int32
	disk *simdisk.Disk
	// proc is the running process, nil while the node is down.
	proc *process
	// incarnations counts the processes started, for the checkers.
	incarnations int
	// pausedUntil: while now < pausedUntil the process runs nothing
	// (a stop-the-world pause); what arrives meanwhile waits in held, in
	// order, and runs when the pause ends.
	pausedUntil sched.Time
	held        []func()
	resume      *sched.Event
	// clockOffsetMs is how far this node's wall clock is off the
	// simulation's (skew and jumps).
	clockOffsetMs int64
}

// nowMs is the node's wall clock.
func (n *node) nowMs() int64 { return n.w.s.Now().Ms() + n.clockOffsetMs }

// process is one run of the broker-and-controller process on a node:
// everything it holds in memory dies with it.
type process struct {
	n      *node
	num    int // incarnation number
	dead   bool
	logger *slog.Logger

	store     *partlog.Store
	raftStore *raftlog.Storage
	raft      *quorum.Core
	ctrl      *metadata.Controller
	journal   *journal

	// Controller commands run one at a time, each in a task (they block
	// until their records commit).
	ctrlQueue []func(t *sched.Task)
	ctrlBusy  bool
	ctrlTask  *sched.Task
	waiters   map[quorum.ProposalID]func(quorum.Result)

	// Broker state.
	incarnation      metadata.IncarnationID
	registered       bool
	fenced           bool
	caughtUp         bool
	reconcilePending bool
	pidNext, pidEnd  int64

	replicas map[partlog.LogID]*replica
	groups   *groupsHost
	backend  *backend

	tasks []*sched.Task
}

// start boots a new process on n from what its disk holds.
func (n *node) start() error {
	w := n.w
	n.incarnations++
	p := &process{n: n, num: n.incarnations, logger: w.logger.With("node", n.id, "inc", n.incarnations),
		waiters: map[quorum.ProposalID]func(quorum.Result){}, replicas: map[partlog.LogID]*replica{}, fenced: true}
	// The incarnation id is drawn from the run's randomness.
	for i := range p.incarnation {
		p.incarnation[i] = byte(w.s.Rand().UintN(256))
	}
	p.incarnation[0] |= 1 // never all zero
	fs := n.disk.FS()
	if err := createDurably(fs, "/data"); err != nil {
		return fmt.Errorf("node %d: %w", n.id, err)
	}
	var err error
	if p.store, err = partlog.Open(partlog.Options{Dir: "/data/logs", FS: fs, Logger: p.logger}); err != nil {
		return fmt.Errorf("node %d: open partition logs: %w", n.id, err)
	}
	if p.raftStore, err = raftlog.Open(raftlog.Options{Dir: "/data/raft", FS: fs, Logger: p.logger}); err != nil {
		_ = p.store.Close()
		return fmt.Errorf("node %d: open raft log: %w", n.id, err)
	}
	p.journal = &journal{p: p}
	if p.ctrl, err = metadata.NewController(p.journal, n.id, w.clusterID, w.metadataDefaults(), w.idSource()); err != nil {
		p.closeStorage()
		return fmt.Errorf("node %d: controller: %w", n.id, err)
	}
	p.ctrl.Resign()
	p.ctrl.Watch(func(_, _ *metadata.Image) { p.reconcileSoon() })
	if p.raft, err = quorum.NewCore(quorum.CoreConfig{ID: n.id, Voters: w.voters, Storage: p.raftStore,
		ElectionTick: w.cfg.ElectionTicks, HeartbeatTick: 1}); err != nil {
		p.closeStorage()
		return fmt.Errorf("node %d: raft: %w", n.id, err)
	}
	p.groups = newGroupsHost(p)
	p.backend = newBackend(p)
	n.proc = p
	w.s.Tracef("node %d start inc=%d", n.id, p.num)
	p.flushRaft()
	p.after(w.tickJitter(), p.raftTick)
	p.after(w.s.Jitter(w.cfg.HeartbeatInterval), p.brokerBeat)
	p.after(w.s.Jitter(250*sched.Millisecond), p.controllerTick)
	return nil
}

// closeStorage closes the process's databases. After a crash their
// files fail every call, and Pebble may answer that with a panic through
// its Fatalf logger: that is the dead process's business, not the
// simulator's.
func (p *process) closeStorage() {
	defer func() { _ = recover() }()
	if p.raftStore != nil {
		_ = p.raftStore.Close()
	}
	if p.store != nil {
		_ = p.store.Close()
	}
}

// createDurably makes dir and syncs every directory up to the root, so
// that a crash keeps it.
func createDurably(fs vfs.FS, dir string) error {
	if _, err := fs.Stat(dir); err == nil {
		return nil
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	for d := dir; ; d = fs.PathDir(d) {
		parent := fs.PathDir(d)
		f, err := fs.OpenDir(parent)
		if err != nil {
			return fmt.Errorf("open %s: %w", parent, err)
		}
		err = f.Sync()
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", parent, err)
		}
		if parent == d || parent == "/" {
			return nil
		}
	}
}

// kill ends the process at once: nothing more runs, nothing is flushed.
// With crash, the disk also loses what was not synced.
func (n *node) kill(crash bool) {
	p := n.proc
	if p == nil {
		return
	}
	p.dead = true
	n.proc = nil
	n.pausedUntil = 0
	n.held = nil
	n.resume.Cancel()
	n.resume = nil
	n.w.s.Tracef("node %d kill crash=%v", n.id, crash)
	for _, t := range p.tasks {
		t.Kill()
	}
	p.groups.kill()
	for _, r := range p.replicas {
		r.kill()
	}
	if crash {
		rep := n.disk.Crash()
		n.w.s.Tracef("node %d crash kept=%d torn=%d dropped=%d", n.id, rep.KeptWrites, rep.TornWrites, rep.DroppedWrites)
		// The old process's files now fail every call: closing only
		// releases Pebble's goroutines and memory.
		p.closeStorage()
	} else {
		// A clean stop that skips nothing the OS would keep: unsynced
		// data stays in the page cache.
		p.closeStorage()
	}
}

// after runs fn d from now on p's behalf: never once p is dead, and not
// while its node is paused (then when the pause ends).
func (p *process) after(d sched.Time, fn func()) *sched.Event {
	return p.n.w.s.After(d, func() { p.run(fn) })
}

// run runs fn now for p, or when the pause ends if p's node is paused
// (after everything held before it: a pause must not reorder a
// connection's requests).
func (p *process) run(fn func()) {
	if p.dead {
		return
	}
	n := p.n
	if n.pausedUntil > n.w.s.Now() || len(n.held) > 0 {
		n.held = append(n.held, func() { p.run(fn) })
		n.scheduleResume()
		return
	}
	fn()
}

// pause stops the node's process until until.
func (n *node) pause(until sched.Time) {
	n.pausedUntil = until
	n.scheduleResume()
}

// unpause ends a pause now.
func (n *node) unpause() {
	n.pausedUntil = 0
	n.scheduleResume()
}

// scheduleResume arranges for the held work to run when the pause ends.
func (n *node) scheduleResume() {
	at := max(n.pausedUntil, n.w.s.Now())
	if n.resume != nil && n.resume.At() == at {
		return
	}
	n.resume.Cancel()
	n.resume = n.w.s.At(at, n.runHeld)
}

// runHeld runs what waited for the pause to end, in arrival order.
func (n *node) runHeld() {
	n.resume = nil
	if n.pausedUntil > n.w.s.Now() {
		n.scheduleResume()
		return
	}
	held := n.held
	n.held = nil
	for i, fn := range held {
		fn()
		if n.pausedUntil > n.w.s.Now() {
			// Paused again by what just ran: keep the rest, in order.
			n.held = append(held[i+1:len(held):len(held)], n.held...)
			n.scheduleResume()
			return
		}
	}
}

// resetTimer replaces the timer prev with one that runs fn at atMs on the
// node's clock (none when atMs < 0): a cell's one timer (CellEnv.SetTimer).
func (p *process) resetTimer(prev *sched.Event, atMs int64, fn func()) *sched.Event {
	prev.Cancel()
	if atMs < 0 {
		return nil
	}
	d := max(atMs-p.n.nowMs(), 0)
	return p.after(sched.Time(d)*sched.Millisecond, fn)
}

// goTask starts fn as a task of p (killed with it), from a fresh event so
// that no caller is re-entered.
func (p *process) goTask(name string, fn func(t *sched.Task)) {
	p.after(0, func() {
		t := p.n.w.s.Go(name, fn)
		if !t.Done() {
			p.tasks = append(p.tasks, t)
			p.tasks = slices.DeleteFunc(p.tasks, (*sched.Task).Done)
		}
	})
}

// --- the metadata quorum ---

func (p *process) raftTick() {
	p.raft.Tick()
	p.flushRaft()
	p.after(p.n.w.tickJitter(), p.raftTick)
}

// stepRaft hands raft a message from a peer.
func (p *process) stepRaft(m *pb.Message) {
	if err := p.raft.Step(m); err != nil {
		p.logger.Debug("raft step", "err", err)
	}
	p.flushRaft()
}

// flushRaft carries out the raft core's Readies, in etcd raft's order.
func (p *process) flushRaft() {
	w := p.n.w
	for !p.dead && p.raft.HasReady() {
		rd, err := p.raft.Ready()
		if err != nil {
			w.fatal(p, fmt.Errorf("raft ready: %w", err))
			return
		}
		if err := p.raftStore.SaveReady(rd.HardState, rd.Entries, rd.Snapshot, rd.MustSync); err != nil {
			// A disk fault: the process dies, as the daemon's quorum
			// stops on a storage error.
			p.logger.Warn("raft storage failed; process stops", "err", err)
			p.n.kill(false)
			return
		}
		for _, m := range rd.Messages {
			p.sendRaft(m)
		}
		for _, c := range rd.Committed {
			recs, err := metadata.DecodeBatch(c.Data)
			if err != nil {
				w.fatal(p, fmt.Errorf("decode committed batch %d: %w", c.Index, err))
				return
			}
			if err := p.journal.apply(int64(c.Index), recs); err != nil {
				w.fatal(p, fmt.Errorf("apply committed batch %d: %w", c.Index, err))
				return
			}
		}
		if err := p.raft.Advance(); err != nil {
			w.fatal(p, fmt.Errorf("raft advance: %w", err))
			return
		}
		for _, r := range rd.Results {
			if fn, ok := p.waiters[r.ID]; ok {
				delete(p.waiters, r.ID)
				fn(r)
			}
		}
		if l := rd.Leadership; l != nil {
			w.s.Tracef("node %d sees raft leader %d term %d", p.n.id, l.Leader, l.Term)
			if l.Leader == p.n.id {
				w.check.ControllerTerm(l.Term, p.n.id)
				p.controllerCommand(func(_ *sched.Task) {
					if err := p.ctrl.BecomeActive(p.n.nowMs()); err != nil {
						p.logger.Debug("become active controller", "err", err)
					}
				})
			} else {
				p.ctrl.Resign()
			}
		}
	}
}

// sendRaft sends one raft message; raft survives loss, duplication and
// reordering, so it travels as datagrams.
func (p *process) sendRaft(m *pb.Message) {
	b, err := proto.Marshal(m)
	if err != nil {
		p.logger.Error("marshal raft message", "err", err)
		return
	}
	to := int32(m.GetTo()) - 1 // raft id = node id + 1
	p.n.w.send(p.n.id, to, classRaft, func(q *process) {
		msg := &pb.Message{}
		if err := proto.Unmarshal(b, msg); err != nil {
			return
		}
		q.stepRaft(msg)
	})
}

// journal makes the controller propose through the simulated raft core.
// Append runs inside a controller task and parks it until the proposal
// resolves.
type journal struct {
	p     *process
	apply metadata.ApplyFunc
}

func (j *journal) SetApply(fn metadata.ApplyFunc)                  { j.apply = fn }
func (j *journal) Replay(func(int64, metadata.Record) error) error { return nil }
func (j *journal) Close() error                                    { return nil }

// proposeTimeout is how long a proposal may wait to commit.
const proposeTimeout = 5 * sched.Second

func (j *journal) Append(recs []metadata.Record) (int64, error) {
	p := j.p
	t := p.ctrlTask
	if t == nil || p.dead {
		return 0, fmt.Errorf("no controller task: %w", metadata.ErrNotController)
	}
	data, err := metadata.EncodeBatch(recs)
	if err != nil {
		return 0, err
	}
	id, err := p.raft.Propose(data)
	if err != nil {
		return 0, fmt.Errorf("%v: %w", err, metadata.ErrNotController)
	}
	var res *quorum.Result
	err = t.Await(func(wake func()) {
		p.waiters[id] = func(r quorum.Result) { res = &r; wake() }
		p.n.w.s.After(proposeTimeout, wake)
		p.flushRaft()
	})
	delete(p.waiters, id)
	switch {
	case err != nil:
		return 0, fmt.Errorf("process stopped: %w", metadata.ErrNotController)
	case res == nil:
		return 0, fmt.Errorf("metadata proposal not committed in time: %w", kerr.RequestTimedOut)
	case res.Err != nil:
		return 0, fmt.Errorf("%v: %w", res.Err, metadata.ErrNotController)
	}
	return int64(res.Index), nil
}

// controllerCommand queues fn to run on this process's controller, in a
// task, after the commands queued before it.
func (p *process) controllerCommand(fn func(t *sched.Task)) {
	p.ctrlQueue = append(p.ctrlQueue, fn)
	if p.ctrlBusy {
		return
	}
	p.ctrlBusy = true
	p.goTask(fmt.Sprintf("controller-%d", p.n.id), func(t *sched.Task) {
		for len(p.ctrlQueue) > 0 && !p.dead {
			next := p.ctrlQueue[0]
			p.ctrlQueue = p.ctrlQueue[1:]
			p.ctrlTask = t
			next(t)
			p.ctrlTask = nil
		}
		p.ctrlBusy = false
	})
}

// controllerTick lets the active controller fence brokers whose
// heartbeats stopped.
func (p *process) controllerTick() {
	if p.ctrl.Active() {
		p.controllerCommand(func(*sched.Task) {
			if fenced, err := p.ctrl.Tick(p.n.nowMs()); err == nil && len(fenced) > 0 {
				p.n.w.s.Tracef("node %d fenced brokers %v", p.n.id, fenced)
			}
		})
	}
	p.after(250*sched.Millisecond, p.controllerTick)
}
