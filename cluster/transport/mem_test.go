package transport

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// memNodes joins nodes 1..n to net.
func memNodes(t *testing.T, net *MemNetwork, n int) (map[int32]Transport, map[int32]*recorder) {
	t.Helper()
	t.Cleanup(func() { net.Close() })
	nodes := make(map[int32]Transport)
	handlers := make(map[int32]*recorder)
	for id := int32(1); id <= int32(n); id++ {
		handlers[id] = newRecorder(id)
		nodes[id] = net.Join(id, handlers[id])
	}
	return nodes, handlers
}

func TestMemOrderAndRoundTrip(t *testing.T) {
	net := NewMemNetwork()
	nodes, handlers := memNodes(t, net, 3)
	const n = 1000
	var wg sync.WaitGroup
	for _, from := range []int32{1, 3} {
		wg.Go(func() {
			for i := range n {
				if !nodes[from].Send(2, KindRaft, fmt.Appendf(nil, "%d", i)) {
					t.Errorf("node %d: Send %d dropped", from, i)
					return
				}
			}
		})
	}
	wg.Wait()
	next := map[int32]int{}
	for _, m := range handlers[2].waitMessages(t, 2*n, 5*time.Second) {
		if want := fmt.Sprint(next[m.from]); m.payload != want {
			t.Fatalf("from %d: got %s, want %s", m.from, m.payload, want)
		}
		next[m.from]++
	}

	ctx := withTimeout(t, 5*time.Second)
	resp, err := nodes[1].Request(ctx, 3, KindController, []byte("hi"))
	if err != nil || string(resp) != "3:hi" {
		t.Fatalf("%q, %v", resp, err)
	}
	if _, err := nodes[1].Request(ctx, 3, KindController, []byte("fail:nope")); !errors.Is(err, ErrRemote) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("remote error: %v", err)
	}
	if _, err := nodes[1].Request(ctx, 9, KindController, nil); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("absent node: %v", err)
	}
}

func TestMemPayloadsAreCopied(t *testing.T) {
	net := NewManualNetwork()
	nodes, handlers := memNodes(t, net, 2)
	buf := []byte("original")
	nodes[1].Send(2, KindRaft, buf)
	copy(buf, "mutated!")
	net.DeliverAll()
	if got := handlers[2].messages()[0].payload; got != "original" {
		t.Fatalf("receiver saw %q", got)
	}
}

// reachability checks which directed pairs carry messages and requests.
func reachability(t *testing.T, net *MemNetwork, nodes map[int32]Transport) map[[2]int32]bool {
	t.Helper()
	got := make(map[[2]int32]bool)
	for from, a := range nodes {
		for to := range nodes {
			if from == to {
				continue
			}
			got[[2]int32{from, to}] = a.Send(to, KindRaft, []byte("probe"))
		}
	}
	return got
}

func TestMemCutIsolateHeal(t *testing.T) {
	type pair = [2]int32
	all := func(except ...pair) map[pair]bool {
		m := make(map[pair]bool)
		for a := int32(1); a <= 3; a++ {
			for b := int32(1); b <= 3; b++ {
				if a != b {
					m[pair{a, b}] = true
				}
			}
		}
		for _, p := range except {
			m[p] = false
		}
		return m
	}
	tests := []struct {
		name  string
		fault func(*MemNetwork)
		want  map[pair]bool
	}{
		{"none", func(*MemNetwork) {}, all()},
		{"cut one way", func(n *MemNetwork) { n.Cut(1, 2) }, all(pair{1, 2})},
		{"cut both ways", func(n *MemNetwork) { n.Cut(1, 2); n.Cut(2, 1) }, all(pair{1, 2}, pair{2, 1})},
		{"isolate", func(n *MemNetwork) { n.Isolate(3) }, all(pair{1, 3}, pair{3, 1}, pair{2, 3}, pair{3, 2})},
		{"heal isolated", func(n *MemNetwork) { n.Isolate(3); n.Heal(3) }, all()},
		{"heal clears cuts", func(n *MemNetwork) { n.Cut(1, 2); n.Cut(3, 1); n.Heal(1) }, all()},
		{"heal leaves others' cuts", func(n *MemNetwork) { n.Cut(2, 3); n.Isolate(1); n.Heal(1) }, all(pair{2, 3})},
		{"heal all", func(n *MemNetwork) { n.Cut(2, 3); n.Isolate(1); n.HealAll() }, all()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			net := NewManualNetwork()
			nodes, handlers := memNodes(t, net, 3)
			tc.fault(net)
			got := reachability(t, net, nodes)
			for p, want := range tc.want {
				if got[p] != want {
					t.Errorf("%d→%d: Send %v, want %v", p[0], p[1], got[p], want)
				}
			}
			net.DeliverAll()
			for p, want := range tc.want {
				n := 0
				for _, m := range handlers[p[1]].messages() {
					if m.from == p[0] {
						n++
					}
				}
				if (n == 1) != want {
					t.Errorf("%d→%d: %d delivered, want %v", p[0], p[1], n, want)
				}
			}
			// A request needs both directions of its pair.
			ctx := withTimeout(t, 5*time.Second)
			for p := range tc.want {
				both := tc.want[p] && tc.want[pair{p[1], p[0]}]
				done := make(chan error, 1)
				go func() {
					_, err := nodes[p[0]].Request(ctx, p[1], KindController, nil)
					done <- err
				}()
				if both {
					// Deliver the request, then its response.
					eventually(t, 2*time.Second, "request and response", func() bool {
						net.DeliverAll()
						select {
						case err := <-done:
							if err != nil {
								t.Errorf("%d→%d: %v", p[0], p[1], err)
							}
							return true
						default:
							return false
						}
					})
				} else if err := <-done; !errors.Is(err, ErrUnreachable) {
					t.Errorf("%d→%d: err %v, want ErrUnreachable", p[0], p[1], err)
				}
			}
		})
	}
}

func TestMemCutFailsInFlightRequests(t *testing.T) {
	tests := []struct {
		name  string
		fault func(*MemNetwork)
	}{
		{"cut request direction", func(n *MemNetwork) { n.Cut(1, 2) }},
		{"cut response direction", func(n *MemNetwork) { n.Cut(2, 1) }},
		{"isolate callee", func(n *MemNetwork) { n.Isolate(2) }},
		{"isolate caller", func(n *MemNetwork) { n.Isolate(1) }},
	}
	for _, tc := range tests {
		for _, manual := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/manual=%v", tc.name, manual), func(t *testing.T) {
				net := NewMemNetwork()
				if manual {
					net = NewManualNetwork()
				}
				nodes, handlers := memNodes(t, net, 2)
				entered := make(chan struct{}, 1)
				handlers[2].setOnRequest(func(ctx context.Context, _ int32, _ Kind, _ []byte) ([]byte, error) {
					entered <- struct{}{}
					<-ctx.Done()
					return nil, ctx.Err()
				})
				done := make(chan error, 1)
				go func() {
					_, err := nodes[1].Request(context.Background(), 2, KindController, nil)
					done <- err
				}()
				if manual {
					eventually(t, 2*time.Second, "request queued", func() bool { return len(net.Pending()) == 1 })
					net.DeliverAll()
				}
				<-entered
				tc.fault(net)
				select {
				case err := <-done:
					if !errors.Is(err, ErrUnreachable) {
						t.Fatalf("err %v", err)
					}
				case <-time.After(2 * time.Second):
					t.Fatal("in-flight request not failed by the fault")
				}
			})
		}
	}
}

func TestMemDropRate(t *testing.T) {
	tests := []struct {
		rate     float64
		min, max int
	}{
		{0, 1000, 1000},
		{1, 0, 0},
		{0.5, 400, 600},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.rate), func(t *testing.T) {
			net := NewManualNetwork()
			nodes, handlers := memNodes(t, net, 2)
			net.SetDropRate(tc.rate, rand.New(rand.NewPCG(7, 7)))
			for range 1000 {
				if !nodes[1].Send(2, KindRaft, []byte("m")) {
					t.Fatal("a dropped message must look sent")
				}
			}
			net.DeliverAll()
			if got := len(handlers[2].messages()); got < tc.min || got > tc.max {
				t.Fatalf("delivered %d, want [%d, %d]", got, tc.min, tc.max)
			}
			// Requests are never dropped at random.
			done := make(chan error, 1)
			go func() {
				_, err := nodes[1].Request(withTimeout(t, 5*time.Second), 2, KindController, nil)
				done <- err
			}()
			eventually(t, 2*time.Second, "request answered", func() bool {
				net.DeliverAll()
				select {
				case err := <-done:
					if err != nil {
						t.Error(err)
					}
					return true
				default:
					return false
				}
			})
		})
	}
}

func TestMemManualDelivery(t *testing.T) {
	net := NewManualNetwork()
	nodes, handlers := memNodes(t, net, 3)
	for i := range 3 {
		nodes[1].Send(2, KindRaft, fmt.Appendf(nil, "m%d", i))
	}
	nodes[3].Send(2, KindRaft, []byte("from3"))
	time.Sleep(10 * time.Millisecond)
	if got := handlers[2].messages(); len(got) != 0 {
		t.Fatalf("delivered without Deliver: %v", got)
	}
	pending := net.Pending()
	if len(pending) != 4 {
		t.Fatalf("pending %d", len(pending))
	}
	for i, env := range pending {
		if i > 0 && env.Seq <= pending[i-1].Seq {
			t.Fatalf("Pending not in send order: %v", pending)
		}
		if env.Type != EnvelopeMessage || env.To != 2 {
			t.Fatalf("envelope %+v", env)
		}
	}
	// The caller picks the order, reordering included.
	order := []int{3, 2, 0}
	for _, i := range order {
		if !net.Deliver(pending[i].Seq) {
			t.Fatalf("Deliver(%d) failed", pending[i].Seq)
		}
	}
	if net.Deliver(pending[0].Seq) {
		t.Fatal("delivered twice")
	}
	if !net.Drop(pending[1].Seq) || net.Drop(pending[1].Seq) {
		t.Fatal("Drop")
	}
	var got []string
	for _, m := range handlers[2].messages() {
		got = append(got, m.payload)
	}
	if want := "from3 m2 m0"; strings.Join(got, " ") != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if len(net.Pending()) != 0 {
		t.Fatal("left pending")
	}

	// A request: request envelope, then handler, then response envelope.
	type result struct {
		resp []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := nodes[1].Request(withTimeout(t, 5*time.Second), 3, KindController, []byte("q"))
		done <- result{resp, err}
	}()
	var req Envelope
	eventually(t, 2*time.Second, "request envelope", func() bool {
		p := net.Pending()
		if len(p) == 1 {
			req = p[0]
		}
		return len(p) == 1
	})
	if req.Type != EnvelopeRequest || req.From != 1 || req.To != 3 || string(req.Payload) != "q" {
		t.Fatalf("request envelope %+v", req)
	}
	net.Deliver(req.Seq)
	var resp Envelope
	eventually(t, 2*time.Second, "response envelope", func() bool {
		p := net.Pending()
		if len(p) == 1 {
			resp = p[0]
		}
		return len(p) == 1
	})
	if resp.Type != EnvelopeResponse || resp.From != 3 || resp.To != 1 || string(resp.Payload) != "3:q" {
		t.Fatalf("response envelope %+v", resp)
	}
	select {
	case <-done:
		t.Fatal("Request returned before its response was delivered")
	default:
	}
	net.Deliver(resp.Seq)
	if r := <-done; r.err != nil || string(r.resp) != "3:q" {
		t.Fatalf("%q, %v", r.resp, r.err)
	}

	// Dropping a request fails its caller.
	go func() {
		_, err := nodes[1].Request(context.Background(), 3, KindController, nil)
		done <- result{nil, err}
	}()
	eventually(t, 2*time.Second, "request envelope", func() bool { return len(net.Pending()) == 1 })
	net.Drop(net.Pending()[0].Seq)
	if r := <-done; !errors.Is(r.err, ErrUnreachable) {
		t.Fatalf("dropped request: %v", r.err)
	}

	// An envelope whose link went down since it was sent is dropped.
	nodes[1].Send(2, KindRaft, []byte("late"))
	net.Cut(1, 2)
	if net.Deliver(net.Pending()[0].Seq) {
		t.Fatal("delivered across a cut")
	}
}

func TestMemRestart(t *testing.T) {
	for _, manual := range []bool{false, true} {
		t.Run(fmt.Sprintf("manual=%v", manual), func(t *testing.T) {
			net := NewMemNetwork()
			if manual {
				net = NewManualNetwork()
			}
			nodes, handlers := memNodes(t, net, 2)
			deliver := func() {
				if manual {
					net.DeliverAll()
				}
			}
			// In flight to the old incarnation: lost with it.
			handlers[2].setOnRequest(func(ctx context.Context, _ int32, _ Kind, _ []byte) ([]byte, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			})
			done := make(chan error, 1)
			go func() {
				_, err := nodes[1].Request(context.Background(), 2, KindController, nil)
				done <- err
			}()
			eventually(t, 2*time.Second, "request sent", func() bool {
				deliver()
				if manual {
					return len(net.Pending()) == 0 && len(handlers[2].messages()) == 0
				}
				return true
			})
			if manual {
				nodes[1].Send(2, KindRaft, []byte("to the old node"))
			}
			if err := nodes[2].Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; !errors.Is(err, ErrUnreachable) {
				t.Fatalf("request to a closing node: %v", err)
			}
			if nodes[1].Send(2, KindRaft, []byte("x")) {
				t.Fatal("Send to an absent node succeeded")
			}
			if _, err := nodes[2].Request(context.Background(), 1, KindController, nil); !errors.Is(err, ErrClosed) {
				t.Fatalf("Request from a closed node: %v", err)
			}

			h2 := newRecorder(2)
			nodes[2] = net.Join(2, h2)
			if !nodes[1].Send(2, KindRaft, []byte("to the new node")) {
				t.Fatal("Send after rejoin failed")
			}
			deliver()
			msgs := h2.waitMessages(t, 1, 2*time.Second)
			if len(msgs) != 1 || msgs[0].payload != "to the new node" {
				t.Fatalf("new incarnation got %v", msgs)
			}
		})
	}
}

func TestMemRequestContext(t *testing.T) {
	net := NewManualNetwork()
	nodes, _ := memNodes(t, net, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := nodes[1].Request(ctx, 2, KindController, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	// Its late response is ignored.
	net.DeliverAll()
	eventually(t, 2*time.Second, "response envelope", func() bool { return len(net.Pending()) == 1 })
	if net.DeliverAll() != 0 {
		t.Fatal("a response nobody waits for counted as delivered")
	}
}

func TestMemNetworkClose(t *testing.T) {
	net := NewMemNetwork()
	nodes, handlers := memNodes(t, net, 2)
	handlers[2].setOnRequest(func(ctx context.Context, _ int32, _ Kind, _ []byte) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	done := make(chan error, 1)
	go func() {
		_, err := nodes[1].Request(context.Background(), 2, KindController, nil)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	if err := net.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) && !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err %v", err)
	}
	if nodes[1].Send(2, KindRaft, nil) {
		t.Fatal("Send on a closed network")
	}
	if err := nodes[1].Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Close after network Close: %v", err)
	}
}
