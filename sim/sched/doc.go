// Package sched is the simulator's single-threaded, seeded scheduler:
// simulated time, an ordered queue of events, the run's one source of
// randomness, a trace whose hash fingerprints a run, and tasks — code
// that must block (a controller command waiting for its raft commit)
// run on goroutines that take turns with the scheduler in lock step, so
// that at any instant exactly one of them runs.
//
// Determinism: events run in (time, sequence) order, sequence being the
// order they were scheduled in; all randomness comes from Rand, seeded
// once. Given the same seed and the same code, a run schedules, draws and
// traces exactly the same, byte for byte.
package sched
