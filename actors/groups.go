package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/actors/group"
)

// groupMailboxSize bounds a group actor's mailbox. A group's requests come
// from its members (a few each at most: a join or sync parked, a
// heartbeat, a commit), so this is plenty; a full mailbox blocks the
// sending connection, which is the backpressure we want.
const groupMailboxSize = 256

// GroupsConfig is what the group coordinators of a node need.
type GroupsConfig struct {
	Settings group.Settings
	// Partitions is the partition count of the offsets topic.
	Partitions int32
	// OffsetsPartition returns this node's actor of the offsets topic's
	// partition p, or nil.
	OffsetsPartition func(p int32) *Partition
	// Topics returns the current metadata as the group cores see it.
	Topics func() group.TopicView
	// NewMemberID draws a member id for a client (nil: random UUIDs from
	// crypto/rand, see MemberIDs).
	NewMemberID func(clientID string) string
	// Logger (nil: the host's).
	Logger *slog.Logger
}

// Groups hosts the group coordinator actors of one node: for every
// partition of the offsets topic that this node leads, it reads the
// partition (Load) and runs one actor per group that hashes to it.
type Groups struct {
	system *actor.ActorSystem
	cfg    GroupsConfig
	clock  func() time.Time
	logger *slog.Logger
	// newMemberID draws member ids (GroupsConfig.NewMemberID).
	newMemberID func(clientID string) string

	mu     sync.Mutex
	shards map[int32]*groupShard
	closed bool
}

// groupShard is the coordinator of one offsets partition.
type groupShard struct {
	partition   int32
	leaderEpoch int32
	cancel      context.CancelFunc
	loaded      chan struct{} // closed when the load finished (ok or not)
	loadErr     error

	// mu guards groups; every Send to a group actor happens under it, so
	// that retiring an actor (under mu) cannot lose a message sent to it.
	mu     sync.Mutex
	groups map[string]*groupActorRef
	ready  bool // loaded and not unloaded
}

// failed reports whether the shard's load ended in an error.
func (s *groupShard) failed() bool {
	select {
	case <-s.loaded:
		return s.loadErr != nil
	default:
		return false
	}
}

type groupActorRef struct {
	pid   *actor.PID
	actor *groupActor
}

// NewGroups returns a node's group coordinators, hosted on h's actor
// system.
func NewGroups(h *Host, cfg GroupsConfig) *Groups {
	logger := cfg.Logger
	if logger == nil {
		logger = h.logger
	}
	ids := cfg.NewMemberID
	if ids == nil {
		ids = newMemberID
	}
	return &Groups{system: h.system, cfg: cfg, clock: h.clock, logger: logger, newMemberID: ids,
		shards: map[int32]*groupShard{}}
}

// Load makes this node the coordinator of offsets partition p at
// leaderEpoch: it reads the partition in the background and then starts
// an actor for every group found. Requests for its groups meanwhile get
// COORDINATOR_LOAD_IN_PROGRESS. Loading a partition already loaded at the
// same epoch does nothing.
func (g *Groups) Load(p int32, leaderEpoch int32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	if s := g.shards[p]; s != nil {
		if s.leaderEpoch == leaderEpoch && !s.failed() {
			return
		}
		// A new epoch, or a load that failed: (re)load.
		g.unloadLocked(p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &groupShard{partition: p, leaderEpoch: leaderEpoch, cancel: cancel, loaded: make(chan struct{}),
		groups: map[string]*groupActorRef{}}
	g.shards[p] = s
	go g.load(ctx, s)
}

// reloadFailed loads offsets partition p again if s, whose load failed,
// is still its shard (leadership has not moved meanwhile).
func (g *Groups) reloadFailed(p int32, s *groupShard) {
	g.mu.Lock()
	same := g.shards[p] == s
	g.mu.Unlock()
	if same {
		g.Load(p, s.leaderEpoch)
	}
}

// Unload stops coordinating the groups of offsets partition p (its
// leadership moved). Parked requests are answered with NOT_COORDINATOR.
func (g *Groups) Unload(p int32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.unloadLocked(p)
}

func (g *Groups) unloadLocked(p int32) {
	s := g.shards[p]
	if s == nil {
		return
	}
	delete(g.shards, p)
	s.cancel()
	<-s.loaded
	s.mu.Lock()
	s.ready = false
	refs := s.groups
	s.groups = map[string]*groupActorRef{}
	s.mu.Unlock()
	for _, r := range refs {
		_ = g.system.Root.PoisonFuture(r.pid).Wait()
	}
}

// Close stops every group actor.
func (g *Groups) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for p := range g.shards {
		g.unloadLocked(p)
	}
}

// Loaded reports whether offsets partition p is loaded (tests).
func (g *Groups) Loaded(p int32) bool {
	g.mu.Lock()
	s := g.shards[p]
	g.mu.Unlock()
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready
}

// load reads the whole offsets partition and starts the groups in it.
func (g *Groups) load(ctx context.Context, s *groupShard) {
	defer close(s.loaded)
	started := g.clock()
	groups, err := g.readPartition(ctx, s.partition)
	if err != nil {
		s.loadErr = err
		if ctx.Err() == nil {
			g.logger.Error("load offsets partition", "partition", s.partition, "err", err)
		}
		return
	}
	now := g.clock().UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	for id, l := range groups {
		s.groups[id] = g.spawn(s, id, l, now)
	}
	s.ready = true
	level := slog.LevelInfo
	if len(groups) == 0 {
		level = slog.LevelDebug // an empty partition is not news; 50 of them at start-up are noise
	}
	g.logger.Log(ctx, level, "coordinating groups", "partition", s.partition, "leader_epoch", s.leaderEpoch,
		"groups", len(groups), "took", g.clock().Sub(started).Round(time.Microsecond).String())
}

// readPartition replays offsets partition p from its start to its log
// end (see replayOffsets), once its partition actor runs.
func (g *Groups) readPartition(ctx context.Context, p int32) (map[string]*group.Loaded, error) {
	var part *Partition
	// The partition actor may start just after the metadata said this
	// node leads it; wait for it a little.
	for i := 0; part == nil; i++ {
		if part = g.cfg.OffsetsPartition(p); part != nil {
			break
		}
		if i == 100 {
			return nil, fmt.Errorf("offsets partition %d is not running here", p)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return replayOffsets(ctx, part, p, g.logger)
}

// spawn starts the actor of group id. Called with s.mu held.
func (g *Groups) spawn(s *groupShard, id string, loaded *group.Loaded, nowMs int64) *groupActorRef {
	a := &groupActor{
		groups: g, shard: s, cell: newGroupCell(id, g.cfg.Settings, loaded, nowMs), clock: g.clock,
		logger: g.logger.With("group", id), root: g.system.Root, timerAt: -1,
	}
	props := actor.PropsFromProducer(func() actor.Actor { return a }, actor.WithMailbox(actor.Bounded(groupMailboxSize)))
	pid := g.system.Root.Spawn(props)
	return &groupActorRef{pid: pid, actor: a}
}

// Group returns the handle of group id's coordinator on this node, or an
// error wrapping NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS.
func (g *Groups) Group(id string) (*GroupHandle, error) {
	if g.cfg.Partitions <= 0 {
		return nil, fmt.Errorf("no offsets topic: %w", kerr.CoordinatorNotAvailable)
	}
	p := group.PartitionFor(id, g.cfg.Partitions)
	g.mu.Lock()
	s := g.shards[p]
	g.mu.Unlock()
	if s == nil {
		return nil, fmt.Errorf("group %q is coordinated by the leader of offsets partition %d: %w", id, p, kerr.NotCoordinator)
	}
	s.mu.Lock()
	ready := s.ready
	s.mu.Unlock()
	if !ready {
		select {
		case <-s.loaded:
			if s.loadErr != nil {
				// Try again; the client retries meanwhile.
				go g.reloadFailed(p, s)
				return nil, fmt.Errorf("offsets partition %d failed to load (%v); loading it again: %w", p, s.loadErr, kerr.CoordinatorLoadInProgress)
			}
			s.mu.Lock()
			ready = s.ready // the load may have finished just now
			s.mu.Unlock()
			if !ready {
				return nil, fmt.Errorf("offsets partition %d is unloaded: %w", p, kerr.NotCoordinator)
			}
		default:
			return nil, fmt.Errorf("offsets partition %d is loading: %w", p, kerr.CoordinatorLoadInProgress)
		}
	}
	return &GroupHandle{g: g, s: s, id: id}, nil
}

// List summarises every group this node coordinates, sorted by id.
func (g *Groups) List() []group.Summary {
	g.mu.Lock()
	shards := make([]*groupShard, 0, len(g.shards))
	for _, s := range g.shards {
		shards = append(shards, s)
	}
	g.mu.Unlock()
	var out []group.Summary
	for _, s := range shards {
		s.mu.Lock()
		for _, r := range s.groups {
			if sum := r.actor.summary.Load(); sum != nil && sum.State != "Dead" {
				out = append(out, *sum)
			}
		}
		s.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GroupID < out[j].GroupID })
	return out
}

// GroupHandle reaches one group's coordinator actor (it implements
// wire.Group).
type GroupHandle struct {
	g  *Groups
	s  *groupShard
	id string
}

// Send enqueues r for the group's actor, starting the actor if the group
// has none. If the partition was unloaded meanwhile, r is answered at once
// with NOT_COORDINATOR.
func (h *GroupHandle) Send(r GroupRequest) {
	s := h.s
	s.mu.Lock()
	if !s.ready {
		s.mu.Unlock()
		r.Reply <- group.Reply{Tag: r.Req.Tag, Resp: errorReply(r.Req.Req, kerr.NotCoordinator.Code)}
		return
	}
	ref := s.groups[h.id]
	if ref == nil {
		ref = h.g.spawn(s, h.id, nil, h.g.clock().UnixMilli())
		s.groups[h.id] = ref
	}
	h.g.system.Root.Send(ref.pid, &r)
	s.mu.Unlock()
}

// retire stops the actor of a group that has nothing left (no members,
// no offsets), after checking under the shard lock — which keeps new
// requests out — that it is still so. Its next request starts a fresh
// actor.
func (g *Groups) retire(s *groupShard, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref := s.groups[id]
	if ref == nil {
		return
	}
	res, err := g.system.Root.RequestFuture(ref.pid, retireGroup{}, 10*time.Second).Result()
	if err != nil || res != true {
		return
	}
	delete(s.groups, id)
	g.system.Root.Stop(ref.pid)
}

// errAppendNoPartition is logged when the offsets partition is gone.
var errAppendNoPartition = errors.New("offsets partition not running here")
