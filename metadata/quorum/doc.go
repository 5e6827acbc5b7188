// Package quorum is Troupe's KRaft-style metadata quorum: 1, 3 or 5
// voters (controller.quorum.voters) replicate the metadata log with etcd
// raft (go.etcd.io/raft/v3); the raft leader is the active controller, and
// every committed entry is one batch of metadata records that every node
// applies in log order. A batch is opaque here: the cluster proposes
// metadata.EncodeBatch output and applies it with metadata.DecodeBatch;
// this package adds a small header to each (entry.go) and hands the batch
// back unchanged.
//
// Core is the deterministic part: a raft.RawNode plus proposal tracking
// and leadership announcement, with no goroutine, clock or I/O, so the
// simulator can host it. Node hosts a Core on one goroutine for the
// daemon: ticks from a time.Ticker, messages from a transport.Transport,
// storage in raftlog, the state machine behind Apply/Snapshot/Restore.
//
// # Invariants
//
// Persist before send. A Ready's hard state, entries and snapshot are
// written by raftlog.Storage.SaveReady (synced when raft says MustSync)
// before any of its messages is handed to the transport: a vote or an
// append acknowledgement is a promise about durable state
// (Node.handleReady).
//
// Apply in order, once per incarnation. The application's state (the
// metadata image) is in memory and rebuilt on every start: Start restores
// the latest stored snapshot and gives raft Applied = its index, so raft
// hands out every committed entry after it exactly once, in index order;
// Apply is called for those that carry a record batch, from a state that
// reflects exactly the entries before them. A snapshot received from the
// leader replaces the state (Restore) before the entries that follow it.
// Snapshots are taken every SnapshotEntries applied entries, from the
// state as of the last Apply, and the log is then compacted to the
// previous snapshot, keeping at least SnapshotEntries entries for
// followers that lag.
//
// Proposals resolve exactly once. A proposal is tagged (leader term,
// sequence number) in its entry (entry.go); it succeeds when that entry
// is committed and applied here, and fails as soon as a committed entry
// proves it lost (a later entry of its term or any entry of a later
// term), or with ErrOutcomeUnknown if a snapshot jumps over it.
//
// Followers refuse proposals (raft's DisableProposalForwarding) with a
// *NotLeaderError naming the leader; callers retry there.
//
// # Bootstrapping
//
// A voter whose storage is empty bootstraps with the configured voter set,
// sorted, as raft ConfChange entries 1..n of term 1 (NewCore). Every voter
// writes the same entries, hence the same initial configuration, so no
// voter needs to hear from another first; all voters must be configured
// with the same voter set. A non-empty storage is never bootstrapped.
//
// # Node ids
//
// Kafka node ids start at 0 and raft reserves 0, so a voter's raft id is
// its node id + 1; nothing outside this package sees raft ids.
//
// # Timing
//
// With the default 100 ms tick, ElectionTick 10 and HeartbeatTick 1, the
// leader heartbeats every 100 ms, a follower that misses them for its
// randomised 1–2 s election timeout starts a pre-vote, and a leader that
// cannot reach a quorum for 1 s steps down (CheckQuorum). PreVote keeps a
// node returning from a partition from deposing a healthy leader. raft
// draws the randomised timeout from its own unseeded source; see Core.
package quorum
