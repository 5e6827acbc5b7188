// Package metadata holds the cluster's metadata as a log of records applied
// by a pure function to an immutable Image: brokers (registration,
// incarnation, fencing), topics, partitions (replicas, leader, ISR,
// epochs, reassignments), topic configs and producer-id blocks.
//
// Every node answers Metadata requests from its current Image. The active
// Controller validates commands (topic administration, broker
// registration and heartbeats, ISR changes, leader elections,
// reassignments), turns each into a batch of records and proposes it
// through its Journal. Committed batches come back through
// Controller.Apply, in log order, on every node; a command returns once
// its batch is applied, so its caller sees the effect in Image. On a
// single node the Journal is a local fsynced file (FileJournal); in a
// cluster it is the raft quorum (package metadata/quorum), whose leader
// is the active controller. Everything is deterministic: time comes in
// as arguments, randomness from the io.Reader the Controller is given.
//
// Invariant: an Image is never mutated after it is published; Apply copies
// what it changes (copy-on-write), so readers need no locks.
package metadata
