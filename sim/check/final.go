package check

import (
	"cmp"
	"maps"
	"slices"
	"sort"
)

// Record is one record of a replica's final log.
type Record struct {
	Offset int64
	Value  string
}

// FinalPartition is one partition's settled state.
type FinalPartition struct {
	// LogStart is the partition's log start offset; records below it may
	// be gone.
	LogStart int64
	// ISR lists the in-sync replicas; every one of them must hold every
	// committed record at or above LogStart.
	ISR []int32
	// Replicas holds, for every live replica, its committed records
	// (below its high watermark) in offset order. Take the view after the
	// cluster healed and replication settled, so in-sync followers have
	// caught up with their leader.
	Replicas map[int32][]Record
}

// FinalView is the cluster's settled state at the end of a run.
type FinalView struct {
	Partitions map[TP]FinalPartition
}

// replicaLog is one replica's final log prepared for lookups.
type replicaLog struct {
	node  int32
	recs  []Record // ascending by offset
	dense bool     // recs[i].Offset == recs[0].Offset+i
}

func (l *replicaLog) lookup(off int64) (string, bool) {
	if len(l.recs) == 0 {
		return "", false
	}
	if l.dense {
		i := off - l.recs[0].Offset
		if i < 0 || i >= int64(len(l.recs)) {
			return "", false
		}
		return l.recs[i].Value, true
	}
	i := sort.Search(len(l.recs), func(i int) bool { return l.recs[i].Offset >= off })
	if i < len(l.recs) && l.recs[i].Offset == off {
		return l.recs[i].Value, true
	}
	return "", false
}

// Final runs the end-of-run checks against view and returns the
// violations they found (at most MaxListed; all are counted in Summary
// and also listed by Violations while room remains). Call it once.
//
// Partitions are checked in (topic, partition) order, replicas in node
// order, offsets ascending. Loss is reported once per replica and run of
// consecutive missing records, with counts, rather than once per record.
func (c *Checker) Final(view FinalView) []Violation {
	out := []Violation{}
	c.finalOut = &out
	defer func() { c.finalOut = nil }()

	seen := make(map[TP]bool, len(view.Partitions)+len(c.parts))
	for tp := range view.Partitions {
		seen[tp] = true
	}
	for tp := range c.parts {
		seen[tp] = true
	}
	tps := slices.SortedFunc(maps.Keys(seen), compareTP)
	for _, tp := range tps {
		fp, inView := view.Partitions[tp]
		if !inView {
			if p := c.parts[tp]; p != nil {
				c.reportUnheld(p, p.logStart, "partition missing from the final view")
			}
			continue
		}
		c.finalPartition(c.part(tp), fp)
	}
	return out
}

func (c *Checker) finalPartition(p *partState, fp FinalPartition) {
	logStart := max(fp.LogStart, p.logStart)
	logs := make(map[int32]*replicaLog, len(fp.Replicas))
	for _, node := range slices.Sorted(maps.Keys(fp.Replicas)) {
		logs[node] = c.finalReplica(p, node, fp.Replicas[node])
	}

	var isr []int32
	for _, node := range fp.ISR {
		if logs[node] != nil && !slices.Contains(isr, node) {
			isr = append(isr, node)
		}
	}
	slices.Sort(isr)

	for _, node := range isr[min(1, len(isr)):] {
		c.compareFinal(p, logs[isr[0]], logs[node])
	}
	c.compareChains(p)

	if len(isr) == 0 {
		c.reportUnheld(p, logStart, "no live in-sync replica")
		return
	}
	for _, node := range isr {
		c.checkHeld(p, logStart, logs[node])
	}
}

// finalReplica checks that a replica's final log is strictly increasing
// and dense, feeds its records to the one value per offset map (so that
// they must match everything acked, consumed and committed there, and
// hold no duplicate), and returns it ready for lookups.
func (c *Checker) finalReplica(p *partState, node int32, recs []Record) *replicaLog {
	l := &replicaLog{node: node, recs: recs, dense: true}
	c.checked[chkReplicaDivergence]++
	ascending := true
	for i := 1; i < len(recs); i++ {
		prev, off := recs[i-1].Offset, recs[i].Offset
		if off == prev+1 {
			continue
		}
		if l.dense {
			c.flag(chkReplicaDivergence, "node %d %s final log: offset %d follows %d", node, p.tp, off, prev)
		}
		l.dense = false
		if off <= prev {
			ascending = false
		}
	}
	if !ascending {
		l.recs = slices.Clone(recs)
		slices.SortStableFunc(l.recs, func(a, b Record) int { return cmp.Compare(a.Offset, b.Offset) })
	}
	for _, r := range recs {
		if !validOffset(r.Offset) {
			c.flag(chkInvalid, "node %d %s final log: offset %d", node, p.tp, r.Offset)
			continue
		}
		c.observeValue(p, r.Offset, r.Value, srcFinal, node, -1, chkFinalMismatch)
	}
	return l
}

// compareFinal checks that two in-sync replicas hold the same records
// over the offsets both cover.
func (c *Checker) compareFinal(p *partState, a, b *replicaLog) {
	if len(a.recs) == 0 || len(b.recs) == 0 {
		return
	}
	lo := max(a.recs[0].Offset, b.recs[0].Offset)
	hi := min(a.recs[len(a.recs)-1].Offset, b.recs[len(b.recs)-1].Offset)
	c.checked[chkReplicaDivergence]++
	for off := lo; off <= hi; off++ {
		va, oka := a.lookup(off)
		vb, okb := b.lookup(off)
		if oka != okb || va != vb {
			c.flag(chkReplicaDivergence, "%s in-sync nodes %d and %d differ first at offset %d: %s vs %s",
				p.tp, a.node, b.node, off, quoteOrAbsent(va, oka), quoteOrAbsent(vb, okb))
			return
		}
	}
}

func quoteOrAbsent(v string, ok bool) string {
	if !ok {
		return "absent"
	}
	return `"` + v + `"`
}

// compareChains checks the running committed-prefix hashes: replicas whose
// chains cover the same offsets must have equal chains.
func (c *Checker) compareChains(p *partState) {
	nodes := slices.Sorted(maps.Keys(p.replicas))
	for i, n := range nodes {
		a := p.replicas[n]
		if a.chainFrom == a.chainTo {
			continue
		}
		for _, m := range nodes[i+1:] {
			b := p.replicas[m]
			if b.chainFrom != a.chainFrom || b.chainTo != a.chainTo {
				continue
			}
			c.checked[chkReplicaDivergence]++
			if a.chain != b.chain {
				c.flag(chkReplicaDivergence, "%s running hashes of nodes %d and %d differ over offsets [%d, %d)",
					p.tp, n, m, a.chainFrom, a.chainTo)
			}
		}
	}
}

// lossRun accumulates consecutive missing records for one report.
type lossRun struct {
	first, last int64
	acked       int
	other       int
	sample      string
}

func (r *lossRun) add(off int64, e *entry) {
	if r.acked+r.other == 0 {
		r.first, r.sample = off, e.value
	}
	r.last = off
	if e.flags&fAcked != 0 {
		r.acked++
	} else {
		r.other++
	}
}

func (c *Checker) closeRun(p *partState, r *lossRun, where string) {
	if r.acked+r.other == 0 {
		return
	}
	id := chkCommittedLost
	if r.acked > 0 {
		id = chkAckedLost
	}
	c.flag(id, "%s %s: %d acked and %d other committed records missing in offsets [%d, %d], first %q at %d",
		p.tp, where, r.acked, r.other, r.first, r.last, r.sample, r.first)
	*r = lossRun{}
}

func lossCheck(e *entry) checkID {
	if e.flags&fAcked != 0 {
		return chkAckedLost
	}
	return chkCommittedLost
}

// checkHeld checks that the in-sync replica l holds every record at or
// above logStart that was acked, consumed or seen committed. Its values
// were already compared by finalReplica.
func (c *Checker) checkHeld(p *partState, logStart int64, l *replicaLog) {
	where := "in-sync node " + itoa32(l.node)
	var run lossRun
	p.store.each(func(off int64, e *entry) {
		if off < logStart || e.flags&fMustSurvive == 0 {
			return
		}
		c.checked[lossCheck(e)]++
		if _, ok := l.lookup(off); ok {
			c.closeRun(p, &run, where)
			return
		}
		run.add(off, e)
	})
	c.closeRun(p, &run, where)
}

// reportUnheld reports every record at or above logStart that must
// survive, for a partition no replica can vouch for.
func (c *Checker) reportUnheld(p *partState, logStart int64, why string) {
	var run lossRun
	p.store.each(func(off int64, e *entry) {
		if off < logStart || e.flags&fMustSurvive == 0 {
			return
		}
		c.checked[lossCheck(e)]++
		run.add(off, e)
	})
	c.closeRun(p, &run, why)
}
