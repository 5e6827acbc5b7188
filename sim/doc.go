// Package sim will host the very same actor cores the daemon runs on a
// seeded, single-threaded scheduler with a simulated network, clock and
// disk, with fault injection and invariant checkers.
//
// Not built yet. The seams it needs already exist: actor cores take time
// as message fields and do no I/O (see actors/partition), and storage is
// reached only through package partlog.
package sim
