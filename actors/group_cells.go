package actors

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/actors/group"
)

// GroupEnv is what GroupCells need from their host: a clock and one timer
// for all their groups.
type GroupEnv interface {
	// NowMs is the current time in Unix milliseconds.
	NowMs() int64
	// SetTimer sets the one timer: the host calls GroupCells.Tick once at
	// or after atMs, replacing any earlier setting. atMs < 0 cancels it.
	// An early or extra Tick is harmless.
	SetTimer(atMs int64)
}

// GroupCellsConfig is what GroupCells need besides their env.
type GroupCellsConfig struct {
	Settings group.Settings
	// Partitions is the partition count of the offsets topic.
	Partitions int32
	// OffsetsPartition returns this node's cell of the offsets topic's
	// partition p, or nil. Loads read its log; appends are produced to it.
	OffsetsPartition func(p int32) *PartitionCell
	// Topics returns the current metadata as the group cores see it.
	Topics func() group.TopicView
	// NewMemberID draws a member id for a client (nil: random UUIDs from
	// crypto/rand, which a deterministic host must not use; see
	// MemberIDs).
	NewMemberID func(clientID string) string
	// Logger may be nil.
	Logger *slog.Logger
}

// GroupCells are the group coordinators of one node without actors or
// goroutines, for a single-threaded host (the simulator): for every
// partition of the offsets topic that the node leads, the groups replayed
// from the partition's log (Load), each run by the same groupCell the
// daemon's group actors run. A group's records are written to its offsets
// partition's cell as an acks=-1 ProduceRequest; the cell answers when the
// ISR has them, and DeliverAppended feeds the answer back to the group.
//
// GroupCells are not safe for concurrent use. Everything is done in a
// deterministic order (partitions and groups by id, appends in the order
// they were sent), so a seeded host sees the same run every time.
type GroupCells struct {
	cfg         GroupCellsConfig
	env         GroupEnv
	logger      *slog.Logger
	newMemberID func(clientID string) string

	shards map[int32]*cellShard
	// appends are the writes to offsets partitions whose answers have not
	// been delivered, in the order they were sent. Each group has at most
	// one (the core's Append is one at a time).
	appends []cellAppend
	// timerAt is the deadline the env's timer is set for, -1 when none;
	// ticking suppresses arming while Tick walks the groups.
	timerAt int64
	ticking bool
}

// cellShard is the coordinator of one offsets partition.
type cellShard struct {
	partition   int32
	leaderEpoch int32
	// loadErr is why the last load failed (nil: loaded).
	loadErr error
	groups  map[string]*groupCell
}

// cellAppend is one group's write in flight.
type cellAppend struct {
	shard *cellShard
	id    string
	cell  *groupCell
	reply chan ProduceResult
}

// NewGroupCells returns a node's group coordinators, none loaded.
func NewGroupCells(cfg GroupCellsConfig, env GroupEnv) *GroupCells {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ids := cfg.NewMemberID
	if ids == nil {
		ids = newMemberID
	}
	return &GroupCells{cfg: cfg, env: env, logger: logger, newMemberID: ids,
		shards: map[int32]*cellShard{}, timerAt: -1}
}

// Load makes the node the coordinator of offsets partition p at
// leaderEpoch: it replays the partition's cell's log, up to its end, and
// starts every group found. Loading a partition already loaded at the
// same epoch does nothing; at another epoch (or after a failed load) it
// unloads and loads again. If the load fails, the partition's groups are
// answered COORDINATOR_LOAD_IN_PROGRESS until a Load succeeds; the error
// says why.
func (g *GroupCells) Load(p int32, leaderEpoch int32) error {
	if s := g.shards[p]; s != nil {
		if s.leaderEpoch == leaderEpoch && s.loadErr == nil {
			return nil
		}
		g.Unload(p)
	}
	s := &cellShard{partition: p, leaderEpoch: leaderEpoch, groups: map[string]*groupCell{}}
	g.shards[p] = s
	part := g.cfg.OffsetsPartition(p)
	if part == nil {
		s.loadErr = fmt.Errorf("load offsets partition %d: not running here", p)
		return s.loadErr
	}
	loaded, err := replayOffsets(context.Background(), cellReader{part}, p, g.logger)
	if err != nil {
		s.loadErr = fmt.Errorf("load offsets partition %d: %w", p, err)
		return s.loadErr
	}
	now := g.env.NowMs()
	for _, id := range slices.Sorted(maps.Keys(loaded)) {
		gc := newGroupCell(id, g.cfg.Settings, loaded[id], now)
		s.groups[id] = gc
		g.settle(s, id, gc)
	}
	g.logger.Debug("coordinating groups", "partition", p, "leader_epoch", leaderEpoch, "groups", len(loaded))
	return nil
}

// Unload stops coordinating the groups of offsets partition p (its
// leadership moved): callers still waiting are answered NOT_COORDINATOR,
// and answers to writes in flight are dropped.
func (g *GroupCells) Unload(p int32) {
	s := g.shards[p]
	if s == nil {
		return
	}
	delete(g.shards, p)
	for _, id := range slices.Sorted(maps.Keys(s.groups)) {
		s.groups[id].stop()
	}
	s.groups = nil
}

// Loaded reports whether offsets partition p is loaded.
func (g *GroupCells) Loaded(p int32) bool {
	s := g.shards[p]
	return s != nil && s.loadErr == nil
}

// Close unloads every partition.
func (g *GroupCells) Close() {
	for _, p := range slices.Sorted(maps.Keys(g.shards)) {
		g.Unload(p)
	}
	g.appends = nil
	g.env.SetTimer(-1)
}

// Handle routes r to group groupID's coordinator, starting the group if
// it has none, and steps it; the reply goes to r.Reply, now or in a later
// call. It returns an error wrapping the Kafka error (as Groups.Group
// does) without answering r when this node cannot take the request:
// COORDINATOR_NOT_AVAILABLE without an offsets topic, NOT_COORDINATOR if
// the group's offsets partition is not loaded here,
// COORDINATOR_LOAD_IN_PROGRESS if its load failed.
func (g *GroupCells) Handle(groupID string, r GroupRequest) error {
	if g.cfg.Partitions <= 0 {
		return fmt.Errorf("no offsets topic: %w", kerr.CoordinatorNotAvailable)
	}
	p := group.PartitionFor(groupID, g.cfg.Partitions)
	s := g.shards[p]
	switch {
	case s == nil:
		return fmt.Errorf("group %q is coordinated by the leader of offsets partition %d: %w", groupID, p, kerr.NotCoordinator)
	case s.loadErr != nil:
		return fmt.Errorf("offsets partition %d failed to load (%v): %w", p, s.loadErr, kerr.CoordinatorLoadInProgress)
	}
	now := g.env.NowMs()
	gc := s.groups[groupID]
	if gc == nil {
		// Settled only with the request in: a fresh core is dead, and
		// retiring it before it took the request would lose the request.
		gc = newGroupCell(groupID, g.cfg.Settings, nil, now)
		s.groups[groupID] = gc
	}
	var topics group.TopicView
	if g.cfg.Topics != nil {
		topics = g.cfg.Topics()
	}
	gc.request(&r, now, g.newMemberID(r.Req.ClientID), topics)
	g.settle(s, groupID, gc)
	return nil
}

// DeliverAppended feeds every group whose write to its offsets partition
// was answered since the last call the outcome, in the order the writes
// were sent, and reports how many it delivered. A host calls it after
// anything that may have answered a produce of an offsets partition's
// cell (a follower's fetch moving the high watermark, an fsync, a tick,
// a role change).
func (g *GroupCells) DeliverAppended() int {
	inFlight := g.appends
	g.appends = nil
	var waiting []cellAppend
	n := 0
	for _, a := range inFlight {
		var res ProduceResult
		select {
		case res = <-a.reply:
		default:
			waiting = append(waiting, a)
			continue
		}
		if g.shards[a.shard.partition] != a.shard || a.shard.groups[a.id] != a.cell {
			continue // unloaded meanwhile
		}
		n++
		a.cell.appended(g.env.NowMs(), res.ErrorCode)
		g.settle(a.shard, a.id, a.cell)
	}
	// Writes sent while delivering go after the ones still waiting.
	g.appends = append(waiting, g.appends...)
	return n
}

// Tick runs the timers of every group whose deadline has come (session,
// rebalance and join deadlines, offset expiry), then sets the env's timer
// for the next deadline.
func (g *GroupCells) Tick() {
	now := g.env.NowMs()
	g.timerAt = -1
	g.ticking = true
	for _, p := range slices.Sorted(maps.Keys(g.shards)) {
		s := g.shards[p]
		for _, id := range slices.Sorted(maps.Keys(s.groups)) {
			gc := s.groups[id]
			if gc == nil {
				continue
			}
			if next := gc.core.NextTickMs(); next >= 0 && next <= now {
				gc.tick(now)
				g.settle(s, id, gc)
			}
		}
	}
	g.ticking = false
	if next := g.NextTickMs(); next >= 0 {
		g.timerAt = next
		g.env.SetTimer(next)
	}
}

// NextTickMs is the earliest deadline of any group, or -1.
func (g *GroupCells) NextTickMs() int64 {
	next := int64(-1)
	for _, s := range g.shards {
		for _, gc := range s.groups {
			if t := gc.core.NextTickMs(); t >= 0 && (next < 0 || t < next) {
				next = t
			}
		}
	}
	return next
}

// List summarises every live group this node coordinates, sorted by id.
func (g *GroupCells) List() []group.Summary {
	var out []group.Summary
	for _, s := range g.shards {
		for _, gc := range s.groups {
			if sum := gc.core.Summary(); sum.State != "Dead" {
				out = append(out, sum)
			}
		}
	}
	slices.SortFunc(out, func(a, b group.Summary) int {
		switch {
		case a.GroupID < b.GroupID:
			return -1
		case a.GroupID > b.GroupID:
			return 1
		}
		return 0
	})
	return out
}

// settle finishes every step of group id: replies out, its records (if
// any) produced to the offsets partition, the timer kept for its next
// deadline, and the group dropped once it holds nothing (its next request
// starts a fresh one, as the daemon retires a group's actor).
func (g *GroupCells) settle(s *cellShard, id string, gc *groupCell) {
	if ap := gc.settle(); ap != nil {
		g.append(s, id, gc, ap)
	}
	if next := gc.core.NextTickMs(); next >= 0 && !g.ticking && (g.timerAt < 0 || next < g.timerAt) {
		g.timerAt = next
		g.env.SetTimer(next)
	}
	if gc.retirable() {
		delete(s.groups, id)
	}
}

// append produces ap to the group's offsets partition; the answer waits
// in the reply channel for DeliverAppended. Failures to send it are
// answered the same way, never re-entering the group.
func (g *GroupCells) append(s *cellShard, id string, gc *groupCell, ap *group.Append) {
	reply := make(chan ProduceResult, 1)
	g.appends = append(g.appends, cellAppend{shard: s, id: id, cell: gc, reply: reply})
	part := g.cfg.OffsetsPartition(s.partition)
	if part == nil {
		g.logger.Warn("cannot persist group records", "group", id, "err", errAppendNoPartition)
		reply <- ProduceResult{ErrorCode: kerr.NotLeaderForPartition.Code}
		return
	}
	req, code := groupAppendRequest(ap, part.BatchOptions(), g.env.NowMs(), g.logger.With("group", id))
	if code != 0 {
		reply <- ProduceResult{ErrorCode: code}
		return
	}
	req.Reply = reply
	if !part.Handle(&req) {
		reply <- ProduceResult{ErrorCode: kerr.NotLeaderForPartition.Code} // a closed cell
	}
}
