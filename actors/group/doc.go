// Package group is the deterministic core of one consumer group's
// coordinator.
//
// A Core is a plain state machine in the shape of etcd raft's RawNode and
// of package actors/partition: Step feeds it one input (a Kafka group
// request, the completion of a write to the offsets topic, a clock tick)
// and Ready hands back what it decided — replies to send and records to
// append to the group's partition of the offsets topic. It reads no clock
// (time arrives in the inputs), starts no goroutine, draws no random
// number (fresh member ids arrive in the inputs) and does no I/O, so the
// daemon (package actors, on protoactor-go) and the simulator (package
// sim) run the very same code.
//
// One Core is one group. It speaks both of Kafka's group protocols:
//
//   - classic (JoinGroup, SyncGroup, Heartbeat, LeaveGroup): member ids
//     with the KIP-394 two-step join, generations, protocol selection
//     across members, the leader computing assignments, rebalances on
//     join, leave, session timeout and rebalance timeout,
//     group.initial.rebalance.delay.ms and KIP-345 static membership;
//   - consumer (KIP-848 ConsumerGroupHeartbeat): member epochs and
//     server-side assignment (uniform and range assignors) with
//     incremental reconciliation, so no member stops the world.
//
// and it owns the group's committed offsets (OffsetCommit, OffsetFetch,
// OffsetDelete, DeleteGroups, offset expiry).
//
// Durability. Committed offsets and classic group metadata are records of
// Kafka's own __consumer_offsets format (kmsg OffsetCommitKey/Value,
// GroupMetadataKey/Value), so tools that read that topic work unchanged.
// A commit is acknowledged only once the append that carries it completed
// (the host appends with acks=-1); at most one append is in flight, and
// the records decided meanwhile go out together in the next one. A new
// coordinator rebuilds the group from those records (Replay).
package group
