// Package sim runs a whole Troupe cluster in one process, on one thread,
// in simulated time, under faults, and checks what its clients saw.
//
// What runs is the daemon's own code, not copies or mocks:
//
//   - the metadata quorum: metadata/quorum's raft Core over raftlog's
//     Pebble storage, with metadata.Controller on top (its commands block
//     until their records commit, so they run as scheduler tasks, see
//     sched.Task);
//   - partition replicas: actors.PartitionCell, the daemon's partition
//     actor without protoactor (leader and follower roles, truncation,
//     fetch serving, producer state), over partlog on a simulated disk;
//   - group coordinators: actors.GroupCells, the daemon's group actors
//     without protoactor, loading and writing __consumer_offsets through
//     the partition cells;
//   - the Kafka request handlers of package wire: simulated clients send
//     kmsg requests that wire.Server.Call serves exactly as it serves a
//     connection.
//
// What the simulator writes itself is the glue the daemon's cluster
// package provides with goroutines: the raft Ready loop, controller
// RPCs, broker registration and heartbeats, reconciling replicas with the
// metadata image, the replica fetcher, and the clients.
//
// Time, randomness, network and disk come from sched (a seeded event
// scheduler), simnet (delays, loss, duplication, reordering, partitions;
// request traffic behaves like TCP), simdisk (Pebble's crash-cloning
// MemFS plus torn writes, I/O errors and a full disk) and per-node clock
// offsets. etcd raft draws election timeouts from crypto/rand with no
// seeding hook; the simulator makes that draw constant (see
// deterministicRaft) and supplies the randomness itself, seeded, as
// jitter in each node's tick schedule.
//
// A run has two phases. In the safety phase producers, consumers and an
// admin client work while faults are injected; the checkers (package
// check) watch every acknowledgement, fetch, commit, leadership and high
// watermark. In the liveness phase every fault heals and the cluster
// must finish all pending work within a bounded simulated time; then the
// final logs of every replica are compared.
//
// Same seed and same build ⇒ same run, byte for byte: Result.TraceHash
// fingerprints it. See README.md for how to use it and the mutation
// check.
package sim
