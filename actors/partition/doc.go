// Package partition is the deterministic core of a partition replica.
//
// A Core is a plain state machine in the shape of etcd raft's RawNode:
// Step feeds it one input (a produce, a fetch, a watch, a storage
// completion, a clock tick, a replica's fetch, a role change) and Ready
// hands back everything it decided — appends to write, whether to fsync,
// reads to serve, replies to send, fetches to wake, ISR changes to
// propose. It reads no clock (time arrives in the inputs), starts no
// goroutine, draws no random number and does no I/O, so the daemon
// (package actors, on protoactor-go) and the simulator (package sim) run
// the very same code, and the same inputs always give the same outputs.
//
// Offsets. logEnd is the next offset to assign. durableEnd is the end of
// what storage has fsynced. The high watermark (hw) is what consumers may
// see and what ListOffsets(latest) reports:
//
//	logStart <= hw <= logEnd, and durableEnd <= logEnd
//
// A replica's replicated end is how far it counts as having the log: its
// durableEnd under the default durability stance (AckAfterSync), its
// logEnd with Kafka's relaxed flush settings (then fsyncs follow
// flush.messages/flush.ms). A record is committed once every ISR member's
// replicated end passes it; the high watermark is the committed end, so
// under AckAfterSync a consumer never sees, and acks=-1 never
// acknowledges, a record a crash of ISR members could take back.
//
// Replication follows Kafka's ISR model. New makes the single-replica
// leader (replicas = ISR = itself), which behaves as a lone partition
// always has: its high watermark is its own replicated end. A replicated
// partition's core (NewReplica) is told its role by the host
// (BecomeLeader, BecomeFollower, PartitionChanged from the metadata
// image):
//
//   - The leader assigns offsets, stamps its leader epoch, and answers
//     followers' fetches (ReplicaFetch, parked with ReplicaWatch) with
//     reads up to its log end. A follower's fetch offset is its
//     replicated end; the leader keeps it (Kafka's replica state, with
//     lastCaughtUpTimeMs) and sets hw to the least replicated end over
//     the maximal ISR (KIP-497: the committed ISR plus members a pending
//     change adds). acks=-1 completes once hw passes the records; acks=1
//     once the leader's own storage has them.
//   - ISR changes are proposed, never applied: a member that has not
//     caught up for replica.lag.time.max.ms, or a non-member that has
//     reached hw and the leader's epoch, yields Ready.AlterISR for the
//     controller; only its answer (AlterISRResult, matched by Seq) or a
//     metadata update changes the ISR. At most one change is pending, so
//     a stale leader, fenced by the controller, cannot change anything.
//   - A follower appends the leader's batches as fetched (FollowerAppend)
//     and keeps the producer table from their headers, so idempotent
//     retries are deduplicated after a failover too. Its high watermark
//     is the leader's, bounded by its own replicated end. Truncation is
//     decided by the host's fetcher (KIP-320, OffsetForLeaderEpoch) and
//     reported as TruncateTo / TruncateFully.
//
// What the host does for replication: fetches from the leader one at a
// time, from FetchOffset once it equals LogEnd, with the epoch of the
// batch before it as LastFetchedEpoch; looks the follower's last fetched
// epoch up in the leader's log for each ReplicaFetch (EpochLookup); sends
// Ready.AlterISR to the controller and feeds the answer back with its Seq;
// drops fetch answers of a leadership the core no longer follows; and
// moves the log start on Ready.MoveLogStart.
//
// Idempotence. Per producer id the core keeps the epoch and the last five
// batches' sequence ranges and offsets, as Kafka does. A retry of one of
// those batches is answered with its original offset (once as safe as its
// acks ask); a gap is OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch is
// INVALID_PRODUCER_EPOCH. The host rebuilds this state from the log's
// batch headers at start-up (Recovered), so dedupe survives restarts.
package partition
