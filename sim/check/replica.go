package check

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// replicaState is one node's replica of one partition.
type replicaState struct {
	incarnation int
	hwKnown     bool
	hw          int64

	// chain is a SHA-256 chained over (offset, value) of the committed
	// records in [chainFrom, chainTo), as the replica reported them:
	// chain' = SHA-256(chain || offset || len(value) || value). Two
	// replicas whose chains cover the same range hold the same records
	// there exactly when their chains are equal. Empty when
	// chainFrom == chainTo.
	chainFrom, chainTo int64
	chain              [sha256.Size]byte
}

func (p *partState) replica(node int32) *replicaState {
	r := p.replicas[node]
	if r == nil {
		r = &replicaState{}
		p.replicas[node] = r
	}
	return r
}

// chainStep returns the chain extended by (off, value). It allocates
// nothing once scratch is as large as the largest value.
func (c *Checker) chainStep(prev [sha256.Size]byte, off int64, value string) [sha256.Size]byte {
	b := append(c.scratch[:0], prev[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(off))
	b = binary.BigEndian.AppendUint64(b, uint64(len(value)))
	b = append(b, value...)
	c.scratch = b
	return sha256.Sum256(b)
}

// ReplicaHW observes that node's replica of tp, in the node's given
// incarnation (bumped on every restart), has high watermark hw. Within
// one incarnation hw must never decrease.
func (c *Checker) ReplicaHW(node int32, incarnation int, tp TP, hw int64) {
	c.observations++
	if !validOffset(hw) {
		c.flag(chkInvalid, "node %d %s high watermark %d", node, tp, hw)
		return
	}
	r := c.part(tp).replica(node)
	switch {
	case !r.hwKnown || incarnation > r.incarnation:
		r.incarnation, r.hw, r.hwKnown = incarnation, hw, true
		return
	case incarnation < r.incarnation:
		c.flag(chkInvalid, "node %d %s: high watermark from incarnation %d after incarnation %d",
			node, tp, incarnation, r.incarnation)
		return
	}
	c.checked[chkHWRegress]++
	if hw < r.hw {
		c.flag(chkHWRegress, "node %d incarnation %d %s: high watermark %d after %d",
			node, incarnation, tp, hw, r.hw)
	}
	r.hw = hw
}

// Committed observes that the record at offset of node's replica of tp is
// below that replica's high watermark: value, written in leaderEpoch (the
// epoch stamped on its batch; -1 if unknown). It feeds the one value per
// offset map and the replica's running hash. Report each replica's
// records in offset order; re-reports (after a restart) are fine.
func (c *Checker) Committed(node int32, tp TP, offset int64, value string, leaderEpoch int32) {
	c.observations++
	if !validOffset(offset) {
		c.flag(chkInvalid, "node %d %s committed offset %d", node, tp, offset)
		return
	}
	p := c.part(tp)
	c.observeValue(p, offset, value, srcCommitted, node, leaderEpoch, chkValueConflict)
	r := p.replica(node)
	switch {
	case r.chainFrom == r.chainTo:
		r.chainFrom, r.chainTo, r.chain = offset, offset, [sha256.Size]byte{}
	case offset < r.chainTo:
		// Already in the chain; the value map checked it agrees.
		return
	case offset > r.chainTo:
		// A gap in a replica's committed offsets is its log start moving
		// up past records it had not committed yet; the chain can only
		// describe a contiguous range, so it starts over.
		c.chainRestarts++
		r.chainFrom, r.chainTo, r.chain = offset, offset, [sha256.Size]byte{}
	}
	r.chain = c.chainStep(r.chain, offset, value)
	r.chainTo = offset + 1
}

// Truncated observes that node's replica of tp cut its log to end at to.
// Cutting committed records is not flagged here, since a follower may
// truncate and fetch them back; Final flags whatever stays lost. The
// truncation is kept for the report.
func (c *Checker) Truncated(node int32, tp TP, to int64) {
	c.observations++
	if !validOffset(to) {
		c.flag(chkInvalid, "node %d truncates %s to %d", node, tp, to)
		return
	}
	p := c.part(tp)
	r := p.replica(node)
	t := Truncation{Node: node, TP: tp, To: to, HW: -1}
	if r.hwKnown {
		t.HW = r.hw
	}
	t.CutCommitted = (r.hwKnown && to < r.hw) || to < r.chainTo
	c.truncationCount++
	if t.CutCommitted {
		c.truncationsCutting++
	}
	if len(c.truncations) < MaxListed {
		c.truncations = append(c.truncations, t)
	}
	if to < r.chainTo {
		c.rebuildChain(p, r, to)
	}
}

// rebuildChain shortens r's chain to end at to. A hash cannot be undone,
// so it is recomputed from the value map, which holds the first value
// reported at each offset (the same as the replica's unless a
// value-conflict was already flagged). Truncation below committed data
// is rare, so the linear cost is fine.
func (c *Checker) rebuildChain(p *partState, r *replicaState, to int64) {
	from := r.chainFrom
	r.chainFrom, r.chainTo, r.chain = 0, 0, [sha256.Size]byte{}
	if to <= from {
		return
	}
	var h [sha256.Size]byte
	for off := from; off < to; off++ {
		e := p.store.get(off)
		if e == nil || e.flags&fKnown == 0 {
			return
		}
		h = c.chainStep(h, off, e.value)
	}
	r.chainFrom, r.chainTo, r.chain = from, to, h
}

// ReplicaHash returns node's running hash of its committed records of tp:
// they cover offsets [from, upTo), hash is hex SHA-256 (empty when the
// range is). Replicas with equal ranges must have equal hashes.
func (c *Checker) ReplicaHash(node int32, tp TP) (from, upTo int64, hash string) {
	p := c.parts[tp]
	if p == nil {
		return 0, 0, ""
	}
	r := p.replicas[node]
	if r == nil || r.chainFrom == r.chainTo {
		return 0, 0, ""
	}
	return r.chainFrom, r.chainTo, hex.EncodeToString(r.chain[:])
}

// Leader observes that node became leader of tp in leaderEpoch. At most
// one node may lead a partition in an epoch.
func (c *Checker) Leader(tp TP, leaderEpoch int32, node int32) {
	c.observations++
	p := c.part(tp)
	c.checked[chkLeaderEpoch]++
	prev, ok := p.leaders[leaderEpoch]
	if !ok {
		p.leaders[leaderEpoch] = node
		return
	}
	if prev != node {
		c.flag(chkLeaderEpoch, "%s leader epoch %d: nodes %d and %d", tp, leaderEpoch, prev, node)
	}
}

// ControllerTerm observes that metadata-quorum node became raft leader in
// term. At most one node may lead a term.
func (c *Checker) ControllerTerm(term uint64, node int32) {
	c.observations++
	c.checked[chkControllerTerm]++
	prev, ok := c.controllerTerms[term]
	if !ok {
		c.controllerTerms[term] = node
		return
	}
	if prev != node {
		c.flag(chkControllerTerm, "raft term %d: leaders %d and %d", term, prev, node)
	}
}
