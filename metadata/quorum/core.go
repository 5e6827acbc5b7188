package quorum

import (
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"
)

// Defaults of CoreConfig. With the Node's default 100 ms tick, a leader
// heartbeats every 100 ms and a follower that hears nothing for its
// randomised election timeout, 10–20 ticks (1–2 s), starts a pre-vote; a
// leader that has not heard from a quorum for 10 ticks steps down
// (CheckQuorum). Leader loss is therefore noticed in ~1–2 s and a new
// leader serves a round trip or two later.
const (
	DefaultElectionTick        = 10
	DefaultHeartbeatTick       = 1
	DefaultMaxSizePerMsg       = 1 << 20
	DefaultMaxInflightMsgs     = 256
	DefaultMaxUncommittedBytes = 2 * MaxProposalBytes
)

// MaxPendingProposals bounds the proposals a Core tracks until they
// commit or fail.
const MaxPendingProposals = 1 << 16

// CoreConfig configures NewCore.
type CoreConfig struct {
	// ID is this node's id; it must be one of Voters.
	ID int32
	// Voters are the node ids of the quorum (controller.quorum.voters).
	// Every voter must be given the same set: it is the configuration a
	// brand-new cluster bootstraps with (see NewCore). The set is static;
	// messages from other nodes are refused.
	Voters []int32
	// Storage is the raft log. When it is empty the Core bootstraps.
	Storage raft.Storage
	// Applied is the index the application's state already reflects: the
	// index of the snapshot it was restored from, 0 for a fresh start.
	// Committed entries after it are handed out again.
	Applied uint64

	// Zero values take the defaults above.
	ElectionTick        int
	HeartbeatTick       int
	MaxSizePerMsg       uint64
	MaxInflightMsgs     int
	MaxUncommittedBytes uint64

	// Logger receives raft's log; nil discards it.
	Logger raft.Logger
}

// ProposalID names one proposal: the term of the leader that accepted it
// and the leader's sequence number for it. See entry.go.
type ProposalID struct {
	Term, Seq uint64
}

// Committed is a committed entry that carries a proposal's payload.
type Committed struct {
	Index, Term uint64
	// Data is the payload given to Propose (a record batch). It aliases
	// the log entry: read-only.
	Data []byte
}

// Result is the outcome of one proposal this Core accepted: Err nil and
// the entry's Index once committed, or why it never will be.
type Result struct {
	ID    ProposalID
	Index uint64
	Err   error
}

// Leadership is the leader as the application should see it.
type Leadership struct {
	Leader int32 // -1 when unknown
	Term   uint64
}

// Ready is what the Core decided since the last Ready. The host handles
// it in this order, then calls Advance:
//
//  1. persist HardState, Entries and Snapshot, synced if MustSync (with
//     raftlog: Storage.SaveReady);
//  2. only then send Messages — raft may promise in them that the state of
//     step 1 is durable (a vote, an append acknowledgement). After Advance,
//     report a failed send with ReportUnreachable and the fate of every
//     MsgSnap with ReportSnapshot (raft must not change before Advance);
//  3. if Snapshot is set, replace the application's state with its data;
//  4. apply Committed in order;
//  5. deliver Results and act on Leadership, which describe the state
//     after step 4.
type Ready struct {
	HardState *pb.HardState // nil when unchanged
	Entries   []*pb.Entry
	Snapshot  *pb.Snapshot // nil when none
	MustSync  bool
	Messages  []*pb.Message

	// Committed lists the committed proposal payloads, in log order.
	Committed []Committed
	// AppliedIndex is the index of the last committed entry of this Ready
	// (payload or not), or 0 when none.
	AppliedIndex uint64
	// Results resolves the proposals whose outcome this Ready decided.
	Results []Result
	// Leadership is set when the leader the application should see
	// changed. A node that wins an election is announced only once it has
	// applied an entry of its own term, that is once every entry committed
	// before its term is applied here: the active controller it hosts then
	// starts from a complete image.
	Leadership *Leadership
}

// Core is one member of the metadata quorum as a deterministic state
// machine: etcd raft's RawNode plus the bookkeeping the quorum needs. It
// reads no clock, starts no goroutine, does no I/O and is not safe for
// concurrent use; its host feeds it Tick, Step and Propose and carries out
// each Ready.
//
// Determinism: given the same storage contents, configuration and input
// sequence, a Core produces the same Ready sequence, with one exception
// inherited from raft. Each time raft resets its election timer it draws
// the timeout from [ElectionTick, 2*ElectionTick) ticks with a package
// level source (crypto/rand in go.etcd.io/raft/v3 v3.7.0) that cannot be
// seeded, so how many ticks a follower or candidate waits before
// campaigning varies. Leaders' heartbeats and CheckQuorum use fixed tick
// counts, and everything else is driven by inputs. Making the draw
// seedable is the simulator issue's job (raft v3.7.0 has no hook for it; a
// patched raft behind a replace directive is the likely route); until
// then deterministic tests keep every follower below ElectionTick ticks
// without a heartbeat, and elect leaders with Campaign.
type Core struct {
	id     int32
	self   uint64 // raft id
	voters []uint64
	rn     *raft.RawNode

	// The raft Ready handed out and not yet advanced.
	rd      raft.Ready
	inReady bool

	confState   *pb.ConfState
	applied     uint64
	appliedTerm uint64 // term of the entry at applied

	// nextSeq numbers this Core's proposals. pending holds the ones not
	// yet resolved, in proposal order, which is (Term, Seq) order.
	nextSeq uint64
	pending []ProposalID

	announced Leadership
	err       error
}

// NewCore starts a Core over cfg.Storage.
//
// Bootstrapping: when the storage holds nothing (no entry, no hard state,
// no snapshot) this is a brand-new voter, and the Core bootstraps it with
// RawNode.Bootstrap, which writes one ConfChangeAddNode entry per voter at
// indexes 1..n, term 1, committed. The voters are sorted first, so every
// voter of a new cluster produces byte-identical entries 1..n. That is
// what makes bootstrapping safe without any coordination: raft's log
// matching property requires that two logs holding an entry with the same
// index and term are identical up to it, and every voter starts with the
// same entries and so the same initial ConfState. A voter that lost its
// disk bootstraps the same way and is caught up by the leader. Voters
// given different sets would break this, which is why all must share
// controller.quorum.voters. A non-empty storage is never bootstrapped: its
// configuration is whatever its snapshot and log say.
func NewCore(cfg CoreConfig) (c *Core, err error) {
	if cfg.Storage == nil {
		return nil, errors.New("quorum: CoreConfig.Storage is nil")
	}
	voters, err := checkVoters(cfg.ID, cfg.Voters)
	if err != nil {
		return nil, err
	}
	empty, err := storageIsEmpty(cfg.Storage)
	if err != nil {
		return nil, fmt.Errorf("quorum: inspect storage: %w", err)
	}
	if empty && cfg.Applied != 0 {
		return nil, fmt.Errorf("quorum: applied index %d given for an empty storage", cfg.Applied)
	}
	rc := &raft.Config{
		ID:                        raftID(cfg.ID),
		ElectionTick:              orDefault(cfg.ElectionTick, DefaultElectionTick),
		HeartbeatTick:             orDefault(cfg.HeartbeatTick, DefaultHeartbeatTick),
		Storage:                   cfg.Storage,
		Applied:                   cfg.Applied,
		MaxSizePerMsg:             orDefault(cfg.MaxSizePerMsg, DefaultMaxSizePerMsg),
		MaxInflightMsgs:           orDefault(cfg.MaxInflightMsgs, DefaultMaxInflightMsgs),
		MaxUncommittedEntriesSize: orDefault(cfg.MaxUncommittedBytes, DefaultMaxUncommittedBytes),
		// CheckQuorum: a leader cut off from a quorum steps down after an
		// election timeout instead of accepting proposals it cannot commit.
		CheckQuorum: true,
		// PreVote: a node returning from a partition must win a pre-vote
		// before raising its term, so it cannot depose a healthy leader.
		PreVote: true,
		// Proposals are answered by the leader only; a follower fails them
		// fast with the leader's id so the caller goes there.
		DisableProposalForwarding: true,
		Logger:                    cfg.Logger,
	}
	if rc.Logger == nil {
		rc.Logger = discardLogger{}
	}
	c = &Core{id: cfg.ID, self: rc.ID, voters: voters, announced: Leadership{Leader: -1}}
	// raft panics on storage errors and broken invariants; none of it may
	// take the process down.
	err = guard(func() error {
		rn, err := raft.NewRawNode(rc)
		if err != nil {
			return err
		}
		if empty {
			peers := make([]raft.Peer, len(voters))
			for i, v := range voters {
				peers[i] = raft.Peer{ID: v}
			}
			if err := rn.Bootstrap(peers); err != nil {
				return fmt.Errorf("bootstrap: %w", err)
			}
		}
		c.rn = rn
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("quorum: start raft node %d: %w", cfg.ID, err)
	}
	_, cs, err := cfg.Storage.InitialState()
	if err != nil {
		return nil, fmt.Errorf("quorum: read initial state: %w", err)
	}
	c.confState = cs
	c.applied = cfg.Applied
	if cfg.Applied > 0 {
		if c.appliedTerm, err = cfg.Storage.Term(cfg.Applied); err != nil {
			return nil, fmt.Errorf("quorum: term of applied index %d: %w", cfg.Applied, err)
		}
	}
	return c, nil
}

func checkVoters(id int32, voters []int32) ([]uint64, error) {
	if len(voters) == 0 {
		return nil, errors.New("quorum: no voters")
	}
	ids := make([]uint64, 0, len(voters))
	for _, v := range voters {
		if v < 0 {
			return nil, fmt.Errorf("quorum: invalid voter id %d", v)
		}
		ids = append(ids, raftID(v))
	}
	slices.Sort(ids)
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		return nil, fmt.Errorf("quorum: duplicate voter in %v", voters)
	}
	if id < 0 || !slices.Contains(ids, raftID(id)) {
		return nil, fmt.Errorf("quorum: node %d is not one of the voters %v", id, voters)
	}
	return ids, nil
}

func storageIsEmpty(s raft.Storage) (bool, error) {
	hs, _, err := s.InitialState()
	if err != nil {
		return false, err
	}
	last, err := s.LastIndex()
	if err != nil {
		return false, err
	}
	return last == 0 && raft.IsEmptyHardState(hs), nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// guard runs fn, turning a panic (raft's reaction to a storage error or a
// broken invariant) into an error.
func guard(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("raft panicked: %v", r)
		}
	}()
	return fn()
}

// fail makes err the Core's sticky error and returns it.
func (c *Core) fail(err error) error {
	if c.err == nil {
		c.err = fmt.Errorf("%w: %w", ErrCoreFailed, err)
	}
	return c.err
}

// Err returns the error that stopped the Core, if any.
func (c *Core) Err() error { return c.err }

// Tick advances raft's logical clock by one tick.
func (c *Core) Tick() {
	if c.err != nil {
		return
	}
	if err := guard(func() error { c.rn.Tick(); return nil }); err != nil {
		c.fail(err)
	}
}

// Campaign makes this node start an election now (tests and the simulator
// use it to elect a leader without waiting for a randomised timeout).
func (c *Core) Campaign() error {
	if c.err != nil {
		return c.err
	}
	if err := guard(c.rn.Campaign); err != nil {
		return c.fail(err)
	}
	return nil
}

// Step hands a message received from a peer to raft. Messages no peer may
// send are refused with ErrBadMessage and change nothing: one addressed to
// another node, one from a node outside the voters, proposals (forwarding
// is disabled, so a proposal from the network can only be forged — and
// raft would append it, or panic on a malformed configuration change in
// it) and raft's local message types.
func (c *Core) Step(m *pb.Message) error {
	if c.err != nil {
		return c.err
	}
	if m == nil {
		return fmt.Errorf("%w: nil message", ErrBadMessage)
	}
	if m.GetTo() != c.self {
		return fmt.Errorf("%w: addressed to raft id %d, this is %d", ErrBadMessage, m.GetTo(), c.self)
	}
	if from := m.GetFrom(); from == c.self || !slices.Contains(c.voters, from) {
		return fmt.Errorf("%w: from raft id %d, not another voter", ErrBadMessage, from)
	}
	if t := m.GetType(); t == pb.MsgProp || raft.IsLocalMsg(t) {
		return fmt.Errorf("%w: %s may not come from a peer", ErrBadMessage, t)
	}
	err := guard(func() error { return c.rn.Step(m) })
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrStepPeerNotFound):
		// A response from a voter raft does not track yet (it replays its
		// configuration after a restart): harmless, the peer retries.
		return fmt.Errorf("%w: %w", ErrBadMessage, err)
	default:
		return c.fail(err)
	}
}

// Propose appends data (a record batch, opaque here) to the log if this node is the
// leader. The returned id is resolved by a later Ready's Results: with the
// entry's index once it is committed, or with an error. A follower fails
// at once with a *NotLeaderError naming the leader it knows.
func (c *Core) Propose(data []byte) (ProposalID, error) {
	if c.err != nil {
		return ProposalID{}, c.err
	}
	if len(data) == 0 {
		return ProposalID{}, errors.New("quorum: empty proposal")
	}
	if len(data) > MaxProposalBytes {
		return ProposalID{}, fmt.Errorf("quorum: proposal of %d bytes: %w", len(data), ErrTooLarge)
	}
	st := c.rn.BasicStatus()
	if st.RaftState != raft.StateLeader {
		return ProposalID{}, &NotLeaderError{Leader: nodeID(st.Lead)}
	}
	if len(c.pending) >= MaxPendingProposals {
		return ProposalID{}, ErrTooManyPending
	}
	c.nextSeq++
	id := ProposalID{Term: st.HardState.GetTerm(), Seq: c.nextSeq}
	err := guard(func() error { return c.rn.Propose(encodeEntry(id.Seq, data)) })
	switch {
	case err == nil:
		c.pending = append(c.pending, id)
		return id, nil
	case errors.Is(err, raft.ErrProposalDropped):
		return ProposalID{}, fmt.Errorf("%w: %w", ErrProposalDropped, err)
	default:
		return ProposalID{}, c.fail(err)
	}
}

// ReportUnreachable tells raft that a message to node could not be sent,
// so it stops pipelining to it until it answers again.
func (c *Core) ReportUnreachable(node int32) {
	if c.err == nil {
		_ = guard(func() error { c.rn.ReportUnreachable(raftID(node)); return nil })
	}
}

// ReportSnapshot tells raft whether the snapshot message to node was sent.
// raft requires it after every MsgSnap.
func (c *Core) ReportSnapshot(node int32, sent bool) {
	if c.err != nil {
		return
	}
	status := raft.SnapshotFinish
	if !sent {
		status = raft.SnapshotFailure
	}
	_ = guard(func() error { c.rn.ReportSnapshot(raftID(node), status); return nil })
}

// HasReady reports whether Ready has something to hand out.
func (c *Core) HasReady() bool {
	return c.err == nil && !c.inReady && c.rn.HasReady()
}

// Ready returns what to persist, send and apply; see Ready for the order.
// Every Ready must be followed by Advance before the next.
func (c *Core) Ready() (Ready, error) {
	if c.err != nil {
		return Ready{}, c.err
	}
	if c.inReady {
		return Ready{}, errors.New("quorum: Ready called again before Advance")
	}
	var rd raft.Ready
	if err := guard(func() error { rd = c.rn.Ready(); return nil }); err != nil {
		return Ready{}, c.fail(err)
	}
	c.rd, c.inReady = rd, true

	out := Ready{Entries: rd.Entries, MustSync: rd.MustSync, Messages: rd.Messages}
	if !raft.IsEmptyHardState(rd.HardState) {
		out.HardState = rd.HardState
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		out.Snapshot = rd.Snapshot
		// Our proposals of the snapshot's term or earlier may or may not be
		// inside it; the snapshot cannot say.
		meta := rd.Snapshot.GetMetadata()
		out.Results = c.resolveUpTo(out.Results, meta.GetTerm()+1, ErrOutcomeUnknown)
		c.appliedTerm = meta.GetTerm()
	}
	for _, e := range rd.CommittedEntries {
		var seq uint64
		if e.GetType() == pb.EntryNormal && len(e.GetData()) > 0 {
			s, payload, err := decodeEntry(e.GetData())
			if err != nil {
				return Ready{}, c.fail(fmt.Errorf("committed entry %d: %w", e.GetIndex(), err))
			}
			seq = s
			out.Committed = append(out.Committed, Committed{Index: e.GetIndex(), Term: e.GetTerm(), Data: payload})
		}
		out.Results = c.resolve(out.Results, e, seq)
		c.appliedTerm = e.GetTerm()
		out.AppliedIndex = e.GetIndex()
	}
	if l := c.leadership(); l != c.announced {
		c.announced = l
		out.Leadership = &l
	}
	return out, nil
}

// resolve settles the pending proposals that the committed entry e, with
// proposal sequence number seq (0 for none), decides. The log holds a
// leader's entries in proposal order and all entries of a term before any
// of a later term, so once e is committed every pending proposal ordered
// before it that is not e itself never will be.
func (c *Core) resolve(results []Result, e *pb.Entry, seq uint64) []Result {
	results = c.resolveUpTo(results, e.GetTerm(), ErrProposalDropped)
	for len(c.pending) > 0 && c.pending[0].Term == e.GetTerm() && c.pending[0].Seq <= seq {
		p := c.pending[0]
		c.pending = c.pending[1:]
		if p.Seq == seq {
			results = append(results, Result{ID: p, Index: e.GetIndex()})
		} else {
			results = append(results, Result{ID: p, Err: ErrProposalDropped})
		}
	}
	return results
}

// resolveUpTo fails the pending proposals of terms below term with err.
func (c *Core) resolveUpTo(results []Result, term uint64, err error) []Result {
	for len(c.pending) > 0 && c.pending[0].Term < term {
		results = append(results, Result{ID: c.pending[0], Err: err})
		c.pending = c.pending[1:]
	}
	if len(c.pending) == 0 {
		c.pending = c.pending[:0:0] // let the drained array go
	}
	return results
}

// leadership is the leader to announce: raft's leader, except that this
// node is announced only once it has applied an entry of its own term.
func (c *Core) leadership() Leadership {
	st := c.rn.BasicStatus()
	if st.RaftState == raft.StateLeader && c.appliedTerm != st.HardState.GetTerm() {
		return Leadership{Leader: -1, Term: st.HardState.GetTerm()}
	}
	return Leadership{Leader: nodeID(st.Lead), Term: st.HardState.GetTerm()}
}

// Advance tells the Core that the last Ready was carried out. It applies
// the configuration changes among the committed entries to raft.
func (c *Core) Advance() error {
	if c.err != nil {
		return c.err
	}
	if !c.inReady {
		return errors.New("quorum: Advance without Ready")
	}
	rd := c.rd
	c.rd, c.inReady = raft.Ready{}, false
	if !raft.IsEmptySnap(rd.Snapshot) {
		meta := rd.Snapshot.GetMetadata()
		c.confState = meta.GetConfState()
		c.applied = meta.GetIndex()
	}
	for _, e := range rd.CommittedEntries {
		if err := c.applyConfChange(e); err != nil {
			return c.fail(err)
		}
		c.applied = e.GetIndex()
	}
	if err := guard(func() error { c.rn.Advance(rd); return nil }); err != nil {
		return c.fail(err)
	}
	return nil
}

func (c *Core) applyConfChange(e *pb.Entry) error {
	var cc pb.ConfChangeI
	switch e.GetType() {
	case pb.EntryConfChange:
		v := new(pb.ConfChange)
		if err := proto.Unmarshal(e.GetData(), v); err != nil {
			return fmt.Errorf("%w: configuration change at %d: %w", ErrCorruptEntry, e.GetIndex(), err)
		}
		cc = v
	case pb.EntryConfChangeV2:
		v := new(pb.ConfChangeV2)
		if err := proto.Unmarshal(e.GetData(), v); err != nil {
			return fmt.Errorf("%w: configuration change at %d: %w", ErrCorruptEntry, e.GetIndex(), err)
		}
		cc = v
	default:
		return nil
	}
	return guard(func() error {
		c.confState = c.rn.ApplyConfChange(cc)
		return nil
	})
}

// ConfState is the configuration as of the applied index, for
// snapshots. Read-only.
func (c *Core) ConfState() *pb.ConfState { return c.confState }

// Applied is the index of the last entry handed out by an advanced Ready
// (or the snapshot installed, or the configured Applied).
func (c *Core) Applied() uint64 { return c.applied }

// Leader is raft's current leader, -1 when unknown. Unlike
// Ready.Leadership it names this node as soon as it wins an election.
func (c *Core) Leader() int32 { return nodeID(c.rn.BasicStatus().Lead) }

// IsLeader reports whether this node is raft's leader.
func (c *Core) IsLeader() bool { return c.rn.BasicStatus().RaftState == raft.StateLeader }

// CoreStatus is a Core's view of the quorum.
type CoreStatus struct {
	ID      int32
	Term    uint64
	Leader  int32 // -1 when unknown
	Role    string
	Commit  uint64
	Applied uint64
}

// Status returns the Core's state; it does not allocate.
func (c *Core) Status() CoreStatus {
	st := c.rn.BasicStatus()
	return CoreStatus{
		ID:      c.id,
		Term:    st.HardState.GetTerm(),
		Leader:  nodeID(st.Lead),
		Role:    roleName(st.RaftState),
		Commit:  st.HardState.GetCommit(),
		Applied: c.applied,
	}
}

func roleName(s raft.StateType) string {
	switch s {
	case raft.StateLeader:
		return "leader"
	case raft.StateCandidate:
		return "candidate"
	case raft.StatePreCandidate:
		return "pre-candidate"
	default:
		return "follower"
	}
}

// VoterProgress is the leader's view of one voter's log.
type VoterProgress struct {
	ID int32
	// Match is the highest index known to be in the voter's log.
	Match uint64
	// Active reports whether the voter was heard from during the current
	// election timeout.
	Active bool
}

// AppendProgress appends the leader's view of every voter (this node
// included) to dst in id order; on a follower it appends nothing.
func (c *Core) AppendProgress(dst []VoterProgress) []VoterProgress {
	if !c.IsLeader() {
		return dst
	}
	c.rn.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
		if typ == raft.ProgressTypePeer {
			dst = append(dst, VoterProgress{ID: nodeID(id), Match: pr.Match, Active: pr.RecentActive})
		}
	})
	return dst
}

// discardLogger drops raft's log. raft expects Fatal and Panic not to
// return; both panic, and the Core's guard turns that into an error.
type discardLogger struct{}

func (discardLogger) Debug(...any)                   {}
func (discardLogger) Debugf(string, ...any)          {}
func (discardLogger) Info(...any)                    {}
func (discardLogger) Infof(string, ...any)           {}
func (discardLogger) Warning(...any)                 {}
func (discardLogger) Warningf(string, ...any)        {}
func (discardLogger) Error(...any)                   {}
func (discardLogger) Errorf(string, ...any)          {}
func (discardLogger) Fatal(v ...any)                 { panic(fmt.Sprint(v...)) }
func (discardLogger) Fatalf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }
func (discardLogger) Panic(v ...any)                 { panic(fmt.Sprint(v...)) }
func (discardLogger) Panicf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }
