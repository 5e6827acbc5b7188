package membership

import (
	"testing"
	"time"
)

func ev(kind EventKind, id int32, incarnation int64) Event {
	return Event{Kind: kind, Member: Member{NodeID: id, Meta: NodeMeta{NodeID: id, Incarnation: incarnation}}}
}

// drain pops everything pending, without the pump.
func drain(q *eventQueue) []Event {
	var out []Event
	for {
		e, ok := q.pop()
		if !ok {
			return out
		}
		out = append(out, e)
	}
}

func TestEventQueueCoalesces(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []Event
		want []Event
	}{
		{
			name: "distinct nodes keep their order",
			in:   []Event{ev(Joined, 3, 1), ev(Joined, 1, 1), ev(Joined, 2, 1)},
			want: []Event{ev(Joined, 3, 1), ev(Joined, 1, 1), ev(Joined, 2, 1)},
		},
		{
			name: "an unseen join stays a join",
			in:   []Event{ev(Joined, 1, 1), ev(Updated, 1, 2)},
			want: []Event{ev(Joined, 1, 2)},
		},
		{
			name: "latest state wins",
			in:   []Event{ev(Joined, 1, 1), ev(Failed, 1, 1), ev(Joined, 1, 2)},
			want: []Event{ev(Joined, 1, 2)},
		},
		{
			name: "failure after update",
			in:   []Event{ev(Updated, 1, 1), ev(Failed, 1, 1)},
			want: []Event{ev(Failed, 1, 1)},
		},
		{
			name: "a node keeps its first position",
			in:   []Event{ev(Joined, 1, 1), ev(Joined, 2, 1), ev(Left, 1, 1)},
			want: []Event{ev(Left, 1, 1), ev(Joined, 2, 1)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newEventQueue()
			for _, e := range tc.in {
				q.push(e)
			}
			got := drain(q)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].Kind != tc.want[i].Kind || got[i].Member.NodeID != tc.want[i].Member.NodeID ||
					got[i].Member.Meta.Incarnation != tc.want[i].Member.Meta.Incarnation {
					t.Errorf("event %d: got %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestEventsFloodWithoutReader: memberlist-side pushes never block when
// nobody reads, memory stays one event per node, and a late reader gets
// each node's latest state.
func TestEventsFloodWithoutReader(t *testing.T) {
	q := newEventQueue()
	go q.pump()
	defer q.stop()

	const nodes, pushes = 50, 100_000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range pushes {
			id := int32(i % nodes)
			q.push(ev(EventKind(1+i%4), id, int64(i)))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("push blocked with no reader")
	}
	if got := q.pendingLen(); got > nodes {
		t.Errorf("%d pending, more than %d nodes", got, nodes)
	}
	if got := len(q.out); got > eventBuffer {
		t.Errorf("channel holds %d, capacity %d", got, eventBuffer)
	}

	// Read everything; the last event per node must be the last pushed.
	// The pump may hold one popped event, so "drained" is a quiet spell.
	latest := map[int32]Event{}
	for received := 0; ; received++ {
		if received > nodes+eventBuffer+1 {
			t.Fatalf("received %d events from %d nodes: not coalesced", received, nodes)
		}
		select {
		case e := <-q.out:
			latest[e.Member.NodeID] = e
			continue
		case <-time.After(200 * time.Millisecond):
		}
		break
	}
	for id := range int32(nodes) {
		lastPush := pushes - nodes + int(id)
		if got := latest[id].Member.Meta.Incarnation; got != int64(lastPush) {
			t.Errorf("node %d: latest delivered incarnation %d, want %d", id, got, lastPush)
		}
	}
}

// TestEventsCloseEndsRange: stopping the pump closes the channel even with
// events pending and a full buffer.
func TestEventsCloseEndsRange(t *testing.T) {
	q := newEventQueue()
	go q.pump()
	for i := range eventBuffer * 2 {
		q.push(ev(Joined, int32(i), 1))
	}
	q.stop()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-q.out:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("channel not closed after stop")
		}
	}
}
