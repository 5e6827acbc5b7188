package check

import (
	"slices"
)

// entry is what is known about one (partition, offset).
type entry struct {
	value string
	// epoch is the leader epoch stamped on the record, valid with fEpoch.
	epoch int32
	// node is who first reported value, for details (-1: a client).
	node   int32
	flags  uint8
	source uint8
}

const (
	fKnown uint8 = 1 << iota
	fAcked
	fConsumed
	fCommitted
	fEpoch

	// fMustSurvive marks records that some guarantee says are committed.
	fMustSurvive = fAcked | fConsumed | fCommitted
)

// Sources of a value, for details and flags.
const (
	srcAcked uint8 = iota + 1
	srcConsumed
	srcCommitted
	srcFinal
)

func sourceFlag(src uint8) uint8 {
	switch src {
	case srcAcked:
		return fAcked
	case srcConsumed:
		return fConsumed
	case srcCommitted:
		return fCommitted
	}
	return 0
}

func describe(src uint8, node int32) string {
	switch src {
	case srcAcked:
		return "acked"
	case srcConsumed:
		return "consumed"
	case srcCommitted:
		return "committed on node " + itoa32(node)
	case srcFinal:
		return "final log of node " + itoa32(node)
	}
	return "unknown"
}

// Offsets live in fixed-size chunks so that a partition's memory follows
// the offsets seen (dense in practice) while a stray huge offset costs one
// chunk, not a gigantic slice.
const (
	chunkShift = 8
	chunkLen   = 1 << chunkShift
)

type chunk [chunkLen]entry

type offsetStore struct {
	chunks map[int64]*chunk
	// lastKey/last cache the chunk of the previous access: observations
	// come in runs of nearby offsets.
	lastKey int64
	last    *chunk
}

// get returns the entry at off, nil if nothing near it is known. off must
// be in [0, maxOffset].
func (s *offsetStore) get(off int64) *entry {
	key := off >> chunkShift
	if s.last != nil && s.lastKey == key {
		return &s.last[off&(chunkLen-1)]
	}
	ch := s.chunks[key]
	if ch == nil {
		return nil
	}
	s.lastKey, s.last = key, ch
	return &ch[off&(chunkLen-1)]
}

func (s *offsetStore) getOrCreate(off int64) *entry {
	if e := s.get(off); e != nil {
		return e
	}
	if s.chunks == nil {
		s.chunks = make(map[int64]*chunk)
	}
	key := off >> chunkShift
	ch := new(chunk)
	s.chunks[key] = ch
	s.lastKey, s.last = key, ch
	return &ch[off&(chunkLen-1)]
}

// each calls fn for every known entry in ascending offset order.
func (s *offsetStore) each(fn func(off int64, e *entry)) {
	keys := make([]int64, 0, len(s.chunks))
	for k := range s.chunks {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ch := s.chunks[k]
		for i := range ch {
			if ch[i].flags&fKnown != 0 {
				fn(k<<chunkShift+int64(i), &ch[i])
			}
		}
	}
}

// partState is everything known about one partition.
type partState struct {
	tp    TP
	store offsetStore
	// valueOffset maps each non-empty value to the first offset it was
	// seen at, for the duplicate check.
	valueOffset map[string]int64
	records     int
	// logStart is the highest log start reported by LogStart.
	logStart int64
	// ackedEnd is one past the highest acknowledged offset.
	ackedEnd int64
	leaders  map[int32]int32
	replicas map[int32]*replicaState
}

func (c *Checker) part(tp TP) *partState {
	p := c.parts[tp]
	if p == nil {
		p = &partState{
			tp:          tp,
			valueOffset: make(map[string]int64),
			leaders:     make(map[int32]int32),
			replicas:    make(map[int32]*replicaState),
		}
		c.parts[tp] = p
	}
	return p
}

func validOffset(off int64) bool { return off >= 0 && off <= maxOffset }

// observeValue records that value is at off, from src, and checks it
// against what is already known there. A conflict is reported as check
// conflict (value-conflict while running, final-mismatch in Final); the
// first value stays, so later reports are all judged against one value.
// epoch < 0 means the source does not know the record's epoch.
func (c *Checker) observeValue(p *partState, off int64, value string, src uint8, node, epoch int32, conflict checkID) {
	e := p.store.getOrCreate(off)
	c.checked[conflict]++
	if e.flags&fKnown == 0 {
		e.value, e.source, e.node = value, src, node
		e.flags |= fKnown
		p.records++
		c.noteValue(p, off, value)
	} else if e.value != value {
		c.flag(conflict, "%s offset %d: %q (%s) vs %q (%s)",
			p.tp, off, e.value, describe(e.source, e.node), value, describe(src, node))
	}
	e.flags |= sourceFlag(src)
	if epoch >= 0 {
		c.checked[chkEpochConflict]++
		if e.flags&fEpoch == 0 {
			e.epoch = epoch
			e.flags |= fEpoch
		} else if e.epoch != epoch {
			c.flag(chkEpochConflict, "%s offset %d: leader epoch %d vs %d (%s)",
				p.tp, off, e.epoch, epoch, describe(src, node))
		}
	}
}

// noteValue runs the duplicate check for a value newly known at off.
// Empty values are not produced by the simulator's producers and are
// exempt, so that tombstone-like records cannot look like duplicates.
func (c *Checker) noteValue(p *partState, off int64, value string) {
	if value == "" {
		return
	}
	c.checked[chkDuplicate]++
	prev, ok := p.valueOffset[value]
	if !ok {
		p.valueOffset[value] = off
		return
	}
	if prev != off {
		c.flag(chkDuplicate, "%s value %q at offsets %d and %d", p.tp, value, prev, off)
	}
}

// Acked observes a successful acks=-1 produce: values[i] is at
// baseOffset+i.
func (c *Checker) Acked(tp TP, baseOffset int64, values []string) {
	c.observations++
	if !validOffset(baseOffset) || int64(len(values)) > maxOffset-baseOffset {
		c.flag(chkInvalid, "acked %s base offset %d with %d values", tp, baseOffset, len(values))
		return
	}
	p := c.part(tp)
	for i, v := range values {
		c.observeValue(p, baseOffset+int64(i), v, srcAcked, -1, -1, chkValueConflict)
	}
	if end := baseOffset + int64(len(values)); end > p.ackedEnd {
		p.ackedEnd = end
	}
}

// LogStart observes that tp's log start offset is now at least off
// (retention or DeleteRecords removed everything below it). Records below
// the log start are excused from the consume-order and loss checks, so
// report it no later than any consumer or the final view could notice.
func (c *Checker) LogStart(tp TP, off int64) {
	c.observations++
	if !validOffset(off) {
		c.flag(chkInvalid, "log start %s at %d", tp, off)
		return
	}
	p := c.part(tp)
	if off > p.logStart {
		p.logStart = off
	}
}

// TopicDeleted forgets every partition of topic: its records, leaders,
// replicas, consumer positions and committed group offsets, so that a
// topic recreated under the same name starts afresh. Call it once the
// deletion has taken effect, and stop reporting observations about the
// old topic (drop responses still in flight for it).
func (c *Checker) TopicDeleted(topic string) {
	c.observations++
	for tp := range c.parts {
		if tp.Topic == topic {
			delete(c.parts, tp)
		}
	}
	for k := range c.consumers {
		if k.tp.Topic == topic {
			delete(c.consumers, k)
		}
	}
	for _, g := range c.groups {
		for tp := range g.commits {
			if tp.Topic == topic {
				delete(g.commits, tp)
			}
		}
	}
}
