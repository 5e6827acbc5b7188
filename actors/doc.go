// Package actors hosts Troupe's actors on protoactor-go.
//
// Each actor's behaviour is a deterministic core in a subpackage
// (actors/partition for partition replicas, actors/group for group
// coordinators); this package is the thin shell that feeds a core its
// inputs — requests, timer ticks stamped with the clock, storage
// completions — and carries out what the core asks for: appends to the
// partition log, fsyncs, replies and wake-ups. Only this shell touches
// clocks, goroutines, files and channels.
//
// A partition runs either as the single-replica leader of single-node
// mode (Host.Start) or as one replica of a replicated partition
// (Host.StartReplica), leader or follower as the metadata says
// (Partition.SetRole). For a replica the shell also does the storage and
// plumbing side of replication (replica_actor.go): epoch lookups in the
// log for followers' fetches and OffsetForLeaderEpoch, ISR changes handed
// to the node (AlterISRFunc) and their answers fed back, and on a
// follower the appends of fetched batches, truncations by Kafka's
// follower rules, and answers to the replica fetcher only once appends
// are durable.
package actors
