// Package check is the simulator's invariant checker: plain bookkeeping
// over what the simulated cluster and its clients were seen to do, which
// flags every observation that contradicts a guarantee a Kafka-compatible
// broker makes.
//
// The simulator feeds observations as they happen (Acked, Consumed, Seek,
// LogStart, ReplicaHW, Leader, ControllerTerm, Committed, Truncated,
// Assignment, CommitAcked, CommitFetched, plus TopicDeleted and
// CommitsDeleted for admin operations that legitimately forget data) and
// calls Final once with the cluster's settled state. Continuous checks
// fire inside the observation call; final checks fire in Final. The
// package imports only the standard library and never looks at the
// cluster itself, so a checker bug cannot perturb a run.
//
// # Invariants
//
// Each has a short stable name (the Check* constants), which is what a
// Violation carries and Summary counts.
//
//   - value-conflict: one value per (partition, offset). Acked, Consumed,
//     Committed (any node) and Final records all feed one map; a second,
//     different value at an offset means two replicas' committed logs
//     diverged, a consumer read something that was never acknowledged
//     there, or an acknowledged write was overwritten (lost and replaced).
//   - epoch-conflict: one leader epoch per (partition, offset) among
//     Committed observations. Followers copy batches verbatim, so a record
//     at one offset stamped with two epochs is two different batches, even
//     when the value happens to match.
//   - duplicate: a non-empty value is at no more than one offset per
//     partition. Producers write unique values idempotently, so a second
//     offset is a retry the broker failed to deduplicate.
//   - consume-above-hw: every consumed offset is below the high watermark
//     of the fetch response carrying it: a consumer never sees
//     uncommitted data.
//   - consume-order: within a consumer's session on a partition, offsets
//     are dense and increasing: after Seek(o) the first record is at o (or
//     above o only if everything skipped is below the log start), and each
//     later record is at previous+1. Catches skipped records, re-delivery
//     within a session and fetches served from the wrong position.
//   - hw-regress: a replica's high watermark never decreases within one
//     incarnation of its node. Catches a leader that commits and then
//     forgets, and followers taking a stale leader's watermark.
//   - leader-epoch: at most one node leads a partition in a leader epoch
//     (split brain in partition leadership).
//   - controller-term: at most one metadata-quorum node leads a raft term.
//   - double-ownership: within one (group, coordinator's leader epoch of
//     the offsets partition, generation), no partition is assigned to two
//     members. A member's newer assignment in the same generation replaces
//     its older one.
//   - commit-regress: an OffsetFetch sent after an OffsetCommit was
//     acknowledged returns at least that commit's offset (our consumers
//     never lower their commits). Catches committed offsets lost across
//     coordinator moves or crashes.
//   - acked-lost (final): every Acked record at or above the final log
//     start is in the final log of every live in-sync replica.
//   - committed-lost (final): the same for records that were only seen as
//     consumed or as committed on some replica: a record below a high
//     watermark must never vanish. Truncated records that came back count
//     as present; only the final state decides.
//   - replica-divergence (final): every replica's final log is dense and
//     increasing; in-sync replicas hold identical records over their
//     common offset range (compared by SHA-256), and replicas whose running
//     committed-prefix hashes cover the same range have equal hashes.
//   - final-mismatch (final): every final record agrees with whatever was
//     acknowledged, consumed or seen committed at its offset.
//   - invalid-observation: the simulator fed something impossible
//     (negative offsets, mismatched slices, a stale incarnation); this
//     flags harness bugs that would otherwise weaken the other checks.
//
// # Sequence numbers
//
// CommitAcked and CommitFetched compare positions on one clock: a commit
// with seq <= a fetch's sentAfterSeq was acknowledged before that fetch
// was sent. The caller may use any strictly increasing counter (the
// scheduler's event sequence, if acknowledgement and sending never share
// an event) or Checker.Seq, which hands out a fresh number per call.
//
// # Cost and determinism
//
// Per observation work is O(1) amortized (O(log n) for commit history),
// with no formatting unless a check fails. Records are kept in chunked
// per-partition arrays, so memory grows with the offsets seen, not with
// how often they are seen. Maps are only ever walked in sorted order and
// violations are listed in the order they were found (the first MaxListed
// of them, the rest counted), so equal histories give byte-identical
// reports.
package check
