// Package membership detects failed Troupe nodes. Each node runs a
// hashicorp/memberlist (SWIM) gossip member named "troupe-<node id>" that
// probes its peers, and reports who joined, changed, failed or left, with
// what each node says about itself (NodeMeta: node id, incarnation, Kafka
// and controller listeners, roles). Its one job is the signal; acting on
// it (fencing) is the controller's.
//
// # Why separate from the controller's heartbeats
//
// The controller (the elected leader of the KRaft-style metadata quorum)
// remains the authority on liveness: only it, through the replicated
// metadata log, fences a node (bumps its epoch, drops it from ISRs). Its
// heartbeats, though, only see the link between each node and the
// controller, and must use timeouts long enough to ride out a controller
// election. Gossip adds what they lack:
//
//   - speed: a crashed node is reported in about 1–2 s (below), so the
//     controller can fence at once instead of waiting out a session
//     timeout;
//   - many vantage points: before suspecting a node, a prober asks other
//     nodes to probe it too (indirect probes), so one bad link does not
//     condemn a healthy node, while a node cut off from its peers in both
//     directions (a symmetric partition) is detected even if it still
//     reaches the controller;
//   - independence from the quorum: detection keeps working while the
//     controller is being elected or has itself failed.
//
// It is only a signal: it has no quorum, and different nodes can disagree
// for a moment. A node reported Failed is reported to the controller,
// which decides; this package never fences.
//
// # Defaults and detection time
//
//	ProbeInterval   200 ms   each node probes one peer per interval
//	ProbeTimeout    100 ms   direct probe, then indirect probes (half the
//	                         interval when unset)
//	SuspicionMult   4        suspect for 4 × ProbeInterval (× log10 n above
//	                         10 nodes) before declaring dead
//	GossipInterval  100 ms   gossip rounds, to 3 random peers
//	LeaveTimeout    1 s      graceful part of Close
//
// A crashed node is reported Failed after about (n-1) × ProbeInterval
// (until a survivor's round-robin reaches it; usually sooner) plus one
// probe interval, the suspicion timeout and two gossip rounds:
// Config.FailureDetectionTime gives 1.6 s for 3 nodes and 2.0 s for 5. The
// tests measure 1.1 s on loopback for 3 nodes (up to 1.4 s with -race on
// a loaded machine). A node that finds itself overloaded slows its
// probing (memberlist's "awareness", up to 8×) rather than accuse healthy
// peers. A node that leaves (Close, about 0.3 s) is reported Left within
// a gossip round or two.
//
// # Events
//
// Events delivers other nodes' changes on a bounded channel. memberlist
// calls into this package from its own goroutines, which must never block
// (blocking them stalls probing and turns a slow consumer into false
// failures), so when the consumer falls behind, events are coalesced:
// each node keeps only its latest pending event, and a pending Joined
// followed by Updated stays Joined. Memory is bounded by the number of
// nodes. The consequence for consumers: events are level-triggered. Treat
// each Event as the node's current state, not as one step of a sequence;
// a Failed followed by a Joined may arrive as the Joined alone. Members
// gives the same view on demand, this node included.
//
// # Restarts and incarnations
//
// A node's identity is its node id (memberlist name "troupe-<id>");
// NodeMeta.Incarnation tells its processes apart. How peers report a
// restarted node depends on what they had seen:
//
//   - the old process had been reported Failed or Left: Joined, with the
//     new incarnation;
//   - it restarted before being detected, on the same address: Updated,
//     with the new incarnation (memberlist lets the new process refute the
//     old one's liveness at once);
//   - it restarted before being detected, on a new address: Failed for the
//     old process once it is detected, then Joined for the new one
//     (memberlist keeps the first address of a live name, so the new
//     process waits, retrying, until the old one is declared dead).
//
// So a consumer that fences by incarnation must compare
// Member.Meta.Incarnation with the last one it saw for that node, whatever
// the Kind: a different incarnation means the earlier process is gone.
//
// memberlist numbers each process's announcements from 1 again, while the
// old process's death is still being gossiped under a higher number; left
// alone, peers would accept the new process and then apply the late death
// to it (Joined, Failed, Joined). This package prevents that flap: for a
// few seconds after a node dies or leaves, joins that revive it under a
// new incarnation are refused, and the new process, having seen its
// predecessor's death in the refusing peer's state, re-announces itself
// with a higher number (see delegate.NotifyMerge). Tests check that no
// restart flaps.
//
// # Joining
//
// Start never waits for the seeds. A background loop joins them at once,
// then retries with a bounded backoff (100 ms doubling to 2 s) while the
// node is alone or some seed is not among the live members (it restarted,
// or memberlist forgot it after a partition), so nodes started in any
// order, or separated and reunited, find each other. It also keeps
// joining (every 0.5 s at most) while a peer still holds an earlier
// incarnation of this node. Seeds should list several nodes, ideally all:
// a node whose seeds are all down stays alone until one comes back.
//
// # Limits
//
// memberlist v0.7.0 does not tell its users when a node is suspect (the
// state is internal), so Members reports alive, dead and left only; a
// suspect node reads alive until it is declared dead or refutes.
// Graceful leave is told apart from failure by a leaving flag the node
// gossips in its metadata just before it leaves; a peer that misses the
// flag reports Failed, which errs on the side of fencing. Gossip is not
// encrypted or authenticated; ClusterID only keeps distinct clusters
// apart.
package membership
