package simnet

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/troupe-io/troupe/sim/sched"
)

// Class is the kind of traffic a message belongs to. Datagram traffic may
// be reordered and duplicated; every other class is a FIFO stream of its
// own, ordered per link.
type Class uint8

const (
	// Datagram is traffic that may be dropped, reordered and duplicated,
	// such as raft messages.
	Datagram Class = 0
	// Stream is FIFO traffic, as over one TCP connection. Callers that model
	// several connections on one link may use further non-zero classes.
	Stream Class = 1
)

// FIFO reports whether messages of class c keep their order per link.
func (c Class) FIFO() bool { return c != Datagram }

func (c Class) String() string {
	switch c {
	case Datagram:
		return "datagram"
	case Stream:
		return "stream"
	}
	return fmt.Sprintf("stream%d", uint8(c))
}

// DropReason says why a message was not delivered.
type DropReason uint8

const (
	// DropFault is a drop injected by DropRate.
	DropFault DropReason = iota + 1
	// DropPartition is a drop because the link was cut when the message was
	// sent or when it landed.
	DropPartition
)

func (r DropReason) String() string {
	switch r {
	case DropFault:
		return "fault"
	case DropPartition:
		return "partition"
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}

// maxDelay bounds every configured delay (about 12.7 simulated days) so
// that the defaults derived from MaxDelay, and Now plus any delay, cannot
// overflow.
const maxDelay sched.Time = 1 << 40

// Config is the network's behaviour. The zero value delivers every message
// instantly, in order, exactly once.
type Config struct {
	// MinDelay and MaxDelay bound the latency of every delivery, drawn
	// uniformly. Negative values count as 0; MaxDelay below MinDelay counts
	// as MinDelay.
	MinDelay, MaxDelay sched.Time

	// Fault rates, each the probability per message, clamped to [0, 1]
	// (NaN counts as 0). They apply only while faults are on.
	DropRate      float64
	DuplicateRate float64 // datagrams only
	ReorderRate   float64 // datagrams only
	LongTailRate  float64

	// ReorderDelay bounds the extra delay of a reordered datagram, and how
	// far a duplicate lands behind its original. 0 means 4*MaxDelay, at least
	// a millisecond, so that a held-back message is overtaken.
	ReorderDelay sched.Time
	// LongTailDelay bounds the extra delay of a long-tail message. 0 means
	// 100*MaxDelay, at least 100ms.
	LongTailDelay sched.Time
	// Retransmit is what a lost stream message costs: streams model TCP,
	// which resends a lost segment after its retransmission timeout
	// instead of losing it. 0 means 200ms (Linux's minimum RTO).
	Retransmit sched.Time

	// OnDrop, if set, is called for every message, or copy of a duplicated
	// one, that will not be delivered. It runs inside Send or inside the
	// scheduler event where the message would have landed.
	OnDrop func(from, to int32, class Class, reason DropReason)
}

// normalized is c with every field in range and every default filled in,
// so that Send never sees a value rand would panic on.
func (c Config) normalized() Config {
	c.MinDelay = clampDelay(c.MinDelay)
	c.MaxDelay = max(clampDelay(c.MaxDelay), c.MinDelay)
	c.DropRate = clampRate(c.DropRate)
	c.DuplicateRate = clampRate(c.DuplicateRate)
	c.ReorderRate = clampRate(c.ReorderRate)
	c.LongTailRate = clampRate(c.LongTailRate)
	if c.ReorderDelay = clampDelay(c.ReorderDelay); c.ReorderDelay == 0 {
		c.ReorderDelay = max(4*c.MaxDelay, sched.Millisecond)
	}
	if c.Retransmit = clampDelay(c.Retransmit); c.Retransmit == 0 {
		c.Retransmit = 200 * sched.Millisecond
	}
	if c.LongTailDelay = clampDelay(c.LongTailDelay); c.LongTailDelay == 0 {
		c.LongTailDelay = max(100*c.MaxDelay, 100*sched.Millisecond)
	}
	return c
}

func clampDelay(d sched.Time) sched.Time { return min(max(d, 0), maxDelay) }

func clampRate(r float64) float64 {
	if math.IsNaN(r) || r < 0 {
		return 0
	}
	return min(r, 1)
}

// Stats counts what the network did. Every message sent, plus every
// duplicate, ends up delivered, dropped or still in flight:
//
//	Sent + Duplicated == Delivered + DroppedByFault + DroppedByPartition + InFlight
type Stats struct {
	Sent               uint64 // Send calls with a deliver callback
	Delivered          uint64 // deliver calls, duplicates included
	DroppedByFault     uint64 // drops injected by DropRate
	DroppedByPartition uint64 // drops by a cut link, at send or at landing
	Duplicated         uint64 // extra copies scheduled
	Reordered          uint64 // datagrams held back so later ones overtake them
	LongDelayed        uint64 // messages given a long-tail delay
	Retransmitted      uint64 // stream messages lost once and sent again
	InFlight           uint64 // copies scheduled that have not landed yet
}

// link is one direction between two nodes.
type link struct{ from, to int32 }

// streamKey is one FIFO stream: a link and a class.
type streamKey struct {
	link
	class Class
}

// Network is the simulated network. Like the scheduler it is not safe for
// concurrent use; everything runs on the scheduler's turn.
type Network struct {
	s      *sched.Scheduler
	cfg    Config
	faulty bool
	stats  Stats

	// Cuts. A link is connected unless one of these says otherwise; the
	// maps are only ever looked up, never ranged over, to keep runs
	// deterministic.
	group    map[int32]int // partition group of each listed node
	oneWay   map[link]bool
	isolated map[int32]bool

	// lastLanding is, per FIFO stream, when its latest message lands. A
	// stream message lands no earlier, and the scheduler runs events at
	// the same time in the order they were scheduled, so a stream never
	// reorders. It holds one entry per stream ever used: bounded by the
	// number of links times classes.
	lastLanding map[streamKey]sched.Time
}

// New returns a network on s with faults on and no link cut.
func New(s *sched.Scheduler, cfg Config) *Network {
	return &Network{
		s:           s,
		cfg:         cfg.normalized(),
		faulty:      true,
		group:       make(map[int32]int),
		oneWay:      make(map[link]bool),
		isolated:    make(map[int32]bool),
		lastLanding: make(map[streamKey]sched.Time),
	}
}

// Config is the configuration in use, ranges clamped and defaults filled.
func (n *Network) Config() Config { return n.cfg }

// SetFaulty turns fault injection on or off. Off, messages are neither
// dropped, duplicated, reordered nor long-delayed, and every new message
// takes [MinDelay, MaxDelay] — though a stream message still lands no
// earlier than one sent before it. Cut links stay cut until Heal.
func (n *Network) SetFaulty(on bool) { n.faulty = on }

// Faulty reports whether faults are injected.
func (n *Network) Faulty() bool { return n.faulty }

// Stats is a snapshot of the counters.
func (n *Network) Stats() Stats { return n.stats }

// Send sends a message from one node to another: unless it is dropped, the
// scheduler calls deliver once it lands (twice, at different times, if it
// is duplicated). It reports whether at least one delivery was scheduled;
// a scheduled delivery is still dropped if the link is cut when it lands.
// A nil deliver sends nothing.
func (n *Network) Send(from, to int32, class Class, deliver func()) bool {
	if deliver == nil {
		return false
	}
	n.stats.Sent++
	if !n.Connected(from, to) {
		n.drop(from, to, class, DropPartition)
		return false
	}
	// The draws below are made in this fixed order; which of them are made
	// depends only on the configuration, the fault switch, the class and
	// earlier draws, so the same seed gives the same schedule.
	rng := n.s.Rand()
	faulty := n.faulty
	lost := faulty && chance(rng, n.cfg.DropRate)
	if lost && !class.FIFO() {
		n.drop(from, to, class, DropFault)
		return false
	}
	land := n.s.Now() + n.latency(rng)
	if lost {
		// A stream runs over TCP, which does not lose a segment but
		// sends it again after a retransmission timeout; everything
		// behind it on the link waits (below).
		land += n.cfg.Retransmit
		n.stats.Retransmitted++
	}
	if faulty && chance(rng, n.cfg.LongTailRate) {
		land += 1 + sched.Time(rng.Int64N(int64(n.cfg.LongTailDelay)))
		n.stats.LongDelayed++
	}
	if class.FIFO() {
		k := streamKey{link{from, to}, class}
		land = max(land, n.lastLanding[k])
		n.lastLanding[k] = land
		n.schedule(land, from, to, class, deliver)
		return true
	}
	if faulty && chance(rng, n.cfg.ReorderRate) {
		land += 1 + n.extra(rng)
		n.stats.Reordered++
	}
	n.schedule(land, from, to, class, deliver)
	if faulty && chance(rng, n.cfg.DuplicateRate) {
		// The copy lands strictly after the original, as a retransmission
		// would, possibly long after it: a stale duplicate.
		n.schedule(land+1+n.extra(rng), from, to, class, deliver)
		n.stats.Duplicated++
	}
	return true
}

// latency is a delay drawn uniformly from [MinDelay, MaxDelay].
func (n *Network) latency(rng *rand.Rand) sched.Time {
	return n.cfg.MinDelay + sched.Time(rng.Int64N(int64(n.cfg.MaxDelay-n.cfg.MinDelay)+1))
}

// extra is a delay drawn uniformly from [0, ReorderDelay).
func (n *Network) extra(rng *rand.Rand) sched.Time {
	return sched.Time(rng.Int64N(int64(n.cfg.ReorderDelay)))
}

// chance draws once, unless p is 0 or 1: a rate that cannot fire, or must,
// costs no draw.
func chance(rng *rand.Rand, p float64) bool {
	switch p {
	case 0:
		return false
	case 1:
		return true
	}
	return rng.Float64() < p
}

// schedule makes one copy land at the given time; the link is checked
// again then.
func (n *Network) schedule(at sched.Time, from, to int32, class Class, deliver func()) {
	n.stats.InFlight++
	n.s.At(at, func() {
		n.stats.InFlight--
		if !n.Connected(from, to) {
			n.drop(from, to, class, DropPartition)
			return
		}
		n.stats.Delivered++
		deliver()
	})
}

func (n *Network) drop(from, to int32, class Class, reason DropReason) {
	if reason == DropFault {
		n.stats.DroppedByFault++
	} else {
		n.stats.DroppedByPartition++
	}
	if n.cfg.OnDrop != nil {
		n.cfg.OnDrop(from, to, class, reason)
	}
}

// Connected reports whether a message from one node would reach the other
// now. A node always reaches itself.
func (n *Network) Connected(from, to int32) bool {
	if from == to {
		return true
	}
	if n.isolated[from] || n.isolated[to] || n.oneWay[link{from, to}] {
		return false
	}
	gf, listedFrom := n.group[from]
	gt, listedTo := n.group[to]
	return !listedFrom || !listedTo || gf == gt
}

// Partition splits the nodes listed into groups and cuts every link
// between different groups, both ways. It replaces the previous
// partition; nodes not listed stay connected to everyone, and one-way
// cuts and isolations stay as they are. A node listed in several groups
// belongs to the last. Partition with no groups removes the partition.
func (n *Network) Partition(groups ...[]int32) {
	clear(n.group)
	for i, g := range groups {
		for _, node := range g {
			n.group[node] = i
		}
	}
}

// CutOneWay cuts the link from one node to the other; the other direction
// is untouched. Cutting a node from itself does nothing.
func (n *Network) CutOneWay(from, to int32) {
	if from != to {
		n.oneWay[link{from, to}] = true
	}
}

// Isolate cuts every link to and from node.
func (n *Network) Isolate(node int32) { n.isolated[node] = true }

// Heal restores every link: no partition, one-way cut or isolation
// remains.
func (n *Network) Heal() {
	clear(n.group)
	clear(n.oneWay)
	clear(n.isolated)
}
