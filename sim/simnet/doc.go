// Package simnet is the simulator's network: it decides when, whether and
// how many times a message sent from one node to another is delivered,
// and schedules the delivery on the simulator's scheduler (package sched).
// It carries no bytes; a message is the caller's deliver callback.
//
// The model:
//
//   - Nodes are int32 ids the caller picks; clients are nodes too. A link is
//     an ordered pair (from, to); a node is always connected to itself.
//   - Every delivery takes a delay drawn uniformly from [MinDelay, MaxDelay].
//   - While faults are on (SetFaulty, on from New), a message may be dropped
//     (DropRate), take an occasional long extra delay (LongTailRate), and, if
//     it is a datagram, be duplicated (DuplicateRate, the copy landing after
//     the original) or held back so that later ones overtake it (ReorderRate).
//     With faults off, the liveness phase, none of that happens and every
//     delay lies in [MinDelay, MaxDelay]; partitions stay until Heal.
//   - A Class names the kind of traffic. Datagram (raft messages) may be
//     dropped, reordered and duplicated. Any other class is a FIFO stream, as
//     over a TCP connection: on one link and class, messages land in the order
//     they were sent and at most once; a long delay holds back those behind it.
//     A stream message is never lost to DropRate: TCP resends a lost segment,
//     so the draw costs it a retransmission timeout (Config.Retransmit) and
//     holds back what follows on the link. Only a cut link drops it; this
//     model does not break connections.
//   - Partitions cut links: Partition splits nodes into groups, CutOneWay cuts
//     one direction of one link, Isolate cuts a node from everyone, Heal
//     restores everything. A message is dropped if its link is cut when it is
//     sent or when it lands (the check is made at both instants only, so a
//     cut healed while the message is in flight does not drop it).
//
// Determinism: the network draws from the scheduler's Rand only inside Send,
// in a fixed order (drop, delay, long tail, then for datagrams reorder and
// duplicate), and never iterates a map. The same seed and the same calls give
// the same delivery schedule. It traces nothing: the caller traces in its
// deliver callbacks, and may watch drops through Config.OnDrop.
package simnet
