package group

import (
	"bytes"
	"slices"
	"strings"
)

// Server-side assignors of KIP-848 consumer groups.
//
// An assignor maps the group's members and the topics they subscribe to
// onto a target assignment. Both are pure functions: they sort what they
// are given, never let map iteration order reach their result, and so
// return the same assignment for the same group whatever order the
// members and topics arrive in. That is what lets the daemon and the
// simulator agree, and a restarted coordinator recompute what its
// predecessor handed out.

// assignment is a member's partitions by topic id. Invariant: every list
// is sorted ascending and free of duplicates.
type assignment map[[16]byte][]int32

// assignTopic is a topic an assignor may hand out.
type assignTopic struct {
	name       string
	id         [16]byte
	partitions int32
}

// assignMember is a member as an assignor sees it.
type assignMember struct {
	id string
	// topics are the names the member subscribes to; names missing from
	// the topics given to the assignor are ignored.
	topics []string
	// current is the member's previous target assignment, which the
	// uniform assignor keeps where balance allows (stickiness).
	current assignment
}

// assignorFunc computes a target assignment: one entry per member id, a
// member with nothing assigned gets an empty assignment.
type assignorFunc func(topics []assignTopic, members []assignMember) map[string]assignment

// serverAssignors are the assignors KIP-848 groups may pick
// (group.consumer.assignors), by the names clients send in
// ConsumerGroupHeartbeat.ServerAssignor.
var serverAssignors = map[string]assignorFunc{
	"uniform": assignUniform,
	"range":   assignRange,
}

// maxBalancePasses bounds the uniform assignor's rebalancing sweeps over
// heterogeneous subscriptions. Every move strictly lowers the sum of
// squared member loads, so the sweeps end on their own; the bound only
// caps the time a pathological group may take, at the price of a less
// even (still valid) assignment.
const maxBalancePasses = 64

// assignProblem is the assignors' shared view of their inputs, with
// topics and members in canonical (sorted) order and every partition
// numbered globally: partition p of topics[t] is base[t]+p.
type assignProblem struct {
	topics  []assignTopic  // sorted by name, unique
	members []assignMember // sorted by id, unique
	base    []int          // per topic: global number of its partition 0
	total   int            // partitions in all topics
	// subs are, per member, the indexes of the topics it subscribes to,
	// sorted; subscribers are, per topic, the indexes of its members,
	// sorted.
	subs        [][]int
	subscribers [][]int
	topicOf     []int   // per global partition: its topic index
	owner       []int32 // per global partition: member index, or -1
	count       []int   // per member: partitions owned
}

func newAssignProblem(topics []assignTopic, members []assignMember) *assignProblem {
	ts := slices.Clone(topics)
	slices.SortStableFunc(ts, func(a, b assignTopic) int { return strings.Compare(a.name, b.name) })
	ts = slices.CompactFunc(ts, func(a, b assignTopic) bool { return a.name == b.name })
	ms := slices.Clone(members)
	slices.SortStableFunc(ms, func(a, b assignMember) int { return strings.Compare(a.id, b.id) })
	ms = slices.CompactFunc(ms, func(a, b assignMember) bool { return a.id == b.id })

	pr := &assignProblem{topics: ts, members: ms}
	byName := make(map[string]int, len(ts))
	pr.base = make([]int, len(ts))
	for i, t := range ts {
		byName[t.name] = i
		pr.base[i] = pr.total
		pr.total += int(max(t.partitions, 0))
	}
	pr.topicOf = make([]int, pr.total)
	for i, t := range ts {
		for p := range int(max(t.partitions, 0)) {
			pr.topicOf[pr.base[i]+p] = i
		}
	}
	pr.subs = make([][]int, len(ms))
	pr.subscribers = make([][]int, len(ts))
	for mi, m := range ms {
		var sub []int
		for _, name := range m.topics {
			if ti, ok := byName[name]; ok {
				sub = append(sub, ti)
			}
		}
		slices.Sort(sub)
		sub = slices.Compact(sub)
		pr.subs[mi] = sub
		for _, ti := range sub {
			pr.subscribers[ti] = append(pr.subscribers[ti], mi)
		}
	}
	pr.owner = make([]int32, pr.total)
	for i := range pr.owner {
		pr.owner[i] = -1
	}
	pr.count = make([]int, len(ms))
	return pr
}

// subscribes reports whether member mi subscribes to topic ti.
func (pr *assignProblem) subscribes(mi, ti int) bool {
	_, ok := slices.BinarySearch(pr.subs[mi], ti)
	return ok
}

// current returns member mi's previous partitions that it may still own
// (the topic exists, it still subscribes to it, the partition exists),
// as global numbers in ascending order.
func (pr *assignProblem) current(mi int) []int {
	m := pr.members[mi]
	if len(m.current) == 0 {
		return nil
	}
	var out []int
	for ti, t := range pr.topics {
		ps, ok := m.current[t.id]
		if !ok || !pr.subscribes(mi, ti) {
			continue
		}
		for _, p := range ps {
			if p >= 0 && p < t.partitions {
				out = append(out, pr.base[ti]+int(p))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (pr *assignProblem) give(g, mi int) {
	if o := pr.owner[g]; o >= 0 {
		pr.count[o]--
	}
	pr.owner[g] = int32(mi)
	pr.count[mi]++
}

// result turns the owner table into one assignment per member.
func (pr *assignProblem) result() map[string]assignment {
	out := make(map[string]assignment, len(pr.members))
	for _, m := range pr.members {
		out[m.id] = assignment{}
	}
	for ti, t := range pr.topics {
		for p := range int(max(t.partitions, 0)) {
			o := pr.owner[pr.base[ti]+p]
			if o < 0 {
				continue
			}
			a := out[pr.members[o].id]
			a[t.id] = append(a[t.id], int32(p))
		}
	}
	return out
}

// homogeneous reports whether every member subscribes to the same
// topics.
func (pr *assignProblem) homogeneous() bool {
	for mi := 1; mi < len(pr.subs); mi++ {
		if !slices.Equal(pr.subs[mi], pr.subs[0]) {
			return false
		}
	}
	return true
}

// assignUniform spreads all subscribed partitions evenly over the
// members subscribing to them, keeping each member's current partitions
// where balance allows (Kafka's "uniform" assignor, sticky and balanced).
// With identical subscriptions members' loads differ by at most one;
// otherwise no partition can move to an eligible member with two fewer
// partitions than its owner.
func assignUniform(topics []assignTopic, members []assignMember) map[string]assignment {
	pr := newAssignProblem(topics, members)
	if len(pr.members) == 0 {
		return pr.result()
	}
	if pr.homogeneous() {
		pr.uniformHomogeneous()
	} else {
		pr.uniformGeneral()
	}
	return pr.result()
}

// uniformHomogeneous assigns when all members subscribe to the same
// topics: every member gets quota = total/members partitions and
// total%members of them one more. Members keep current partitions up to
// their quota; the rest go round robin, so a topic's new partitions
// spread over members instead of landing on one.
func (pr *assignProblem) uniformHomogeneous() {
	topics := pr.subs[0]
	n := 0
	for _, ti := range topics {
		n += int(max(pr.topics[ti].partitions, 0))
	}
	m := len(pr.members)
	quota, extra := n/m, n%m

	cur := make([][]int, m)
	for mi := range m {
		cur[mi] = pr.current(mi)
		for _, g := range cur[mi] {
			if pr.count[mi] == quota {
				break
			}
			if pr.owner[g] < 0 {
				pr.give(g, mi)
			}
		}
	}
	// One more for members that had more than the quota, in id order,
	// while the extra slots last.
	limit := make([]int, m)
	for mi := range m {
		limit[mi] = quota
		if extra == 0 || pr.count[mi] != quota {
			continue
		}
		for _, g := range cur[mi] {
			if pr.owner[g] < 0 {
				pr.give(g, mi)
				limit[mi] = quota + 1
				extra--
				break
			}
		}
	}
	// The remaining extra slots go to the first members still at the
	// plain quota.
	for mi := range m {
		if extra == 0 {
			break
		}
		if limit[mi] == quota {
			limit[mi]++
			extra--
		}
	}
	ring := make([]int, 0, m)
	for mi := range m {
		if pr.count[mi] < limit[mi] {
			ring = append(ring, mi)
		}
	}
	at := 0
	for _, ti := range topics {
		for p := range int(max(pr.topics[ti].partitions, 0)) {
			g := pr.base[ti] + p
			if pr.owner[g] >= 0 || len(ring) == 0 {
				continue
			}
			if at >= len(ring) {
				at = 0
			}
			mi := ring[at]
			pr.give(g, mi)
			if pr.count[mi] == limit[mi] {
				ring = slices.Delete(ring, at, at+1)
			} else {
				at++
			}
		}
	}
}

// uniformGeneral assigns when subscriptions differ: members keep all
// their current partitions, unowned partitions go to the least loaded
// eligible member (topics with the fewest subscribers first, as they
// have the least choice), then partitions move from loaded members to
// eligible members with at least two fewer until none can.
func (pr *assignProblem) uniformGeneral() {
	for mi := range pr.members {
		for _, g := range pr.current(mi) {
			if pr.owner[g] < 0 {
				pr.give(g, mi)
			}
		}
	}
	order := make([]int, 0, len(pr.topics))
	for ti := range pr.topics {
		if len(pr.subscribers[ti]) > 0 {
			order = append(order, ti)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return len(pr.subscribers[a]) - len(pr.subscribers[b]) })
	for _, ti := range order {
		for p := range int(max(pr.topics[ti].partitions, 0)) {
			g := pr.base[ti] + p
			if pr.owner[g] < 0 {
				pr.give(g, pr.leastLoaded(ti))
			}
		}
	}
	for range maxBalancePasses {
		low := slices.Min(pr.count)
		moved := false
		for g := range pr.total {
			o := pr.owner[g]
			if o < 0 || pr.count[o] <= low+1 {
				continue
			}
			if to := pr.leastLoaded(pr.topicOf[g]); pr.count[to]+1 < pr.count[o] {
				pr.give(g, to)
				moved = true
			}
		}
		if !moved {
			return
		}
	}
}

// leastLoaded is the subscriber of topic ti owning the fewest
// partitions, the first in id order on ties. ti has subscribers.
func (pr *assignProblem) leastLoaded(ti int) int {
	best := pr.subscribers[ti][0]
	for _, mi := range pr.subscribers[ti][1:] {
		if pr.count[mi] < pr.count[best] {
			best = mi
		}
	}
	return best
}

// assignRange gives each topic's subscribers, in member id order,
// contiguous ranges of its partitions, the first partitions%subscribers
// members one partition more (the classic RangeAssignor, per topic).
// Co-partitioned topics thus land on the same members. It ignores the
// current assignment: ranges follow from the membership alone.
func assignRange(topics []assignTopic, members []assignMember) map[string]assignment {
	pr := newAssignProblem(topics, members)
	for ti, t := range pr.topics {
		subs := pr.subscribers[ti]
		if len(subs) == 0 {
			continue
		}
		n := int(max(t.partitions, 0))
		per, extra := n/len(subs), n%len(subs)
		for i, mi := range subs {
			start := i*per + min(i, extra)
			size := per
			if i < extra {
				size++
			}
			for p := start; p < start+size; p++ {
				pr.give(pr.base[ti]+p, mi)
			}
		}
	}
	return pr.result()
}

// Helpers over sorted partition lists and assignments.

// sortedTopicIDs returns a's topic ids in ascending byte order.
func (a assignment) sortedTopicIDs() [][16]byte {
	ids := make([][16]byte, 0, len(a))
	for id := range a {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(x, y [16]byte) int { return bytes.Compare(x[:], y[:]) })
	return ids
}

// size is the number of partitions in a.
func (a assignment) size() int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}

// equal reports whether a and b hold the same partitions (an empty list
// equals a missing topic).
func (a assignment) equal(b assignment) bool {
	if a.size() != b.size() {
		return false
	}
	for id, ps := range a {
		if !slices.Equal(ps, b[id]) {
			return false
		}
	}
	return true
}

// contains reports whether partition p of topic id is in a.
func (a assignment) contains(id [16]byte, p int32) bool {
	_, ok := slices.BinarySearch(a[id], p)
	return ok
}

// intersectSorted returns the elements in both sorted lists.
func intersectSorted(a, b []int32) []int32 {
	var out []int32
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// subtractSorted returns the elements of sorted a not in sorted b.
func subtractSorted(a, b []int32) []int32 {
	var out []int32
	j := 0
	for _, x := range a {
		for j < len(b) && b[j] < x {
			j++
		}
		if j < len(b) && b[j] == x {
			continue
		}
		out = append(out, x)
	}
	return out
}

// unionSorted merges two sorted, duplicate-free lists.
func unionSorted(a, b []int32) []int32 {
	out := make([]int32, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}
