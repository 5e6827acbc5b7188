package sim

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/actors"
	"github.com/troupe-io/troupe/actors/group"
	"github.com/troupe-io/troupe/metadata"
	"github.com/troupe-io/troupe/sim/sched"
)

// groupsHost hosts a process's group coordinators (actors.GroupCells,
// the daemon's group actors without protoactor) for the offsets
// partitions the process leads.
type groupsHost struct {
	p      *process
	cells  *actors.GroupCells
	parts  int32
	loaded map[int32]int32 // offsets partition -> leader epoch loaded
	timer  *sched.Event
}

func newGroupsHost(p *process) *groupsHost { return &groupsHost{p: p, loaded: map[int32]int32{}} }

// GroupEnv.
func (g *groupsHost) NowMs() int64 { return g.p.n.nowMs() }

func (g *groupsHost) SetTimer(atMs int64) {
	g.timer = g.p.resetTimer(g.timer, atMs, func() {
		if g.cells != nil {
			g.cells.Tick()
		}
	})
}

// reconcile loads the offsets partitions this process leads and unloads
// the others, as the daemon's reconcileGroups does.
func (g *groupsHost) reconcile(img *metadata.Image) {
	p := g.p
	t := img.Topic(offsetsTopic)
	if t == nil {
		return
	}
	if g.cells == nil {
		g.parts = int32(len(t.Partitions))
		w := p.n.w
		g.cells = actors.NewGroupCells(actors.GroupCellsConfig{
			Settings: group.Settings{
				MinSessionTimeoutMs: 1000, MaxSessionTimeoutMs: 30000, MaxSize: 100,
				OffsetsRetentionMs: 7 * 24 * 3600 * 1000, OffsetsRetentionCheckMs: 600_000, OffsetMetadataMaxBytes: 4096,
				ConsumerSessionTimeoutMs: 3000, ConsumerHeartbeatIntervalMs: 500, ConsumerAssignors: []string{"uniform", "range"},
				ConsumerMaxSize: 100,
			},
			Partitions: g.parts,
			OffsetsPartition: func(part int32) *actors.PartitionCell {
				if r := p.replicas[partlogID(offsetsTopic, part)]; r != nil && !r.closed {
					return r.cell
				}
				return nil
			},
			Topics:      func() group.TopicView { return p.ctrl.Image().TopicIndex() },
			NewMemberID: actors.MemberIDs(func() uint64 { return w.s.Rand().Uint64() }),
			Logger:      p.logger,
		}, g)
	}
	for part := range g.parts {
		if int(part) >= len(t.Partitions) {
			break
		}
		mp := t.Partitions[part]
		epoch, loaded := g.loaded[part]
		switch {
		case mp.Leader == p.n.id && (!loaded || epoch != mp.LeaderEpoch):
			if err := g.cells.Load(part, mp.LeaderEpoch); err != nil {
				p.logger.Debug("load offsets partition", "partition", part, "err", err)
				delete(g.loaded, part)
				p.after(200*sched.Millisecond, p.reconcileSoon)
				continue
			}
			g.loaded[part] = mp.LeaderEpoch
			p.n.w.s.Tracef("node %d coordinates offsets partition %d epoch %d", p.n.id, part, mp.LeaderEpoch)
		case mp.Leader != p.n.id && loaded:
			g.cells.Unload(part)
			delete(g.loaded, part)
		}
	}
}

// check says whether this process coordinates the group now.
func (g *groupsHost) check(id string) error {
	if g.cells == nil || g.parts <= 0 {
		return fmt.Errorf("no offsets topic here: %w", kerr.CoordinatorNotAvailable)
	}
	if !g.cells.Loaded(group.PartitionFor(id, g.parts)) {
		return fmt.Errorf("group %q is coordinated elsewhere: %w", id, kerr.NotCoordinator)
	}
	return nil
}

// handle steps the group's cell with a request. A request that can no
// longer be taken (its partition moved away since the handler asked)
// goes unanswered; the client times out and asks again, as after a lost
// connection.
func (g *groupsHost) handle(id string, r actors.GroupRequest) {
	if g.cells == nil {
		return
	}
	if err := g.cells.Handle(id, r); err != nil {
		g.p.logger.Debug("group request not taken", "group", id, "err", err)
	}
	g.deliver()
}

// deliver feeds the groups the answers of their offsets writes.
func (g *groupsHost) deliver() {
	if g.cells == nil {
		return
	}
	for g.cells.DeliverAppended() > 0 {
	}
}

func (g *groupsHost) list() []group.Summary {
	if g.cells == nil {
		return nil
	}
	return g.cells.List()
}

// kill drops the coordinators with their process.
func (g *groupsHost) kill() {
	g.timer.Cancel()
	g.cells = nil
}
