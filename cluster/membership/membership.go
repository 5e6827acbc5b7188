package membership

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// State is a member's state in this node's view.
type State uint8

const (
	// StateAlive: the node answers probes (it may be under a suspicion
	// that memberlist does not report; see the package doc).
	StateAlive State = iota + 1
	// StateDead: the node was declared failed.
	StateDead
	// StateLeft: the node left gracefully.
	StateLeft
)

func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	default:
		return "unknown"
	}
}

// Member is one node as this node sees it.
type Member struct {
	NodeID int32
	// Addr is the node's gossip address, host:port.
	Addr  string
	Meta  NodeMeta
	State State
}

// forgetAfter is how long a dead or left node stays in Members. It bounds
// the table however many node ids come and go.
const forgetAfter = time.Minute

// entry is a node in the member table.
type entry struct {
	member Member
	// leaving: the node's metadata said it was leaving, so its
	// disappearance is Left rather than Failed.
	leaving bool
	// since is when member.State last changed.
	since time.Time
}

// Membership is one node's failure detector: it gossips with the other
// nodes and reports who is alive. Its methods are safe for concurrent use.
type Membership struct {
	cfg      Config
	selfName string
	log      *slog.Logger

	// meta is what NodeMeta returns to memberlist: the encoded Config.Meta,
	// or leavingMeta once Close has begun.
	meta        atomic.Pointer[[]byte]
	leavingMeta []byte

	ml     *memberlist.Memberlist   // set once, before any goroutine of ours runs
	addr   string                   // advertised gossip address, set with ml
	seeds  atomic.Pointer[[]string] // Config.Seeds (or SetSeeds) minus this node's own address
	events *eventQueue

	// mu guards members. Lock order: memberlist calls our delegate while
	// holding its own node lock, and the delegate takes mu; so code
	// holding mu must never call into memberlist.
	mu      sync.Mutex
	members map[int32]*entry

	// staleSelf is set when a peer still holds an earlier incarnation of
	// this node (alive, or gone but not yet replaced by this one); while
	// it is set the rejoin loop keeps joining, so this process is heard.
	staleSelf atomic.Bool
	// announce asks the rejoin loop to re-gossip this node's liveness (see
	// delegate.NotifyMerge).
	announce atomic.Bool
	// closed is set once memberlist is shut down. Its suspicion timers
	// can still fire afterwards; record ignores them.
	closed atomic.Bool
	// lastConflictLog rate-limits the conflict warning (unix nanos).
	lastConflictLog atomic.Int64

	rejoinNow chan struct{} // capacity 1: "check the seeds now"
	stopLoop  chan struct{}
	loopDone  chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Start binds the gossip listener, announces this node and returns. Joining
// the seeds happens in the background and never makes Start fail: the
// seeds may not be up yet.
func Start(cfg Config) (*Membership, error) {
	cfg = cfg.withDefaults()
	if cfg.Meta.Incarnation == 0 {
		cfg.Meta.Incarnation = time.Now().UnixNano()
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Seeds = slices.Clone(cfg.Seeds)
	cfg.Meta.Roles = slices.Clone(cfg.Meta.Roles)
	meta, err := encodeMeta(cfg.Meta, false)
	if err != nil {
		return nil, err
	}
	leavingMeta, err := encodeMeta(cfg.Meta, true)
	if err != nil {
		return nil, err
	}

	m := &Membership{
		cfg:         cfg,
		selfName:    nodeName(cfg.NodeID),
		log:         cfg.Logger.With("component", "membership", "node", cfg.NodeID),
		leavingMeta: leavingMeta,
		events:      newEventQueue(),
		members:     make(map[int32]*entry),
		rejoinNow:   make(chan struct{}, 1),
		stopLoop:    make(chan struct{}),
		loopDone:    make(chan struct{}),
	}
	m.meta.Store(&meta)
	mc, err := cfg.memberlistConfig(&delegate{m: m})
	if err != nil {
		return nil, err
	}
	// The delegate may be called from inside Create (this node's own
	// join), so everything it touches exists before.
	go m.events.pump()
	ml, err := memberlist.Create(mc)
	if err != nil {
		m.events.stop()
		return nil, fmt.Errorf("membership: start node %d on %s: %w", cfg.NodeID, cfg.BindAddr, err)
	}
	m.ml = ml
	// Our own join was recorded during Create. (LocalNode would hand out
	// memberlist's internal record, unsafe to read without its lock.)
	m.mu.Lock()
	if self, ok := m.members[cfg.NodeID]; ok {
		m.addr = self.member.Addr
	}
	m.mu.Unlock()
	if m.addr == "" {
		_ = ml.Shutdown()
		m.events.stop()
		return nil, fmt.Errorf("membership: start node %d: memberlist did not report this node", cfg.NodeID)
	}
	m.storeSeeds(cfg.Seeds)
	go m.rejoinLoop()
	m.log.Info("membership started", "addr", m.addr, "seeds", m.seedList(),
		"incarnation", cfg.Meta.Incarnation,
		"detection_time_3_nodes", cfg.FailureDetectionTime(3))
	return m, nil
}

// SetSeeds replaces the seeds the node (re)joins through, and checks them
// at once. The cluster learns its nodes' gossip addresses from the
// metadata, so they are known only after start-up.
func (m *Membership) SetSeeds(seeds []string) {
	m.storeSeeds(seeds)
	m.pokeRejoin()
}

func (m *Membership) storeSeeds(seeds []string) {
	var own []string
	for _, s := range seeds {
		if s != m.addr && s != m.cfg.BindAddr {
			own = append(own, s)
		}
	}
	m.seeds.Store(&own)
}

func (m *Membership) seedList() []string {
	if p := m.seeds.Load(); p != nil {
		return *p
	}
	return nil
}

// Addr returns the address other nodes reach this one at, host:port: the
// bound address (with the port chosen if BindAddr had port 0), or
// AdvertiseAddr. Give it to other nodes as a seed.
func (m *Membership) Addr() string { return m.addr }

// Events returns the channel of membership changes of other nodes (this
// node's own are not reported). It is closed by Close. Its capacity is
// bounded; a consumer that falls behind gets each node's latest state
// rather than every step (see the package doc).
func (m *Membership) Events() <-chan Event { return m.events.out }

// Members returns every node this one knows of, itself included, ordered
// by node id. Dead and left nodes stay for a minute.
func (m *Membership) Members() []Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forgetLocked(time.Now())
	out := make([]Member, 0, len(m.members))
	for _, e := range m.members {
		mem := e.member
		mem.Meta.Roles = slices.Clone(mem.Meta.Roles)
		out = append(out, mem)
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.NodeID, b.NodeID) })
	return out
}

// Close leaves the cluster gracefully and stops gossiping; peers report
// this node Left. It takes at most about LeaveTimeout plus one second (a
// join attempt in flight), typically 0.3 s. An error means the leave may
// not have reached every peer (they then report Failed); the node is
// stopped either way. Later calls return the first result.
func (m *Membership) Close() error {
	m.closeOnce.Do(func() { m.closeErr = m.shutdown(true) })
	return m.closeErr
}

// crash stops the node without leaving, as if its process died: peers
// must detect it and report it Failed. For tests.
// Halt stops gossiping without leaving: to the other nodes it looks like a
// crash or a network partition, and they declare this node dead. Fault
// injection uses it; a halted Membership cannot be restarted (start a new
// one).
func (m *Membership) Halt() { m.crash() }

func (m *Membership) crash() {
	m.closeOnce.Do(func() { m.closeErr = m.shutdown(false) })
}

func (m *Membership) shutdown(graceful bool) error {
	// Stop joining first: a join racing the leave could re-announce us.
	close(m.stopLoop)
	<-m.loopDone

	var errs []error
	if graceful {
		half := m.cfg.LeaveTimeout / 2
		// Peers must see the leaving flag before the leave itself, or they
		// report Failed: UpdateNode returns once the new metadata has been
		// gossiped (or half the budget is spent).
		m.meta.Store(&m.leavingMeta)
		if err := m.ml.UpdateNode(half); err != nil {
			errs = append(errs, fmt.Errorf("membership: announce leaving: %w", err))
		}
		if err := m.ml.Leave(half); err != nil {
			errs = append(errs, fmt.Errorf("membership: leave: %w", err))
		}
	}
	if err := m.ml.Shutdown(); err != nil {
		errs = append(errs, fmt.Errorf("membership: shutdown: %w", err))
	}
	m.closed.Store(true)
	m.events.stop()

	m.mu.Lock()
	if e, ok := m.members[m.cfg.NodeID]; ok {
		e.member.State, e.since = StateLeft, time.Now()
		if !graceful {
			e.member.State = StateDead
		}
	}
	m.mu.Unlock()
	m.log.Info("membership stopped", "graceful", graceful)
	return errors.Join(errs...)
}

// record applies a memberlist notification about n to the table and queues
// the event, if any. Called by memberlist with its node lock held: it must
// not call into memberlist.
func (m *Membership) record(n *memberlist.Node, what EventKind) {
	if m.closed.Load() {
		return
	}
	id, meta, leaving, err := decodeNode(n)
	if err != nil {
		// The alive delegate keeps such nodes out; this is a node admitted
		// before its metadata went bad, which cannot happen with our own
		// encoder.
		m.log.Debug("ignoring membership change", "name", n.Name, "err", err)
		return
	}
	now := time.Now()
	self := n.Name == m.selfName

	m.mu.Lock()
	e, known := m.members[id]
	if !known {
		e = &entry{}
		m.members[id] = e
	}
	prev := e.member
	e.member = Member{NodeID: id, Addr: n.Address(), Meta: meta, State: prev.State}
	e.leaving = leaving
	kind := what
	switch what {
	case Joined:
		e.member.State = StateAlive
	case Updated:
		e.member.State = StateAlive
		switch {
		case !known || prev.State != StateAlive:
			kind = Joined
		case prev.Meta.Equal(meta):
			// Only the leaving flag (internal) changed.
			kind = 0
		}
	default: // memberlist's "leave" covers both a crash and a leave
		kind, e.member.State = Failed, StateDead
		if leaving {
			kind, e.member.State = Left, StateLeft
		}
	}
	if e.member.State != prev.State {
		e.since = now
	}
	mem := e.member
	m.forgetLocked(now)
	m.mu.Unlock()

	if self || kind == 0 {
		return
	}
	m.events.push(Event{Kind: kind, Member: mem})
	attrs := []any{"peer", id, "addr", mem.Addr, "incarnation", meta.Incarnation}
	switch kind {
	case Failed:
		m.log.Warn("member failed", attrs...)
	default:
		m.log.Info("member "+kind.String(), attrs...)
	}
	if kind == Failed || kind == Left {
		// We may be alone now; let the rejoin loop look.
		m.pokeRejoin()
	}
}

// reviveGuard is how long after a node dies or leaves a join that shows a
// new incarnation of it alive is refused (see delegate.NotifyMerge). The
// death's gossip is retransmitted for well under a second; memberlist
// keeps the dead node, which the restarted one must see to refute, for
// gossipToTheDeadTime.
const reviveGuard = gossipToTheDeadTime / 2

// recentlyGone reports whether node id died or left less than reviveGuard
// ago under an incarnation other than incarnation.
func (m *Membership) recentlyGone(id int32, incarnation int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.members[id]
	return ok && e.member.State != StateAlive && e.member.Meta.Incarnation != incarnation &&
		time.Since(e.since) < reviveGuard
}

// forgetLocked drops dead and left nodes older than forgetAfter. m.mu held.
func (m *Membership) forgetLocked(now time.Time) {
	for id, e := range m.members {
		if e.member.State != StateAlive && now.Sub(e.since) > forgetAfter {
			delete(m.members, id)
		}
	}
}

func (m *Membership) pokeRejoin() {
	select {
	case m.rejoinNow <- struct{}{}:
	default:
	}
}
