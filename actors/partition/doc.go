// Package partition is the deterministic core of a partition leader.
//
// A Core is a plain state machine in the shape of etcd raft's RawNode:
// Step feeds it one input (a produce, a fetch, a watch, a storage
// completion, a clock tick) and Ready hands back everything it decided —
// appends to write, whether to fsync, reads to serve, replies to send,
// fetches to wake. It reads no clock (time arrives in the inputs), starts
// no goroutine, draws no random number and does no I/O, so the daemon
// (package actors, on protoactor-go) and the simulator (package sim) run
// the very same code, and the same inputs always give the same outputs.
//
// Offsets. logEnd is the next offset to assign. durableEnd is the end of
// what storage has fsynced. The high watermark (hw) is what consumers may
// see and what ListOffsets(latest) reports:
//
//	logStart <= hw <= logEnd, and durableEnd <= logEnd
//
// With the default durability stance (AckAfterSync) hw == durableEnd: a
// record is acknowledged and becomes visible only once it is on disk, so a
// consumer never sees a record a crash could take back. With Kafka's
// relaxed flush settings hw == logEnd and fsyncs follow
// flush.messages/flush.ms.
//
// Idempotence. Per producer id the core keeps the epoch and the last five
// batches' sequence ranges and offsets, as Kafka does. A retry of one of
// those batches is answered with its original offset (once durable); a
// gap is OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch is
// INVALID_PRODUCER_EPOCH. The host rebuilds this state from the log's
// batch headers at start-up (Recovered), so dedupe survives restarts.
package partition
