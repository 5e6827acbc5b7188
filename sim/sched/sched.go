package sched

import (
	"container/heap"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
)

// Time is simulated time in microseconds since the run began.
type Time int64

// Common durations.
const (
	Microsecond Time = 1
	Millisecond Time = 1000
	Second      Time = 1000 * Millisecond
)

// Ms is t in milliseconds, as Kafka and the actor cores count time.
func (t Time) Ms() int64 { return int64(t) / 1000 }

func (t Time) String() string { return fmt.Sprintf("%d.%06ds", t/Second, t%Second) }

// Event is one scheduled callback. Cancel stops it from running.
type Event struct {
	at        Time
	seq       uint64
	fn        func()
	cancelled bool
	index     int
}

// Cancel keeps the event from running; cancelling twice or after it ran
// does nothing.
func (e *Event) Cancel() {
	if e != nil {
		e.cancelled = true
	}
}

// At is when the event runs.
func (e *Event) At() Time { return e.at }

type eventHeap []*Event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *eventHeap) Push(x any)   { e := x.(*Event); e.index = len(*h); *h = append(*h, e) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// Scheduler runs events in simulated time. It is not safe for concurrent
// use: everything happens on the goroutine that calls Run*, or on a task
// while that goroutine waits for it (see Task).
type Scheduler struct {
	seed  uint64
	now   Time
	seq   uint64
	q     eventHeap
	rng   *rand.Rand
	steps uint64

	trace    hash.Hash
	traceOut io.Writer
	lineBuf  []byte

	tasks   []*Task // live tasks, for Close
	yield   chan taskExit
	running *Task
}

// New returns a scheduler at time 0 whose randomness is seeded with seed.
func New(seed uint64) *Scheduler {
	return &Scheduler{
		seed:  seed,
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		trace: sha256.New(),
		yield: make(chan taskExit),
	}
}

// Seed is the seed the scheduler was made with.
func (s *Scheduler) Seed() uint64 { return s.seed }

// Now is the current simulated time.
func (s *Scheduler) Now() Time { return s.now }

// Rand is the run's only source of randomness.
func (s *Scheduler) Rand() *rand.Rand { return s.rng }

// Steps is how many events have run.
func (s *Scheduler) Steps() uint64 { return s.steps }

// Pending is how many events are queued (cancelled ones included).
func (s *Scheduler) Pending() int { return len(s.q) }

// At schedules fn at t (now, if t is in the past). Events at the same
// time run in the order they were scheduled.
func (s *Scheduler) At(t Time, fn func()) *Event {
	if t < s.now {
		t = s.now
	}
	s.seq++
	e := &Event{at: t, seq: s.seq, fn: fn}
	heap.Push(&s.q, e)
	return e
}

// After schedules fn d from now.
func (s *Scheduler) After(d Time, fn func()) *Event { return s.At(s.now+d, fn) }

// Step runs the next event, advancing time to it. It reports false when
// nothing is queued.
func (s *Scheduler) Step() bool {
	for len(s.q) > 0 {
		e := heap.Pop(&s.q).(*Event)
		if e.cancelled {
			continue
		}
		s.now = e.at
		s.steps++
		e.fn()
		return true
	}
	return false
}

// RunUntil runs events up to and including time end, stopping early once
// stop (checked after every event; nil: never) returns true. Time ends at
// end unless stopped early. It returns whether stop ended it.
func (s *Scheduler) RunUntil(end Time, stop func() bool) bool {
	for len(s.q) > 0 {
		if stop != nil && stop() {
			return true
		}
		if s.peek() > end {
			break
		}
		s.Step()
	}
	if stop != nil && stop() {
		return true
	}
	if s.now < end {
		s.now = end
	}
	return false
}

// peek is the time of the next live event.
func (s *Scheduler) peek() Time {
	for len(s.q) > 0 && s.q[0].cancelled {
		heap.Pop(&s.q)
	}
	if len(s.q) == 0 {
		return 1<<63 - 1
	}
	return s.q[0].at
}

// SetTraceOutput also writes every trace line to w (nil: nowhere).
func (s *Scheduler) SetTraceOutput(w io.Writer) { s.traceOut = w }

// Tracef adds one line, stamped with the simulated time, to the trace.
// The trace hash covers every line ever added; what is traced must be
// deterministic (no pointers, no map order).
func (s *Scheduler) Tracef(format string, args ...any) {
	b := s.lineBuf[:0]
	b = fmt.Appendf(b, "%d ", int64(s.now))
	b = fmt.Appendf(b, format, args...)
	b = append(b, '\n')
	s.trace.Write(b)
	if s.traceOut != nil {
		s.traceOut.Write(b)
	}
	s.lineBuf = b
}

// TraceHash is the hex SHA-256 of the trace so far.
func (s *Scheduler) TraceHash() string {
	return hex.EncodeToString(s.trace.Sum(nil))
}

// Jitter is a uniform random duration in [0, d) (0 when d <= 0), drawn
// from Rand.
func (s *Scheduler) Jitter(d Time) Time {
	if d <= 0 {
		return 0
	}
	return Time(s.rng.Int64N(int64(d)))
}

// Seconds is t in seconds.
func (t Time) Seconds() float64 { return float64(t) / float64(Second) }
