package transport

import (
	"context"
	"errors"
)

// Kind identifies what a message or request carries. The transport never
// looks inside payloads; the packages that use it own their kinds.
type Kind uint8

const (
	// KindRaft carries one raftpb.Message of the metadata quorum (one-way).
	KindRaft Kind = 1
	// KindController carries a request to the active controller (broker
	// registration and heartbeats, AlterPartition, forwarded admin
	// commands) and its response.
	KindController Kind = 2
	// KindMetadataFetch carries a broker's request for committed metadata
	// records (brokers that are not quorum voters follow the log this way).
	KindMetadataFetch Kind = 3
)

// Handler receives what peers send. Both methods may be called from many
// goroutines at once.
type Handler interface {
	// HandleMessage receives a one-way message. It must not block for
	// long: the connection's reader waits for it. payload is only valid
	// during the call.
	HandleMessage(from int32, kind Kind, payload []byte)
	// HandleRequest answers a request. An error is sent back to the
	// caller as its text (wrapped in ErrRemote). payload belongs to the
	// handler. ctx is cancelled when the connection the request came on
	// closes or the transport closes.
	HandleRequest(ctx context.Context, from int32, kind Kind, payload []byte) ([]byte, error)
}

// Transport moves messages and requests between the nodes of one
// cluster. The daemon uses TCP; the quorum's tests use an in-memory
// stand-in (metadata/quorum's memnet_test.go) behind the same interface.
type Transport interface {
	// Send queues a one-way message to node to and returns at once. It
	// reports false when the message was dropped (unknown peer, queue
	// full, connection down): one-way messages are best effort, as raft
	// expects of its network. The transport keeps payload until it is
	// written, so the caller must not modify it after Send.
	Send(to int32, kind Kind, payload []byte) bool
	// Request sends a request and waits for its response or ctx. It
	// fails with ErrUnreachable as soon as the connection carrying it
	// breaks, with ErrRemote when the peer's handler failed, and with
	// ErrTooLarge when payload cannot be framed. The caller owns the
	// returned bytes.
	Request(ctx context.Context, to int32, kind Kind, payload []byte) ([]byte, error)
	// SetPeer tells the transport where node id listens (host:port).
	SetPeer(id int32, addr string)
	// Close stops the transport; later calls fail with ErrClosed.
	Close() error
}

var (
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("transport closed")
	// ErrUnknownPeer is returned for a node with no address.
	ErrUnknownPeer = errors.New("unknown peer")
	// ErrUnreachable is returned when the peer cannot be reached.
	ErrUnreachable = errors.New("peer unreachable")
	// ErrRemote wraps an error the peer's handler returned.
	ErrRemote = errors.New("remote error")
	// ErrTooLarge is returned for a payload larger than a frame may carry.
	ErrTooLarge = errors.New("payload too large")
)
