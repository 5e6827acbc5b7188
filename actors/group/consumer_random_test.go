package group

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestConsumerRandomized drives a group through seeded random sequences
// of joins, keepalives, revocations, lost responses, leaves (dynamic and
// static), subscription changes, topic growth and session expiry, and
// checks after every step that no partition is held by two members on
// the coordinator nor consumed by two live clients. Then every client
// joins and reconciles, and the group must settle: Stable, every
// subscribed partition assigned once, balanced. Each seed runs twice and
// must produce the same transcript (the core is deterministic).
func TestConsumerRandomized(t *testing.T) {
	seeds, steps := 24, 1500
	if testing.Short() {
		seeds = 6
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			first := runRandomGroup(t, seed, steps)
			if again := runRandomGroup(t, seed, steps); again != first {
				t.Fatalf("same inputs, different outputs")
			}
		})
	}
}

func runRandomGroup(t *testing.T, seed uint64, steps int) string {
	rng := rand.New(rand.NewPCG(seed, 848))
	s := DefaultSettings()
	s.ConsumerSessionTimeoutMs = 10000
	s.ConsumerHeartbeatIntervalMs = 1000
	s.ConsumerMaxSize = 6
	h := newHarness(t, s)
	h.view.partitions["t1"] = 7
	h.view.partitions["t2"] = 4
	h.view.partitions["x"] = 3

	var names []string
	for i := range 8 {
		name := fmt.Sprintf("c%d", i)
		names = append(names, name)
		cl := h.client(name)
		cl.rebalance = 5000
		if i < 3 {
			inst := "inst-" + name
			cl.instanceID = &inst
		}
	}
	subscriptions := [][]string{{"t1", "t2"}, {"t1"}, {"t2", "x"}, {"t1", "t2", "x"}}
	fresh := 0
	var transcript strings.Builder
	record := func(what string, cl *testClient, resp *kmsg.ConsumerGroupHeartbeatResponse) {
		switch resp.ErrorCode {
		case 0:
		case kerr.UnknownMemberID.Code:
			fresh++
			cl.id = fmt.Sprintf("%s-%d", cl.name, fresh) // a new member id, as franz-go draws
		case kerr.FencedMemberEpoch.Code, kerr.UnreleasedInstanceID.Code, kerr.GroupMaxSizeReached.Code:
		default:
			t.Fatalf("%s %s: unexpected error %d %v", what, cl.name, resp.ErrorCode, resp.ErrorMessage)
		}
		fmt.Fprintf(&transcript, "%d %s %s", h.now, what, fmtResponse(cl.name, resp))
	}
	heartbeat := func(cl *testClient, kind string) {
		if cl.epoch == 0 {
			kind = "join"
		}
		resp := h.heartbeat(cl, kind)
		record(kind, cl, resp)
	}

	for range steps {
		h.now += int64(rng.IntN(400))
		cl := h.clients[names[rng.IntN(len(names))]]
		switch op := rng.IntN(20); {
		case op < 6:
			heartbeat(cl, "keepalive")
		case op < 10:
			cl.revoke()
			heartbeat(cl, "full")
		case op < 12:
			heartbeat(cl, "full")
		case op < 13:
			// The response is lost: the coordinator moved on, the
			// client did not.
			if cl.epoch != 0 {
				h.step(cl.request("full"))
				fmt.Fprintf(&transcript, "%d lost %s\n", h.now, cl.name)
			}
		case op < 14:
			if cl.epoch != 0 {
				resp := h.leave(cl, cl.instanceID != nil && rng.IntN(2) == 0)
				record("leave", cl, resp)
			}
		case op < 15:
			cl.topics = subscriptions[rng.IntN(len(subscriptions))]
			if rng.IntN(4) == 0 {
				re := "t.*"
				cl.regex = &re
			} else if cl.regex != nil {
				cl.regex = new(string)
			}
			heartbeat(cl, "full")
		case op < 16 && rng.IntN(10) == 0:
			topic := []string{"t1", "t2", "x"}[rng.IntN(3)]
			if h.view.partitions[topic] < 12 {
				h.view.partitions[topic]++
			}
		default:
			h.c.Step(Tick{NowMs: h.now})
			h.c.Ready()
		}
		h.checkInvariants()
		if next := h.c.NextTickMs(); (next < 0) != (len(h.c.consumer.members) == 0) {
			t.Fatalf("NextTickMs %d with %d members", next, len(h.c.consumer.members))
		}
	}

	// Everyone (re)joins with the same subscription and reconciles.
	for _, name := range names[:6] {
		cl := h.clients[name]
		cl.topics = []string{"t1", "t2", "x"}
		cl.regex = nil
		if cl.epoch != 0 {
			h.leave(cl, false)
		}
	}
	h.now += 20000 // sessions of clients that stopped expire
	h.c.Step(Tick{NowMs: h.now})
	h.c.Ready()
	for round := 0; ; round++ {
		if round == 20 {
			t.Fatalf("seed %d: group did not settle:\n%s", seed, h.fmtState())
		}
		for _, name := range names[:6] {
			cl := h.clients[name]
			cl.revoke()
			heartbeat(cl, "full")
			h.checkInvariants()
		}
		if state, _ := h.c.consumerSummary(); state == "Stable" {
			break
		}
	}
	cs := &h.c.consumer
	total, counts := 0, []int{}
	for _, id := range cs.sortedMemberIDs() {
		m := cs.members[id]
		if !m.assigned.equal(m.target) {
			t.Fatalf("stable member %s: assigned %s, target %s", id, fmtAssignment(m.assigned), fmtAssignment(m.target))
		}
		total += m.assigned.size()
		counts = append(counts, m.assigned.size())
	}
	if want := int(h.view.partitions["t1"] + h.view.partitions["t2"] + h.view.partitions["x"]); total != want || len(counts) != 6 {
		t.Fatalf("seed %d: %d members own %d partitions, want 6 owning %d:\n%s", seed, len(counts), total, want, h.fmtState())
	}
	if slices.Max(counts)-slices.Min(counts) > 1 {
		t.Fatalf("seed %d: unbalanced %v:\n%s", seed, counts, h.fmtState())
	}
	return transcript.String()
}
