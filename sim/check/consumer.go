package check

type consumerKey struct {
	consumer string
	tp       TP
}

// Consumer session modes.
const (
	// sessionNone: no Seek and nothing consumed yet; the first record
	// consumed starts the session wherever it is.
	sessionNone uint8 = iota
	// sessionSeeked: the consumer repositioned to next and has not
	// consumed since.
	sessionSeeked
	// sessionReading: the next record must be at next.
	sessionReading
)

type consumerState struct {
	mode uint8
	next int64
}

func (c *Checker) consumer(name string, tp TP) *consumerState {
	k := consumerKey{consumer: name, tp: tp}
	cs := c.consumers[k]
	if cs == nil {
		cs = &consumerState{}
		c.consumers[k] = cs
	}
	return cs
}

// Seek observes that consumer (re)started reading tp at offset: after an
// assignment, an OffsetFetch, or an offset reset. The next record it
// consumes there must be at offset, or above it only if every offset
// skipped is below the partition's log start.
func (c *Checker) Seek(consumer string, tp TP, offset int64) {
	c.observations++
	if !validOffset(offset) {
		c.flag(chkInvalid, "consumer %s seeks %s to %d", consumer, tp, offset)
		return
	}
	cs := c.consumer(consumer, tp)
	cs.mode, cs.next = sessionSeeked, offset
}

// Consumed observes that a fetch response gave consumer these records of
// tp, in response order (values[i] at offsets[i]), with high watermark hw
// (hw < 0: unknown, not checked).
//
// Checks: every offset is below hw; offsets follow the session rules of
// Seek and then increase by exactly one (our producers write plain
// batches: no compaction, no transaction markers, so offsets are dense).
// After a violation the session resynchronises on the offending record,
// so one skip is reported once, not once per later record.
func (c *Checker) Consumed(consumer string, tp TP, offsets []int64, values []string, hw int64) {
	c.observations++
	n := len(offsets)
	if len(values) != n {
		c.flag(chkInvalid, "consumer %s on %s: %d offsets but %d values", consumer, tp, len(offsets), len(values))
		n = min(n, len(values))
	}
	if n == 0 {
		return
	}
	p := c.part(tp)
	cs := c.consumer(consumer, tp)
	for i := range n {
		off := offsets[i]
		if !validOffset(off) {
			c.flag(chkInvalid, "consumer %s on %s: offset %d", consumer, tp, off)
			continue
		}
		if hw >= 0 {
			c.checked[chkConsumeAboveHW]++
			if off >= hw {
				c.flag(chkConsumeAboveHW, "consumer %s on %s: offset %d at or above high watermark %d", consumer, tp, off, hw)
			}
		}
		c.checked[chkConsumeOrder]++
		switch cs.mode {
		case sessionNone:
			c.implicitSessions++
		case sessionSeeked:
			// Above the seek offset is fine only when the gap was deleted.
			if off != cs.next && (off < cs.next || off > p.logStart) {
				c.flag(chkConsumeOrder, "consumer %s on %s: seeked to %d but first record at %d (log start %d)",
					consumer, tp, cs.next, off, p.logStart)
			}
		case sessionReading:
			switch {
			case off > cs.next:
				c.flag(chkConsumeOrder, "consumer %s on %s: skipped offsets [%d, %d)", consumer, tp, cs.next, off)
			case off < cs.next:
				c.flag(chkConsumeOrder, "consumer %s on %s: offset %d after %d", consumer, tp, off, cs.next-1)
			}
		}
		cs.mode, cs.next = sessionReading, off+1
		c.observeValue(p, off, values[i], srcConsumed, -1, -1, chkValueConflict)
	}
}
