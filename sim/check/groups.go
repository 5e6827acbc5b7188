package check

import (
	"cmp"
	"slices"
	"sort"
)

// maxGenerations bounds the assignments kept per group. Reports about a
// generation this far behind the newest do not arrive in practice; if one
// does, it is checked against an empty slate, which can miss a violation
// but never invents one.
const maxGenerations = 256

// maxCommitPoints bounds each (group, partition) commit history; see
// commitHistory.
const maxCommitPoints = 1024

type groupState struct {
	gens    map[genKey]*genState
	commits map[TP]*commitHistory
}

// genKey is one generation of a group as one coordinator saw it: the
// coordinator's leader epoch of the group's offsets partition tells two
// coordinators (a stale one and its successor) apart.
type genKey struct {
	coordinatorEpoch int32
	generation       int32
}

func compareGenKey(a, b genKey) int {
	if c := cmp.Compare(a.coordinatorEpoch, b.coordinatorEpoch); c != 0 {
		return c
	}
	return cmp.Compare(a.generation, b.generation)
}

type genState struct {
	// owner and parts are inverse: owner[tp].member == m iff tp is in
	// parts[m] (unless tp was flagged as already owned by another member).
	owner map[TP]owner
	parts map[string][]TP
}

// owner is who holds a partition in a generation, and which coordinator
// node said so (for details).
type owner struct {
	member      string
	coordinator int32
}

func (c *Checker) group(name string) *groupState {
	g := c.groups[name]
	if g == nil {
		g = &groupState{gens: make(map[genKey]*genState), commits: make(map[TP]*commitHistory)}
		c.groups[name] = g
	}
	return g
}

// Assignment observes that the coordinator on node coordinator, serving
// the group's offsets partition in leader epoch coordinatorEpoch, gave
// member the partitions parts in generation. Within one (group,
// coordinatorEpoch, generation) no partition may belong to two members.
// A later assignment to the same member in the same generation replaces
// its earlier one (the member gave up what is no longer listed).
func (c *Checker) Assignment(group string, coordinator, coordinatorEpoch, generation int32, member string, parts []TP) {
	c.observations++
	g := c.group(group)
	k := genKey{coordinatorEpoch: coordinatorEpoch, generation: generation}
	gs := g.gens[k]
	if gs == nil {
		if len(g.gens) >= maxGenerations {
			c.evictOldestGeneration(g)
		}
		gs = &genState{owner: make(map[TP]owner), parts: make(map[string][]TP)}
		g.gens[k] = gs
	}
	for _, tp := range gs.parts[member] {
		if gs.owner[tp].member == member {
			delete(gs.owner, tp)
		}
	}
	for _, tp := range parts {
		c.checked[chkDoubleOwnership]++
		if other, ok := gs.owner[tp]; ok && other.member != member {
			c.flag(chkDoubleOwnership, "group %s coordinator epoch %d generation %d: %s assigned to %s (by node %d) and %s (by node %d)",
				group, coordinatorEpoch, generation, tp, other.member, other.coordinator, member, coordinator)
			continue
		}
		gs.owner[tp] = owner{member: member, coordinator: coordinator}
	}
	gs.parts[member] = slices.Clone(parts)
}

func (c *Checker) evictOldestGeneration(g *groupState) {
	first := true
	var oldest genKey
	for k := range g.gens {
		if first || compareGenKey(k, oldest) < 0 {
			oldest, first = k, false
		}
	}
	delete(g.gens, oldest)
}

// commitPoint says: every commit acknowledged at or before seq committed
// at most max, and the commit at seq committed exactly max.
type commitPoint struct {
	seq uint64
	max int64
}

// commitHistory answers "the highest offset acknowledged at or before
// seq" for one (group, partition). It keeps only the points where that
// maximum rises (both seq and max strictly increase along points). When
// full, the older half is folded into floor: every commit up to floorSeq
// committed at most floorMax, which still answers exactly for any seq at
// or after floorSeq; older questions are left unchecked, not guessed.
type commitHistory struct {
	floorSeq uint64
	floorMax int64
	points   []commitPoint
}

func (g *groupState) history(tp TP) *commitHistory {
	h := g.commits[tp]
	if h == nil {
		h = &commitHistory{floorMax: -1}
		g.commits[tp] = h
	}
	return h
}

func (h *commitHistory) add(seq uint64, offset int64) {
	if seq <= h.floorSeq {
		// Reported out of order into the folded past: raising the floor
		// is still exact for every seq the floor answers.
		if offset > h.floorMax {
			h.floorMax = offset
		}
		i := 0
		for i < len(h.points) && h.points[i].max <= h.floorMax {
			i++
		}
		h.points = slices.Delete(h.points, 0, i)
		return
	}
	i := sort.Search(len(h.points), func(i int) bool { return h.points[i].seq > seq })
	if offset <= h.maxBefore(i) {
		return
	}
	if i > 0 && h.points[i-1].seq == seq {
		i-- // a second commit at one seq: the higher one stands for both
	}
	j := i
	for j < len(h.points) && h.points[j].max <= offset {
		j++
	}
	h.points = slices.Replace(h.points, i, j, commitPoint{seq: seq, max: offset})
	if len(h.points) > maxCommitPoints {
		half := len(h.points) / 2
		h.floorSeq, h.floorMax = h.points[half-1].seq, h.points[half-1].max
		h.points = append(h.points[:0], h.points[half:]...)
	}
}

// maxBefore is the highest offset committed at the points before index i.
func (h *commitHistory) maxBefore(i int) int64 {
	if i == 0 {
		return h.floorMax
	}
	return h.points[i-1].max
}

// atOrBefore returns the highest offset acknowledged at or before seq;
// ok is false when the history no longer knows.
func (h *commitHistory) atOrBefore(seq uint64) (max int64, ok bool) {
	if seq < h.floorSeq {
		return 0, false
	}
	i := sort.Search(len(h.points), func(i int) bool { return h.points[i].seq > seq })
	return h.maxBefore(i), true
}

// CommitAcked observes that an OffsetCommit of offset for tp in group was
// acknowledged, at sequence seq (see Seq for the clock).
func (c *Checker) CommitAcked(group string, tp TP, offset int64, seq uint64) {
	c.observations++
	if offset < -1 || offset > maxOffset {
		c.flag(chkInvalid, "group %s %s commit of offset %d", group, tp, offset)
		return
	}
	c.group(group).history(tp).add(seq, offset)
}

// CommitFetched observes that an OffsetFetch for tp in group, sent after
// sequence sentAfterSeq, returned offset (-1: none). It must be at least
// the highest commit acknowledged at or before sentAfterSeq: our
// consumers never lower their commits, so anything less is a committed
// offset lost.
func (c *Checker) CommitFetched(group string, tp TP, offset int64, sentAfterSeq uint64) {
	c.observations++
	g := c.groups[group]
	if g == nil {
		return
	}
	h := g.commits[tp]
	if h == nil {
		return
	}
	want, ok := h.atOrBefore(sentAfterSeq)
	if !ok {
		c.uncheckedFetches++
		return
	}
	c.checked[chkCommitRegress]++
	if offset < want {
		c.flag(chkCommitRegress, "group %s %s: fetched committed offset %d, but %d was acknowledged before the fetch (seq %d)",
			group, tp, offset, want, sentAfterSeq)
	}
}

// CommitsDeleted forgets group's committed offsets: an admin DeleteGroups
// or OffsetDelete may legitimately make them vanish. Call it when such a
// request is sent and again when it is answered, so that commits
// acknowledged while it was in flight are forgotten too.
func (c *Checker) CommitsDeleted(group string) {
	c.observations++
	if g := c.groups[group]; g != nil {
		clear(g.commits)
	}
}
