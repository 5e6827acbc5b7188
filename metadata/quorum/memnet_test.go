package quorum

import (
	"context"
	"errors"
	"sync"

	"github.com/troupe-io/troupe/cluster/transport"
)

// memNet is an in-memory network for the tests: one delivery goroutine
// and a bounded queue per node, links that can be cut in either direction
// and nodes that can be taken down. Messages are delivered in order per
// destination, or dropped (as a lossy network would) when the queue is
// full, a link is cut or an end is down.
type memNet struct {
	mu       sync.Mutex
	handlers map[int32]func(from int32, payload []byte)
	queues   map[int32]chan memMsg
	cut      map[[2]int32]bool
	down     map[int32]bool
	closed   bool
	wg       sync.WaitGroup
}

type memMsg struct {
	from    int32
	payload []byte
}

const memQueue = 4096

func newMemNet() *memNet {
	return &memNet{
		handlers: map[int32]func(int32, []byte){},
		queues:   map[int32]chan memMsg{},
		cut:      map[[2]int32]bool{},
		down:     map[int32]bool{},
	}
}

// attach routes the messages for id to h (replacing any earlier handler)
// and returns id's transport.
func (n *memNet) attach(id int32, h func(from int32, payload []byte)) transport.Transport {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handlers[id] = h
	if _, ok := n.queues[id]; !ok {
		q := make(chan memMsg, memQueue)
		n.queues[id] = q
		n.wg.Add(1)
		go n.deliver(id, q)
	}
	return &memTransport{net: n, id: id}
}

func (n *memNet) deliver(id int32, q chan memMsg) {
	defer n.wg.Done()
	for m := range q {
		n.mu.Lock()
		h := n.handlers[id]
		drop := n.down[id] || n.down[m.from] || n.cut[[2]int32{m.from, id}]
		n.mu.Unlock()
		if h != nil && !drop {
			h(m.from, m.payload)
		}
	}
}

func (n *memNet) setDown(id int32, down bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.down[id] = down
}

// isolate cuts (or heals) every link between id and the others.
func (n *memNet) isolate(id int32, others []int32, isolated bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, o := range others {
		if o != id {
			n.cut[[2]int32{id, o}] = isolated
			n.cut[[2]int32{o, id}] = isolated
		}
	}
}

func (n *memNet) close() {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		for _, q := range n.queues {
			close(q)
		}
	}
	n.mu.Unlock()
	n.wg.Wait()
}

type memTransport struct {
	net *memNet
	id  int32
}

func (t *memTransport) Send(to int32, kind transport.Kind, payload []byte) bool {
	n := t.net
	n.mu.Lock()
	defer n.mu.Unlock()
	q, ok := n.queues[to]
	if n.closed || !ok || kind != transport.KindRaft || n.down[t.id] || n.down[to] || n.cut[[2]int32{t.id, to}] {
		return false
	}
	select {
	case q <- memMsg{from: t.id, payload: append([]byte(nil), payload...)}:
		return true
	default:
		return false
	}
}

func (t *memTransport) Request(context.Context, int32, transport.Kind, []byte) ([]byte, error) {
	return nil, errors.New("memNet: requests not supported")
}

func (t *memTransport) SetPeer(int32, string) {}

func (t *memTransport) Close() error { return nil }
