// Package actors hosts Troupe's actors on protoactor-go.
//
// Each actor's behaviour is a deterministic core in a subpackage
// (actors/partition for partition leaders); this package is the thin shell
// that feeds a core its inputs — requests, timer ticks stamped with the
// clock, storage completions — and carries out what the core asks for:
// appends to the partition log, fsyncs, replies and wake-ups. Only this
// shell touches clocks, goroutines, files and channels.
package actors
