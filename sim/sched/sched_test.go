package sched

import (
	"errors"
	"fmt"
	"testing"
)

func TestEventsRunInTimeThenScheduleOrder(t *testing.T) {
	s := New(1)
	var got []string
	s.At(20, func() { got = append(got, "b") })
	s.At(10, func() { got = append(got, "a") })
	s.At(20, func() { got = append(got, "c") })
	e := s.At(15, func() { got = append(got, "cancelled") })
	e.Cancel()
	s.At(5, func() { s.After(0, func() { got = append(got, "nested") }) })
	s.RunUntil(100, nil)
	if fmt.Sprint(got) != "[nested a b c]" {
		t.Fatalf("order %v", got)
	}
	if s.Now() != 100 {
		t.Fatalf("now %v, want 100", s.Now())
	}
}

func TestRunUntilStops(t *testing.T) {
	s := New(1)
	n := 0
	var tick func()
	tick = func() { n++; s.After(Millisecond, tick) }
	s.After(0, tick)
	if !s.RunUntil(Second, func() bool { return n == 10 }) {
		t.Fatal("stop condition did not end the run")
	}
	if n != 10 || s.Now() != 9*Millisecond {
		t.Fatalf("n=%d now=%v", n, s.Now())
	}
}

func TestSameSeedSameTrace(t *testing.T) {
	run := func(seed uint64) string {
		s := New(seed)
		for i := range 100 {
			d := Time(s.Rand().IntN(1000))
			s.After(d, func() { s.Tracef("event %d at %d", i, d) })
		}
		s.RunUntil(Second, nil)
		return s.TraceHash()
	}
	if a, b := run(7), run(7); a != b {
		t.Fatal("same seed, different traces")
	}
	if run(7) == run(8) {
		t.Fatal("different seeds, same trace")
	}
}

func TestTaskTakesTurns(t *testing.T) {
	s := New(1)
	var log []string
	s.Go("sleeper", func(tk *Task) {
		log = append(log, "start")
		if err := tk.Sleep(10 * Millisecond); err != nil {
			t.Error(err)
		}
		log = append(log, fmt.Sprint("woke at ", s.Now()))
	})
	log = append(log, "after go")
	s.At(5*Millisecond, func() { log = append(log, "event at 5ms") })
	s.RunUntil(Second, nil)
	want := "[start after go event at 5ms woke at 0.010000s]"
	if fmt.Sprint(log) != want {
		t.Fatalf("log %v, want %v", log, want)
	}
}

func TestAwaitWokenDuringRegisterAndStaleWakes(t *testing.T) {
	s := New(1)
	var stale func()
	done := false
	s.Go("t", func(tk *Task) {
		if err := tk.Await(func(wake func()) { wake() }); err != nil {
			t.Error(err)
		}
		_ = tk.Await(func(wake func()) { stale = wake; s.After(Millisecond, wake) })
		// A second wake from the first Await must not end this one.
		_ = tk.Await(func(wake func()) { stale(); s.After(5*Millisecond, wake) })
		if s.Now() != 6*Millisecond {
			t.Errorf("woke at %v", s.Now())
		}
		done = true
	})
	s.RunUntil(Second, nil)
	if !done {
		t.Fatal("task did not finish")
	}
}

func TestKillUnwindsAParkedTask(t *testing.T) {
	s := New(1)
	var err error
	tk := s.Go("t", func(tk *Task) {
		err = tk.Await(func(func()) {})
	})
	tk.Kill()
	if !errors.Is(err, ErrKilled) || !tk.Done() {
		t.Fatalf("err %v done %v", err, tk.Done())
	}
	s.Go("parked", func(tk *Task) { _ = tk.Await(func(func()) {}) })
	s.Close()
}

func TestTaskPanicReachesScheduler(t *testing.T) {
	s := New(1)
	defer func() {
		if recover() == nil {
			t.Fatal("panic was swallowed")
		}
	}()
	s.Go("boom", func(*Task) { panic("boom") })
}
