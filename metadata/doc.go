// Package metadata holds the cluster's metadata as a log of records applied
// by a pure function to an immutable Image: brokers, topics, partitions
// (replicas, leader, ISR, epochs), topic configs and producer-id blocks.
//
// Every node answers Metadata requests from its current Image. The
// Controller validates administrative commands (create/delete topics, add
// partitions, alter configs, allocate producer ids), turns them into
// records, makes them durable in a Journal and applies them. On a single
// node the Journal is a local Pebble-backed log; the cluster issue puts an
// etcd-raft quorum behind the same Journal interface, so Apply and the
// Image do not change.
//
// Invariant: an Image is never mutated after it is published; Apply copies
// what it changes (copy-on-write), so readers need no locks.
package metadata
