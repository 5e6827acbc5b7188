package membership

import (
	"slices"
	"sync"
)

// EventKind says what happened to a member.
type EventKind uint8

const (
	// Joined: the node became alive in this node's view: first seen, or
	// back after Failed or Left (possibly as a new incarnation).
	Joined EventKind = iota + 1
	// Updated: an alive node's metadata changed. A new Meta.Incarnation
	// means the node restarted faster than it could be detected: the old
	// process is gone.
	Updated
	// Failed: the node stopped answering probes, direct and indirect, for
	// the suspicion timeout, or another node concluded so.
	Failed
	// Left: the node announced it was leaving (Close).
	Left
)

func (k EventKind) String() string {
	switch k {
	case Joined:
		return "joined"
	case Updated:
		return "updated"
	case Failed:
		return "failed"
	case Left:
		return "left"
	default:
		return "unknown"
	}
}

// Event reports a member's new state. See the package doc on coalescing:
// an Event is the member's state when it was queued, and Kinds in between
// may have been merged away.
type Event struct {
	Kind   EventKind
	Member Member
}

// eventBuffer is the capacity of the channel Events returns. Anything
// beyond it waits, coalesced per node, in eventQueue.
const eventBuffer = 16

// eventQueue hands events from memberlist's goroutines to the consumer
// without ever blocking the former. Each node has at most one pending
// event, which a newer event for that node replaces; a pump goroutine
// moves pending events, oldest node first, into a bounded channel.
//
// Invariant (under mu): order holds each key of pending exactly once, in
// the order the keys were added. So memory is bounded by the number of
// distinct nodes plus the channel's capacity, however slow the consumer.
type eventQueue struct {
	mu      sync.Mutex
	pending map[int32]Event
	order   []int32

	wake chan struct{} // capacity 1: "pending may be non-empty"
	out  chan Event
	done chan struct{} // closed to stop the pump
}

func newEventQueue() *eventQueue {
	return &eventQueue{
		pending: make(map[int32]Event),
		wake:    make(chan struct{}, 1),
		out:     make(chan Event, eventBuffer),
		done:    make(chan struct{}),
	}
}

// push queues ev, merging it with the node's pending event. It never
// blocks beyond the short critical section.
func (q *eventQueue) push(ev Event) {
	ev.Member.Meta.Roles = slices.Clone(ev.Member.Meta.Roles)
	q.mu.Lock()
	if prev, ok := q.pending[ev.Member.NodeID]; ok {
		// A consumer that has not yet seen the join must still get a
		// Joined, not an Updated for a node it never heard of.
		if prev.Kind == Joined && ev.Kind == Updated {
			ev.Kind = Joined
		}
	} else {
		q.order = append(q.order, ev.Member.NodeID)
	}
	q.pending[ev.Member.NodeID] = ev
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop removes the oldest pending event.
func (q *eventQueue) pop() (Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.order) == 0 {
		return Event{}, false
	}
	id := q.order[0]
	// Shift rather than reslice so the backing array does not creep.
	copy(q.order, q.order[1:])
	q.order = q.order[:len(q.order)-1]
	ev := q.pending[id]
	delete(q.pending, id)
	return ev, true
}

// pump delivers pending events until stop; it closes out when it returns,
// so consumers ranging over Events finish after Close.
func (q *eventQueue) pump() {
	defer close(q.out)
	for {
		ev, ok := q.pop()
		if !ok {
			select {
			case <-q.wake:
				continue
			case <-q.done:
				return
			}
		}
		select {
		case q.out <- ev:
		case <-q.done:
			return
		}
	}
}

// stop ends the pump; pending events are dropped. Call once.
func (q *eventQueue) stop() { close(q.done) }

// pendingLen reports how many nodes have a pending event (tests).
func (q *eventQueue) pendingLen() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}
