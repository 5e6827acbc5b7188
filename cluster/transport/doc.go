// Package transport moves the cluster's control traffic between Troupe
// nodes: the raft messages of the metadata quorum (one-way), and the few
// request/response RPCs around it — broker registration and heartbeats,
// AlterPartition, forwarded admin commands to the active controller, and
// brokers fetching committed metadata records. That is its one job. It
// runs on each node's CONTROLLER listener (KRaft's
// `listeners=...,CONTROLLER://host:port`). Replica fetching of partition
// data does not use it; followers fetch with the Kafka protocol.
//
// TCP implements the Transport interface. The deterministic simulator
// (package sim) does not go through it: it hosts the quorum's core and
// carries raft messages over its own simulated network (sim/simnet).
//
// # Why our own framing
//
// Raft asks very little of its network: best-effort, unordered, lossy
// one-way delivery is enough (it retransmits), and the RPCs are a handful
// of small request/response pairs. A gRPC or protobuf service layer would
// bring a large dependency, its own buffering and flow control, and
// streaming machinery we would not use, and would make the bounds below
// harder to see. The whole protocol here is a handshake and one frame
// layout, small enough to read in one sitting and to bound everywhere.
// Payloads are opaque: the packages that send them own their encoding
// (raftpb for raft, their own records for the controller RPCs).
//
// # Handshake
//
// The dialer opens the connection and sends
//
//	magic "TRPT" | uint16 version | int32 node id | uint8 n | n bytes cluster id
//
// and the acceptor answers
//
//	magic "TRPT" | uint16 version | uint8 status | int32 node id
//
// with status 0 (accepted), 1 (wrong cluster id) or 2 (unsupported
// version). The acceptor refuses, logs and closes a connection from
// another cluster: a voter configured with the wrong cluster id (or
// pointed at the wrong cluster) must not vote in ours. The dialer checks
// that the acceptor is the node it meant to reach, so an address that
// now belongs to another node is caught at once. Node ids in the
// handshake are a configuration check, not authentication.
//
// # Frames
//
// After the handshake both directions carry frames, all integers
// big-endian:
//
//	uint32 length      bytes that follow: type, kind, correlation id, payload
//	uint8  type        1 message, 2 request, 3 response, 4 error
//	uint8  kind        Kind; opaque to the transport
//	uint64 correlation requests, responses and errors only
//	payload            length - 2 (- 8) bytes; an error's payload is its text
//
// Each node dials one outbound connection per peer and sends its
// messages and requests on it; the peer answers requests on that same
// connection. A node therefore talks to a peer over two connections, one
// dialed by each side, and an inbound connection carries nothing back
// but responses. A node may list itself as a peer (a combined broker and
// controller talking to its own controller): it then dials itself like
// any other node.
//
// # Bounds
//
//   - A frame longer than MaxFrameBytes (default 16 MiB) is refused from
//     its length prefix, before any buffer is sized for it, and the
//     connection is closed. Payloads too large to frame are refused on
//     the sending side (Send returns false, Request returns ErrTooLarge).
//   - Each peer has one outbound queue of SendQueue entries (default
//     4096). Send never blocks: a full queue drops the message. Request
//     waits for room, up to its context.
//   - Each inbound connection runs at most MaxConcurrentRequests handlers
//     at once (default 64); beyond that its reader stops reading, which
//     pushes back on the sender through TCP.
//   - At most MaxInboundConns inbound connections (default 1024).
//   - The handshake must finish within DialTimeout, and every write
//     within WriteTimeout, so a stuck peer costs a bounded wait.
//   - Reconnection backs off exponentially, capped at MaxBackoff
//     (default 1 s). While a peer is backing off, Send returns false and
//     Request fails with ErrUnreachable at once; messages queued for it
//     when a dial fails are dropped, since raft retransmits.
//   - Buffers are fixed per connection (about 100 KiB for the two
//     connections with one peer), plus a read buffer sized to the largest
//     frame seen, of which at most 1 MiB is kept between frames, so one
//     large frame does not pin memory on an idle connection.
//   - Reading a one-way message does not allocate: the payload handed to
//     HandleMessage aliases the read buffer, which is why it is valid only
//     during the call.
//
// # Failures
//
// A connection that breaks fails the requests waiting on it with
// ErrUnreachable at once, rather than leaving them to their deadlines:
// the controller client retries elsewhere, and raft does not care.
package transport
