package sched

import (
	"errors"
	"fmt"
)

// ErrKilled is what Task.Await returns once the task was killed: the
// task must unwind and return.
var ErrKilled = errors.New("sched: task killed")

// Task is code that runs as if it had a thread of its own but takes turns
// with the scheduler: while it runs, the scheduler waits; when it awaits
// something, the scheduler goes on. Exactly one of them runs at any
// instant, so a task may touch simulator state without locks, and the run
// stays deterministic.
//
// A task may block only through Await (or Sleep). Blocking any other way
// (a mutex another task holds, a channel) hangs the simulation.
type Task struct {
	s      *Scheduler
	name   string
	resume chan struct{}
	parked bool
	killed bool
	done   bool
	// gen numbers the Awaits, so that a late wake from an earlier one
	// cannot end a later one.
	gen uint64
}

// taskExit is what a task hands the scheduler when it yields control:
// nothing when it parked, its panic when it died of one.
type taskExit struct {
	panicked any
	hasPanic bool
}

// Go starts fn as a task, right now: fn runs until it returns or awaits,
// before Go returns. A panic in fn is re-raised on the scheduler's
// goroutine.
func (s *Scheduler) Go(name string, fn func(t *Task)) *Task {
	t := &Task{s: s, name: name, resume: make(chan struct{})}
	s.tasks = append(s.tasks, t)
	go func() {
		<-t.resume
		exit := taskExit{}
		defer func() {
			if r := recover(); r != nil {
				exit = taskExit{panicked: r, hasPanic: true}
			}
			t.done = true
			s.yield <- exit
		}()
		if !t.killed {
			fn(t)
		}
	}()
	s.run(t)
	return t
}

// run hands control to t until it parks or ends.
func (s *Scheduler) run(t *Task) {
	prev := s.running
	s.running = t
	t.resume <- struct{}{}
	exit := <-s.yield
	s.running = prev
	if t.done {
		s.forget(t)
	}
	if exit.hasPanic {
		panic(fmt.Sprintf("sched: task %s: %v", t.name, exit.panicked))
	}
}

func (s *Scheduler) forget(t *Task) {
	for i, x := range s.tasks {
		if x == t {
			s.tasks = append(s.tasks[:i], s.tasks[i+1:]...)
			return
		}
	}
}

// Await parks the task until wake is called. register is called at once,
// on the task, with the wake function to hand to whoever finishes the
// wait; wake must be called from scheduler context (an event, or another
// task), and only the first call counts. It returns ErrKilled if the task
// was killed instead of woken.
func (t *Task) Await(register func(wake func())) error {
	if t.killed {
		return ErrKilled
	}
	t.gen++
	gen, registering, woken := t.gen, true, false
	register(func() {
		if woken || t.done || t.gen != gen {
			return
		}
		woken = true
		if !registering {
			t.s.At(t.s.now, func() { t.wakeNow(gen) })
		}
	})
	registering = false
	if woken { // woken inside register
		return nil
	}
	t.parked = true
	t.s.yield <- taskExit{}
	<-t.resume
	t.parked = false
	if t.killed {
		return ErrKilled
	}
	return nil
}

func (t *Task) wakeNow(gen uint64) {
	if t.done || !t.parked || t.gen != gen {
		return
	}
	t.s.run(t)
}

// Sleep parks the task for d of simulated time.
func (t *Task) Sleep(d Time) error {
	return t.Await(func(wake func()) { t.s.After(d, wake) })
}

// Kill makes the task's current or next Await return ErrKilled (its
// process died); the task then unwinds on its own, run right away.
func (t *Task) Kill() {
	if t.done || t.killed {
		return
	}
	t.killed = true
	if t.parked {
		t.s.run(t)
	}
}

// Name is the name the task was started with.
func (t *Task) Name() string { return t.name }

// Done reports whether the task has returned.
func (t *Task) Done() bool { return t.done }

// Close kills every task still parked, so that no goroutine outlives the
// run. The scheduler must not be used afterwards.
func (s *Scheduler) Close() {
	for len(s.tasks) > 0 {
		t := s.tasks[0]
		if t.done {
			s.forget(t)
			continue
		}
		t.Kill()
		if !t.done {
			// Killed but awaiting again: keep killing.
			s.forget(t)
		}
	}
}
