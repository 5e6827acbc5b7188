package quorum

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/troupe-io/troupe/cluster/transport"
	"github.com/troupe-io/troupe/raftlog"
)

// Defaults of Config.
const (
	DefaultTickInterval    = 100 * time.Millisecond
	DefaultSnapshotEntries = 10000
	// DefaultReadBytes bounds ReadCommitted when maxBytes is not positive.
	DefaultReadBytes = 1 << 20
)

// Bounds of the Node's queues and loop. The inbox may drop: raft
// retransmits whatever a lost message carried.
const (
	inboxSize        = 1024
	proposalQueue    = 256
	maxInputsPerRun  = 256 // inputs stepped before their Readies are handled
	maxReadiesPerRun = 64
)

// Config configures Start.
type Config struct {
	// NodeID is this voter's node id; Voters all voters' ids, the same on
	// every voter and across restarts (see NewCore). The caller tells the
	// Transport their addresses.
	NodeID int32
	Voters []int32
	// Storage is this node's raft log, opened by the caller and still
	// theirs to close after Close.
	Storage *raftlog.Storage
	// Transport carries raft messages (transport.KindRaft, payload = one
	// marshalled raftpb.Message). The caller routes the KindRaft messages
	// its Handler receives to HandleMessage.
	Transport transport.Transport

	// Apply applies one committed record batch at index: the payload given
	// to Propose, opaque to this package (the cluster proposes
	// metadata.EncodeBatch output and decodes it with
	// metadata.DecodeBatch). Entries without a payload (a new leader's
	// empty entry, the bootstrap configuration) are not passed to Apply.
	// It is called on the Node's goroutine, in log order, and must not
	// call Propose. data is read-only (it is shared with the log cache)
	// but may be kept. An error stops the Node: the state machine can no
	// longer follow the log.
	Apply func(index uint64, data []byte) error
	// Snapshot returns the application's state as of the last Apply, for
	// log compaction. Nil disables snapshots and compaction.
	Snapshot func() ([]byte, error)
	// Restore replaces the application's state with a snapshot's data, as
	// of index. It is called by Start with the stored snapshot and when
	// the leader sends one. Required once a snapshot may exist.
	Restore func(data []byte, index uint64) error
	// OnLeaderChange reports the leader as the application should see it
	// (Ready.Leadership): -1 while unknown; this node only once it has
	// applied an entry of its term. It runs on the Node's goroutine: it
	// must return quickly and must not call Propose or Close.
	OnLeaderChange func(leader int32, term uint64)

	// SnapshotEntries is how many applied entries trigger a snapshot;
	// default 10000. See maybeSnapshot for what compaction keeps.
	SnapshotEntries uint64
	// TickInterval is raft's tick; default 100 ms. The election timeout is
	// ElectionTick ticks (default 10), heartbeats go every HeartbeatTick.
	TickInterval  time.Duration
	ElectionTick  int
	HeartbeatTick int

	Logger *slog.Logger
}

// Status is a node's view of the quorum, enough for DescribeQuorum.
type Status struct {
	NodeID  int32
	Term    uint64
	Leader  int32 // -1 when unknown
	Role    string
	Commit  uint64
	Applied uint64
	// SnapshotIndex is the index of the latest stored snapshot, 0 if none.
	SnapshotIndex uint64
	// Voters is filled on the leader only: each voter's log end as the
	// leader knows it and when this node last received a message from it
	// (zero if never since Start; now for the leader itself).
	Voters []VoterStatus
}

// VoterStatus is the leader's view of one voter.
type VoterStatus struct {
	ID          int32
	Match       uint64
	Active      bool
	LastContact time.Time
}

// Node runs a Core on one goroutine: it ticks it from a time.Ticker, steps
// the messages peers send, persists each Ready through raftlog, sends its
// messages, applies committed batches through Config.Apply and answers
// proposals once they are applied.
type Node struct {
	cfg     Config
	log     *slog.Logger
	storage *raftlog.Storage

	inbox     chan *pb.Message
	proposals chan *proposal
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	// Published by the loop for other goroutines.
	leader   atomic.Int32
	isLeader atomic.Bool
	commit   atomic.Uint64 // persisted commit index, bounds ReadCommitted
	mu       sync.Mutex
	status   Status
	err      error

	// Owned by the loop goroutine.
	core        *Core
	waiters     map[ProposalID]*proposal
	applied     uint64
	snapIndex   uint64
	snapAttempt uint64 // applied index of the last failed Snapshot call
	lastContact map[int32]time.Time
	progress    []VoterProgress
	reports     []report
}

type proposal struct {
	data []byte
	done chan proposeResult // buffered: the loop never blocks on it
}

type proposeResult struct {
	index uint64
	err   error
}

// report is a send failure or a sent snapshot, reported to raft after
// Advance: raft must not change between Ready and Advance.
type report struct {
	to       int32
	snapshot bool
	sent     bool
}

// Start restores the application from the stored snapshot, starts raft
// over cfg.Storage (bootstrapping a brand-new voter, see NewCore) and
// starts the Node's goroutine.
//
// Restart rule: the application's state lives in memory and is rebuilt on
// every start. Start calls Restore with the latest stored snapshot and
// starts raft with Applied = its index, so raft hands out again every
// committed entry after it and Apply sees each entry exactly once per
// incarnation, in order, from a state that reflects exactly the entries
// before it.
func Start(cfg Config) (*Node, error) {
	if cfg.Storage == nil || cfg.Transport == nil || cfg.Apply == nil {
		return nil, errors.New("quorum: Config needs Storage, Transport and Apply")
	}
	if cfg.SnapshotEntries == 0 {
		cfg.SnapshotEntries = DefaultSnapshotEntries
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = DefaultTickInterval
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "quorum", "node", cfg.NodeID)

	snap, err := cfg.Storage.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("quorum: read stored snapshot: %w", err)
	}
	applied := snap.GetMetadata().GetIndex()
	if applied > 0 {
		if cfg.Restore == nil {
			return nil, fmt.Errorf("quorum: a snapshot at %d is stored but Config.Restore is nil", applied)
		}
		if err := cfg.Restore(snap.GetData(), applied); err != nil {
			return nil, fmt.Errorf("quorum: restore snapshot at %d: %w", applied, err)
		}
	}
	core, err := NewCore(CoreConfig{
		ID:            cfg.NodeID,
		Voters:        cfg.Voters,
		Storage:       cfg.Storage,
		Applied:       applied,
		ElectionTick:  cfg.ElectionTick,
		HeartbeatTick: cfg.HeartbeatTick,
		Logger:        raftLogger{logger},
	})
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:         cfg,
		log:         logger,
		storage:     cfg.Storage,
		inbox:       make(chan *pb.Message, inboxSize),
		proposals:   make(chan *proposal, proposalQueue),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
		core:        core,
		waiters:     make(map[ProposalID]*proposal),
		applied:     applied,
		snapIndex:   applied,
		lastContact: make(map[int32]time.Time, len(cfg.Voters)),
	}
	n.leader.Store(-1)
	// ReadCommitted serves up to the durable commit index: the stored
	// one until the first Ready persists a newer one.
	hs, _, err := cfg.Storage.InitialState()
	if err != nil {
		return nil, fmt.Errorf("quorum: read hard state: %w", err)
	}
	n.commit.Store(hs.GetCommit())
	n.publish()
	logger.Info("quorum: node started", "voters", cfg.Voters, "applied", applied)
	go n.run()
	return n, nil
}

// HandleMessage takes a KindRaft payload from peer from. It decodes it
// and queues it for the Node's goroutine without blocking; a message that
// does not decode, claims another sender or finds the queue full is
// dropped (raft retransmits).
func (n *Node) HandleMessage(from int32, payload []byte) {
	m := new(pb.Message)
	// Unmarshal copies bytes fields, so payload may be reused afterwards.
	if err := proto.Unmarshal(payload, m); err != nil {
		n.log.Warn("quorum: undecodable raft message", "from", from, "err", err)
		return
	}
	if m.GetFrom() != raftID(from) {
		n.log.Warn("quorum: raft message claims another sender", "from", from, "claims", nodeID(m.GetFrom()))
		return
	}
	select {
	case n.inbox <- m:
	default:
		n.log.Debug("quorum: inbox full, raft message dropped", "from", from, "type", m.GetType())
	}
}

// Propose appends data (a record batch: metadata.EncodeBatch output) to
// the metadata log. It returns the entry's index once the entry is committed and this
// node has applied it (Config.Apply returned). On a follower it fails at
// once with a *NotLeaderError. It fails with ErrProposalDropped when
// another leader's entry took the proposal's place, and with ctx's error
// when ctx ends first — the proposal may then still commit.
func (n *Node) Propose(ctx context.Context, data []byte) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if !n.isLeader.Load() {
		return 0, &NotLeaderError{Leader: n.leader.Load()}
	}
	if len(data) > MaxProposalBytes {
		return 0, fmt.Errorf("quorum: proposal of %d bytes: %w", len(data), ErrTooLarge)
	}
	p := &proposal{data: data, done: make(chan proposeResult, 1)}
	select {
	case n.proposals <- p:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-n.done:
		return 0, n.stoppedErr()
	}
	select {
	case r := <-p.done:
		return r.index, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-n.done:
		select {
		case r := <-p.done: // resolved just before the loop stopped
			return r.index, r.err
		default:
			return 0, n.stoppedErr()
		}
	}
}

// Leader returns raft's leader as this node knows it, -1 if unknown.
func (n *Node) Leader() int32 { return n.leader.Load() }

// IsLeader reports whether this node is raft's leader.
func (n *Node) IsLeader() bool { return n.isLeader.Load() }

// Status returns this node's view of the quorum. It never waits for the
// Node's goroutine, so callbacks may call it too.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.status
	s.Voters = slices.Clone(s.Voters)
	return s
}

// ReadCommitted returns committed entries from index from on, for brokers
// that follow the log without voting: entries[i] is the entry at
// firstIndex+i, its payload (a record batch) or nil for an entry that
// carries none (a new leader's empty entry, a configuration change). It
// returns at least one entry if any is committed at or after from, and no
// more than maxBytes beyond the first (DefaultReadBytes if maxBytes <= 0).
// When from is compacted away it returns the latest snapshot instead (its
// data, and firstIndex = its index + 1) and no entries; the caller
// restores it and reads on from firstIndex. Entries are read-only.
func (n *Node) ReadCommitted(from uint64, maxBytes int) (entries [][]byte, firstIndex uint64, snapshot []byte, err error) {
	if from == 0 {
		from = 1
	}
	if maxBytes <= 0 {
		maxBytes = DefaultReadBytes
	}
	commit := n.commit.Load()
	// Compaction may run between FirstIndex and Entries; the second pass
	// then finds from compacted and answers with the snapshot.
	for range 2 {
		first, err := n.storage.FirstIndex()
		if err != nil {
			return nil, 0, nil, fmt.Errorf("quorum: read committed: %w", err)
		}
		if from < first {
			snap, err := n.storage.Snapshot()
			if err != nil {
				return nil, 0, nil, fmt.Errorf("quorum: read committed: snapshot: %w", err)
			}
			return nil, snap.GetMetadata().GetIndex() + 1, snap.GetData(), nil
		}
		if from > commit {
			return nil, from, nil, nil
		}
		ents, err := n.storage.Entries(from, commit+1, uint64(maxBytes))
		if errors.Is(err, raft.ErrCompacted) {
			continue
		}
		if err != nil {
			return nil, 0, nil, fmt.Errorf("quorum: read committed [%d, %d]: %w", from, commit, err)
		}
		entries = make([][]byte, len(ents))
		for i, e := range ents {
			if entries[i], err = entryPayload(e); err != nil {
				return nil, 0, nil, fmt.Errorf("quorum: read committed: %w", err)
			}
		}
		return entries, from, nil, nil
	}
	return nil, 0, nil, fmt.Errorf("quorum: read committed from %d: log compacted twice while reading", from)
}

// Done is closed when the Node's goroutine has stopped (Close, or a fatal
// error reported by Err).
func (n *Node) Done() <-chan struct{} { return n.done }

// Err returns the error that stopped the Node, nil if none (or if it was
// only closed).
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// Close stops the Node's goroutine and fails the proposals still waiting
// with ErrStopped. It leaves Storage and Transport open. It returns the
// error that had stopped the Node, if any.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { close(n.stop) })
	<-n.done
	return n.Err()
}

func (n *Node) stoppedErr() error {
	if err := n.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrStopped, err)
	}
	return ErrStopped
}

// run is the Node's goroutine: it owns the Core and everything it decides.
func (n *Node) run() {
	defer close(n.done)
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	if len(n.cfg.Voters) == 1 {
		// A sole voter needs nobody's vote: campaign at once rather than
		// after an election timeout, so that a single-node cluster serves
		// right after start. raft ignores a campaign while configuration
		// changes await applying, hence the Readies first (the bootstrap
		// entries, or what a restart replays); if any remain, the election
		// timeout elects the node anyway.
		if err := n.handleReadies(); err != nil {
			n.shutdown(err)
			return
		}
		if err := n.core.Campaign(); err != nil {
			n.shutdown(err)
			return
		}
	}
	for {
		// Block only when the Core has nothing to hand out.
		if !n.core.HasReady() {
			select {
			case <-n.stop:
				n.shutdown(nil)
				return
			case <-ticker.C:
				n.core.Tick()
			case m := <-n.inbox:
				n.step(m)
			case p := <-n.proposals:
				n.propose(p)
			}
		}
		// Step what else is queued before handling the Readies, so that
		// one synced write covers many inputs.
		n.drainInputs()
		if err := n.handleReadies(); err != nil {
			n.shutdown(err)
			return
		}
		select {
		case <-n.stop:
			n.shutdown(nil)
			return
		default:
		}
	}
}

func (n *Node) drainInputs() {
	for range maxInputsPerRun {
		select {
		case m := <-n.inbox:
			n.step(m)
		case p := <-n.proposals:
			n.propose(p)
		default:
			return
		}
	}
}

func (n *Node) step(m *pb.Message) {
	from := nodeID(m.GetFrom())
	if err := n.core.Step(m); err != nil {
		n.log.Debug("quorum: raft message refused", "from", from, "type", m.GetType(), "err", err)
		return
	}
	n.lastContact[from] = time.Now()
}

func (n *Node) propose(p *proposal) {
	id, err := n.core.Propose(p.data)
	if err != nil {
		p.done <- proposeResult{err: err}
		return
	}
	n.waiters[id] = p
}

// handleReadies carries out the Core's Readies until it has none left
// (raft converges in a few; the bound only keeps the loop responsive).
func (n *Node) handleReadies() error {
	for i := 0; i < maxReadiesPerRun && n.core.HasReady(); i++ {
		if err := n.handleReady(); err != nil {
			return err
		}
	}
	if err := n.core.Err(); err != nil {
		return err
	}
	if err := n.maybeSnapshot(); err != nil {
		return err
	}
	n.publish()
	return nil
}

func (n *Node) handleReady() error {
	rd, err := n.core.Ready()
	if err != nil {
		return err
	}
	// 1. Persist: synced when raft says MustSync; a snapshot always is.
	if err := n.storage.SaveReady(rd.HardState, rd.Entries, rd.Snapshot, rd.MustSync); err != nil {
		return fmt.Errorf("quorum: persist ready: %w", err)
	}
	if rd.HardState != nil {
		n.commit.Store(rd.HardState.GetCommit())
	}
	// 2. Invariant: messages go out only after SaveReady returned. They
	// may carry promises about the state just persisted (a vote for this
	// term, an acknowledgement of these entries); sent earlier, a crash
	// could break them.
	n.send(rd.Messages)
	// 3. A snapshot from the leader replaces the application's state.
	if snap := rd.Snapshot; snap != nil {
		index := snap.GetMetadata().GetIndex()
		if n.cfg.Restore == nil {
			return fmt.Errorf("quorum: received a snapshot at %d but Config.Restore is nil", index)
		}
		if err := n.cfg.Restore(snap.GetData(), index); err != nil {
			return fmt.Errorf("quorum: restore snapshot at %d: %w", index, err)
		}
		n.applied, n.snapIndex = index, index
		n.log.Info("quorum: installed snapshot from leader", "index", index)
	}
	// 4. Apply in log order. Invariant: Apply sees each index once per
	// incarnation, above the one before (raft hands out committed entries
	// once, after the restored snapshot).
	for _, c := range rd.Committed {
		if err := n.cfg.Apply(c.Index, c.Data); err != nil {
			return fmt.Errorf("quorum: apply entry %d: %w", c.Index, err)
		}
	}
	if err := n.core.Advance(); err != nil {
		return err
	}
	if rd.AppliedIndex > 0 {
		n.applied = rd.AppliedIndex
	}
	for _, r := range n.reports {
		if r.snapshot {
			n.core.ReportSnapshot(r.to, r.sent)
		} else {
			n.core.ReportUnreachable(r.to)
		}
	}
	n.reports = n.reports[:0]
	// 5. Answer proposals (now applied) and announce leadership.
	for _, r := range rd.Results {
		if p, ok := n.waiters[r.ID]; ok {
			delete(n.waiters, r.ID)
			p.done <- proposeResult{index: r.Index, err: r.Err}
		}
	}
	if l := rd.Leadership; l != nil {
		n.log.Info("quorum: leader changed", "leader", l.Leader, "term", l.Term)
		if n.cfg.OnLeaderChange != nil {
			n.cfg.OnLeaderChange(l.Leader, l.Term)
		}
	}
	return nil
}

func (n *Node) send(msgs []*pb.Message) {
	for _, m := range msgs {
		to := nodeID(m.GetTo())
		payload, err := proto.Marshal(m)
		if err != nil {
			n.log.Error("quorum: encode raft message", "to", to, "type", m.GetType(), "err", err)
			continue
		}
		sent := n.cfg.Transport.Send(to, transport.KindRaft, payload)
		if m.GetType() == pb.MsgSnap {
			n.reports = append(n.reports, report{to: to, snapshot: true, sent: sent})
		} else if !sent {
			n.reports = append(n.reports, report{to: to})
		}
	}
}

// maybeSnapshot snapshots the application once SnapshotEntries entries
// were applied since the last snapshot, then compacts the log up to the
// previous snapshot. Keeping the entries between the two snapshots (at
// least SnapshotEntries) lets a follower that lags by less catch up from
// the log, and raftlog requires compacting no further than a snapshot.
func (n *Node) maybeSnapshot() error {
	if n.cfg.Snapshot == nil || n.applied-n.snapIndex < n.cfg.SnapshotEntries || n.applied-n.snapAttempt < n.cfg.SnapshotEntries {
		return nil
	}
	data, err := n.cfg.Snapshot()
	if err != nil {
		// Not fatal: the log just grows until a later attempt works.
		n.snapAttempt = n.applied
		n.log.Error("quorum: snapshot failed", "applied", n.applied, "err", err)
		return nil
	}
	prev := n.snapIndex
	if _, err := n.storage.CreateSnapshot(n.applied, n.core.ConfState(), data); err != nil {
		return fmt.Errorf("quorum: store snapshot at %d: %w", n.applied, err)
	}
	n.snapIndex = n.applied
	first, err := n.storage.FirstIndex()
	if err != nil {
		return fmt.Errorf("quorum: compact: %w", err)
	}
	if prev >= first {
		if err := n.storage.Compact(prev); err != nil {
			return fmt.Errorf("quorum: compact to %d: %w", prev, err)
		}
	}
	n.log.Debug("quorum: snapshot", "index", n.snapIndex, "bytes", len(data), "compacted", prev)
	return nil
}

// publish copies the Core's state where other goroutines read it.
func (n *Node) publish() {
	cs := n.core.Status()
	n.leader.Store(cs.Leader)
	n.isLeader.Store(cs.Role == "leader")
	n.progress = n.core.AppendProgress(n.progress[:0])
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.status.NodeID, n.status.Term, n.status.Leader, n.status.Role = cs.ID, cs.Term, cs.Leader, cs.Role
	n.status.Commit, n.status.Applied, n.status.SnapshotIndex = cs.Commit, n.applied, n.snapIndex
	n.status.Voters = n.status.Voters[:0]
	for _, p := range n.progress {
		contact := n.lastContact[p.ID]
		if p.ID == cs.ID {
			contact = now
		}
		n.status.Voters = append(n.status.Voters, VoterStatus{ID: p.ID, Match: p.Match, Active: p.Active, LastContact: contact})
	}
}

// shutdown ends the loop: it records err (nil for Close) and fails every
// waiting proposal.
func (n *Node) shutdown(err error) {
	n.mu.Lock()
	n.err = err
	n.mu.Unlock()
	n.isLeader.Store(false)
	if err != nil {
		n.log.Error("quorum: node stopped", "err", err)
	}
	stopped := n.stoppedErr()
	for id, p := range n.waiters {
		delete(n.waiters, id)
		p.done <- proposeResult{err: stopped}
	}
}

// raftLogger routes raft's log to slog. raft's Info messages (every vote,
// every ignored vote during a partition) go to Debug: the Node logs
// leadership changes itself. raft expects Fatal and Panic not to return:
// both panic, which the Core turns into a stopping error.
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) logf(level slog.Level, format string, v []any) {
	if r.l.Enabled(context.Background(), level) {
		r.l.Log(context.Background(), level, "raft: "+fmt.Sprintf(format, v...))
	}
}

func (r raftLogger) logln(level slog.Level, v []any) {
	if r.l.Enabled(context.Background(), level) {
		r.l.Log(context.Background(), level, "raft: "+fmt.Sprint(v...))
	}
}

func (r raftLogger) Debug(v ...any)                 { r.logln(slog.LevelDebug, v) }
func (r raftLogger) Debugf(format string, v ...any) { r.logf(slog.LevelDebug, format, v) }
func (r raftLogger) Info(v ...any)                  { r.logln(slog.LevelDebug, v) }
func (r raftLogger) Infof(format string, v ...any)  { r.logf(slog.LevelDebug, format, v) }
func (r raftLogger) Warning(v ...any)               { r.logln(slog.LevelWarn, v) }
func (r raftLogger) Warningf(format string, v ...any) {
	r.logf(slog.LevelWarn, format, v)
}
func (r raftLogger) Error(v ...any)                 { r.logln(slog.LevelError, v) }
func (r raftLogger) Errorf(format string, v ...any) { r.logf(slog.LevelError, format, v) }
func (r raftLogger) Fatal(v ...any)                 { r.Panic(v...) }
func (r raftLogger) Fatalf(format string, v ...any) { r.Panicf(format, v...) }
func (r raftLogger) Panic(v ...any) {
	msg := fmt.Sprint(v...)
	r.l.Error("raft: " + msg)
	panic(msg)
}
func (r raftLogger) Panicf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	r.l.Error("raft: " + msg)
	panic(msg)
}
