package simnet

import (
	"fmt"
	"math"
	"testing"

	"github.com/troupe-io/troupe/sim/sched"
)

// landing is one deliver call: which message, on which link, when.
type landing struct {
	from, to int32
	class    Class
	id       int
	sent, at sched.Time
}

// recorder sends numbered messages and records every delivery.
type recorder struct {
	s    *sched.Scheduler
	net  *Network
	got  []landing
	next int
}

func newRecorder(seed uint64, cfg Config) *recorder {
	s := sched.New(seed)
	return &recorder{s: s, net: New(s, cfg)}
}

// send sends the next numbered message and returns its id.
func (r *recorder) send(from, to int32, class Class) (int, bool) {
	id, sent := r.next, r.s.Now()
	r.next++
	ok := r.net.Send(from, to, class, func() {
		r.got = append(r.got, landing{from, to, class, id, sent, r.s.Now()})
	})
	return id, ok
}

// sendEvery sends count messages on from→to, one every gap, then runs
// until everything has landed.
func (r *recorder) sendEvery(count int, gap sched.Time, from, to int32, class Class) {
	start, cfg := r.s.Now(), r.net.Config()
	for i := range count {
		r.s.At(start+sched.Time(i)*gap, func() { r.send(from, to, class) })
	}
	r.s.RunUntil(start+sched.Time(count)*gap+cfg.MaxDelay+cfg.LongTailDelay+2*cfg.ReorderDelay, nil)
}

func checkAccounting(t *testing.T, st Stats) {
	t.Helper()
	if st.Sent+st.Duplicated != st.Delivered+st.DroppedByFault+st.DroppedByPartition+st.InFlight {
		t.Fatalf("stats do not add up: %+v", st)
	}
}

func TestDelaysWithinBounds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		faulty bool
		min    sched.Time
		max    sched.Time
	}{
		{"zero config is instant", Config{}, true, 0, 0},
		{"uniform", Config{MinDelay: 2 * sched.Millisecond, MaxDelay: 5 * sched.Millisecond}, true, 2000, 5000},
		{"fixed", Config{MinDelay: 3000, MaxDelay: 3000}, true, 3000, 3000},
		{"faults off ignore every rate", Config{MinDelay: 1000, MaxDelay: 4000, DropRate: 1, DuplicateRate: 1, ReorderRate: 1, LongTailRate: 1}, false, 1000, 4000},
		{"max below min counts as min", Config{MinDelay: 3000, MaxDelay: 1000}, true, 3000, 3000},
		{"negative delays count as zero", Config{MinDelay: -5, MaxDelay: -1}, true, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder(1, tc.cfg)
			r.net.SetFaulty(tc.faulty)
			for _, class := range []Class{Datagram, Stream} {
				r.sendEvery(2000, 10*sched.Millisecond, 1, 2, class)
			}
			if len(r.got) != 4000 {
				t.Fatalf("%d deliveries, want 4000", len(r.got))
			}
			lo, hi := sched.Time(math.MaxInt64), sched.Time(0)
			for _, l := range r.got {
				d := l.at - l.sent
				lo, hi = min(lo, d), max(hi, d)
			}
			if lo < tc.min || hi > tc.max {
				t.Fatalf("delays in [%d, %d], want within [%d, %d]", lo, hi, tc.min, tc.max)
			}
			if tc.min < tc.max && (lo > tc.min+100 || hi < tc.max-100) {
				t.Fatalf("delays in [%d, %d] do not spread over [%d, %d]", lo, hi, tc.min, tc.max)
			}
			st := r.net.Stats()
			if st.DroppedByFault+st.Duplicated+st.Reordered+st.LongDelayed != 0 {
				t.Fatalf("faults injected: %+v", st)
			}
			checkAccounting(t, st)
		})
	}
}

func TestStreamKeepsOrderPerLink(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"reorder and duplicate on", Config{MinDelay: 0, MaxDelay: 10 * sched.Millisecond, DuplicateRate: 0.5, ReorderRate: 0.5}},
		{"long tails", Config{MinDelay: 0, MaxDelay: 10 * sched.Millisecond, LongTailRate: 0.05}},
		{"drops", Config{MinDelay: 0, MaxDelay: 10 * sched.Millisecond, DropRate: 0.3, LongTailRate: 0.05}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder(3, tc.cfg)
			// Two links and two stream classes, interleaved, sent faster
			// than the delay spread so that reordering would show.
			streams := []streamKey{{link{1, 2}, Stream}, {link{2, 1}, Stream}, {link{1, 2}, Stream + 1}}
			for i := range 3000 {
				k := streams[i%len(streams)]
				r.s.At(sched.Time(i)*100, func() { r.send(k.from, k.to, k.class) })
			}
			r.s.RunUntil(10*sched.Second, nil)
			last := map[streamKey]int{}
			for _, l := range r.got {
				k := streamKey{link{l.from, l.to}, l.class}
				if prev, ok := last[k]; ok && l.id <= prev {
					t.Fatalf("stream %v: message %d landed after %d", k, l.id, prev)
				}
				last[k] = l.id
			}
			st := r.net.Stats()
			want := 3000 - int(st.DroppedByFault)
			if len(r.got) != want || st.Duplicated != 0 || st.Reordered != 0 || st.InFlight != 0 {
				t.Fatalf("%d deliveries, want %d; stats %+v", len(r.got), want, st)
			}
			checkAccounting(t, st)
		})
	}
}

// Datagrams sent one per gap, a gap wider than the delay spread, land in
// order unless held back; held-back ones are overtaken.
func TestDatagramFaultRates(t *testing.T) {
	const count = 20000
	base := Config{MinDelay: 1000, MaxDelay: 2000, ReorderDelay: 100 * sched.Millisecond}
	with := func(f func(*Config)) Config { c := base; f(&c); return c }
	for _, tc := range []struct {
		name                       string
		cfg                        Config
		drop, dup, overtaken, tail float64 // fractions of count
	}{
		{"no faults", base, 0, 0, 0, 0},
		{"drops", with(func(c *Config) { c.DropRate = 0.2 }), 0.2, 0, 0, 0},
		{"duplicates", with(func(c *Config) { c.DuplicateRate = 0.3 }), 0, 0.3, 0, 0},
		{"reorders", with(func(c *Config) { c.ReorderRate = 0.1 }), 0, 0, 0.1, 0},
		{"long tails", with(func(c *Config) { c.LongTailRate = 0.05; c.LongTailDelay = sched.Second }), 0, 0, 0.05, 0.05},
		{"everything", with(func(c *Config) { c.DropRate = 0.1; c.DuplicateRate = 0.1; c.ReorderRate = 0.1 }), 0.1, 0.09, 0.09, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder(5, tc.cfg)
			r.sendEvery(count, 5*sched.Millisecond, 1, 2, Datagram)
			st := r.net.Stats()
			checkAccounting(t, st)
			copies := map[int]int{}
			first := map[int]sched.Time{}
			overtaken, maxID := 0, -1
			for _, l := range r.got {
				copies[l.id]++
				if copies[l.id] > 1 {
					if l.at <= first[l.id] {
						t.Fatalf("message %d: duplicate landed at %d, not after the original at %d", l.id, l.at, first[l.id])
					}
					continue // a duplicate: late, but not overtaken
				}
				first[l.id] = l.at
				if l.id < maxID {
					overtaken++
				}
				maxID = max(maxID, l.id)
			}
			dups := 0
			for _, c := range copies {
				dups += c - 1
				if c > 2 {
					t.Fatalf("a message landed %d times", c)
				}
			}
			near := func(what string, got int, want float64) {
				t.Helper()
				if f := float64(got) / count; math.Abs(f-want) > 0.015 {
					t.Errorf("%s: %.4f of messages, want about %.2f", what, f, want)
				}
			}
			near("dropped", count-len(copies), tc.drop)
			near("duplicated", dups, tc.dup)
			near("overtaken", overtaken, tc.overtaken)
			near("long-delayed", int(st.LongDelayed), tc.tail)
			if int(st.Duplicated) != dups || int(st.DroppedByFault) != count-len(copies) {
				t.Errorf("stats %+v disagree with %d duplicates and %d drops seen", st, dups, count-len(copies))
			}
		})
	}
}

func TestPartitions(t *testing.T) {
	type pair struct{ from, to int32 }
	all := []int32{1, 2, 3, 100}
	for _, tc := range []struct {
		name string
		cut  func(n *Network)
		down []pair // every other ordered pair of all must be connected
	}{
		{"none", func(n *Network) {}, nil},
		{"symmetric", func(n *Network) { n.Partition([]int32{1, 2}, []int32{3}) },
			[]pair{{1, 3}, {3, 1}, {2, 3}, {3, 2}}},
		{"new partition replaces old", func(n *Network) {
			n.Partition([]int32{1, 2}, []int32{3})
			n.Partition([]int32{1}, []int32{2, 3})
		}, []pair{{1, 2}, {2, 1}, {1, 3}, {3, 1}}},
		{"empty partition removes it", func(n *Network) { n.Partition([]int32{1}, []int32{2}); n.Partition() }, nil},
		{"one way", func(n *Network) { n.CutOneWay(1, 2) }, []pair{{1, 2}}},
		{"isolate", func(n *Network) { n.Isolate(2) },
			[]pair{{1, 2}, {2, 1}, {3, 2}, {2, 3}, {100, 2}, {2, 100}}},
		{"combined", func(n *Network) { n.Partition([]int32{1}, []int32{2, 3}); n.CutOneWay(2, 3) },
			[]pair{{1, 2}, {2, 1}, {1, 3}, {3, 1}, {2, 3}}},
		{"heal", func(n *Network) {
			n.Partition([]int32{1}, []int32{2, 3})
			n.CutOneWay(3, 100)
			n.Isolate(1)
			n.CutOneWay(2, 2)
			n.Heal()
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder(1, Config{MinDelay: 1000, MaxDelay: 1000})
			tc.cut(r.net)
			down := map[pair]bool{}
			for _, p := range tc.down {
				down[p] = true
			}
			sent := map[int]pair{}
			for _, from := range all {
				for _, to := range all {
					p := pair{from, to}
					if got := r.net.Connected(from, to); got == down[p] {
						t.Errorf("Connected(%d, %d) = %v", from, to, got)
					}
					id, ok := r.send(from, to, Datagram)
					if ok == down[p] {
						t.Errorf("Send(%d, %d) = %v", from, to, ok)
					}
					sent[id] = p
				}
			}
			r.s.RunUntil(sched.Second, nil)
			landed := map[pair]bool{}
			for _, l := range r.got {
				landed[sent[l.id]] = true
			}
			for _, p := range sent {
				if landed[p] == down[p] {
					t.Errorf("%d→%d: landed %v", p.from, p.to, landed[p])
				}
			}
			st := r.net.Stats()
			if int(st.DroppedByPartition) != len(tc.down) {
				t.Errorf("DroppedByPartition %d, want %d", st.DroppedByPartition, len(tc.down))
			}
			checkAccounting(t, st)
		})
	}
}

func TestCutWhileInFlight(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cut      func(n *Network)
		heal     bool // heal again before the message lands
		delivers bool
	}{
		{"cut before landing drops", func(n *Network) { n.Partition([]int32{1}, []int32{2}) }, false, false},
		{"isolate before landing drops", func(n *Network) { n.Isolate(2) }, false, false},
		{"one-way cut in the direction drops", func(n *Network) { n.CutOneWay(1, 2) }, false, false},
		{"one-way cut the other way does not", func(n *Network) { n.CutOneWay(2, 1) }, false, true},
		{"cut healed before landing does not", func(n *Network) { n.Isolate(1) }, true, true},
	} {
		for _, class := range []Class{Datagram, Stream} {
			t.Run(fmt.Sprintf("%s/%v", tc.name, class), func(t *testing.T) {
				var drops []DropReason
				r := newRecorder(1, Config{MinDelay: 10 * sched.Millisecond, MaxDelay: 10 * sched.Millisecond,
					OnDrop: func(from, to int32, c Class, why DropReason) {
						if from != 1 || to != 2 || c != class {
							t.Errorf("OnDrop(%d, %d, %v)", from, to, c)
						}
						drops = append(drops, why)
					}})
				if _, ok := r.send(1, 2, class); !ok {
					t.Fatal("not sent")
				}
				r.s.At(5*sched.Millisecond, func() { tc.cut(r.net) })
				if tc.heal {
					r.s.At(7*sched.Millisecond, r.net.Heal)
				}
				r.s.RunUntil(sched.Second, nil)
				if got := len(r.got) == 1; got != tc.delivers {
					t.Fatalf("delivered %v, want %v", got, tc.delivers)
				}
				st := r.net.Stats()
				if !tc.delivers && (st.DroppedByPartition != 1 || fmt.Sprint(drops) != "[partition]") {
					t.Fatalf("stats %+v, drops %v", st, drops)
				}
				checkAccounting(t, st)
			})
		}
	}
}

func TestLivenessPhase(t *testing.T) {
	r := newRecorder(9, Config{MinDelay: 1000, MaxDelay: 3000, DropRate: 0.5, DuplicateRate: 0.5, ReorderRate: 0.5, LongTailRate: 0.5})
	r.net.Partition([]int32{1}, []int32{2})
	r.net.SetFaulty(false)
	if r.net.Faulty() {
		t.Fatal("still faulty")
	}
	if _, ok := r.send(1, 2, Datagram); ok {
		t.Fatal("partition lifted by SetFaulty(false)")
	}
	r.net.Heal()
	r.sendEvery(1000, 10*sched.Millisecond, 1, 2, Datagram)
	if len(r.got) != 1000 {
		t.Fatalf("%d of 1000 delivered with faults off", len(r.got))
	}
	for i, l := range r.got {
		if l.id != i+1 || l.at-l.sent < 1000 || l.at-l.sent > 3000 {
			t.Fatalf("landing %d: %+v", i, l)
		}
	}
}

func TestSameSeedSameSchedule(t *testing.T) {
	run := func(seed uint64) []landing {
		r := newRecorder(seed, Config{MinDelay: 100, MaxDelay: 5000, DropRate: 0.1, DuplicateRate: 0.1, ReorderRate: 0.2, LongTailRate: 0.01})
		for i := range 2000 {
			from, to, class := int32(i%3), int32((i+1)%3), Class(i%2)
			r.s.At(sched.Time(i)*300, func() {
				if i == 1000 {
					r.net.Isolate(2)
				}
				if i == 1500 {
					r.net.Heal()
				}
				r.send(from, to, class)
			})
		}
		r.s.RunUntil(60*sched.Second, nil)
		return r.got
	}
	a, b, c := run(11), run(11), run(12)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("same seed, different delivery schedules")
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Fatal("different seeds, same delivery schedule")
	}
}

func TestBadInputDoesNotPanic(t *testing.T) {
	r := newRecorder(1, Config{
		MinDelay: math.MaxInt64, MaxDelay: -1,
		DropRate: math.NaN(), DuplicateRate: -3, ReorderRate: 7, LongTailRate: math.Inf(1),
		ReorderDelay: -1, LongTailDelay: math.MaxInt64,
	})
	cfg := r.net.Config()
	if cfg.MinDelay != maxDelay || cfg.MaxDelay != maxDelay || cfg.DropRate != 0 || cfg.DuplicateRate != 0 ||
		cfg.ReorderRate != 1 || cfg.LongTailRate != 1 || cfg.ReorderDelay <= 0 || cfg.LongTailDelay != maxDelay {
		t.Fatalf("normalized %+v", cfg)
	}
	if r.net.Send(1, 2, Datagram, nil) {
		t.Fatal("nil deliver sent")
	}
	if _, ok := r.send(1, 2, Datagram); !ok {
		t.Fatal("not sent")
	}
	if st := r.net.Stats(); st.Sent != 1 || st.InFlight != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestStreamLossIsARetransmission: a stream message drawn as lost lands
// anyway, a retransmission timeout late, and holds back the ones behind
// it; a datagram drawn as lost is gone.
func TestStreamLossIsARetransmission(t *testing.T) {
	s := sched.New(1)
	n := New(s, Config{MinDelay: sched.Millisecond, MaxDelay: sched.Millisecond, DropRate: 1, Retransmit: 200 * sched.Millisecond})
	n.SetFaulty(true)
	var landed []sched.Time
	for range 3 {
		n.Send(1, 2, Stream, func() { landed = append(landed, s.Now()) })
	}
	dgram := false
	n.Send(1, 2, Datagram, func() { dgram = true })
	s.RunUntil(sched.Second, nil)
	if len(landed) != 3 || dgram {
		t.Fatalf("landed %v, datagram delivered %v", landed, dgram)
	}
	for _, at := range landed {
		if at < 201*sched.Millisecond {
			t.Fatalf("a lost stream message landed at %v, before its retransmission", at)
		}
	}
	if st := n.Stats(); st.Retransmitted != 3 || st.DroppedByFault != 1 {
		t.Fatalf("stats %+v", st)
	}
}
