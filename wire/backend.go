package wire

import (
	"context"

	"github.com/troupe-io/troupe/actors"
	"github.com/troupe-io/troupe/actors/group"
	"github.com/troupe-io/troupe/batch"
	"github.com/troupe-io/troupe/metadata"
)

// Backend is what the Kafka protocol handlers need from a node. The node
// assembly (package cluster) implements it; tests use fakes.
//
// Errors returned by Backend methods wrap a *kerr.Error (from
// github.com/twmb/franz-go/pkg/kerr) whose Code goes on the wire; the full
// err.Error() text goes into the response's error message where the API
// has one. An error wrapping no *kerr.Error is answered as
// UNKNOWN_SERVER_ERROR.
type Backend interface {
	// NodeID is this broker's node.id.
	NodeID() int32
	// Image is the current metadata image (immutable; never mutate it).
	Image() *metadata.Image
	// Limits are the broker settings the protocol layer enforces.
	Limits() Limits

	CreateTopics(ctx context.Context, reqs []metadata.CreateTopic, validateOnly bool) []error
	DeleteTopics(ctx context.Context, names []string) []error
	CreatePartitions(ctx context.Context, reqs []metadata.CreatePartitions, validateOnly bool) []error
	// TopicConfigs returns the effective configs of a topic, sorted by name.
	TopicConfigs(topic string) ([]metadata.ConfigValue, error)
	// BrokerConfigs returns the broker's own configs (DescribeConfigs of
	// resource type BROKER), sorted by name.
	BrokerConfigs() []metadata.ConfigValue
	AlterTopicConfigs(ctx context.Context, topic string, ops []metadata.ConfigOp, validateOnly bool) error
	// AllocateProducerID hands out a fresh producer id with epoch 0.
	AllocateProducerID(ctx context.Context) (int64, error)

	// Partition returns the local partition actor for topic/partition (a
	// leader or a follower replica; a follower answers client requests
	// NOT_LEADER_OR_FOLLOWER), or nil if this node has no replica of it.
	Partition(topic string, partition int32) Partition

	// FindCoordinator returns the node coordinating key (keyType 0: a
	// group id; 1: a transactional id), creating the offsets topic first
	// if it does not exist yet (as Kafka does on the first
	// FindCoordinator). Errors wrap COORDINATOR_NOT_AVAILABLE while no
	// node can coordinate it, INVALID_REQUEST for an unknown key type.
	FindCoordinator(ctx context.Context, keyType int8, key string) (metadata.Broker, error)
	// Group returns this node's coordinator of groupID, or an error
	// wrapping NOT_COORDINATOR (another node coordinates it, or nobody
	// does yet), COORDINATOR_LOAD_IN_PROGRESS (its offsets partition is
	// still being read) or COORDINATOR_NOT_AVAILABLE (no offsets topic).
	Group(groupID string) (Group, error)
	// ListGroups lists the groups this node coordinates.
	ListGroups() []group.Summary

	// ElectLeaders runs preferred or unclean leader elections (nil parts:
	// every partition) on the active controller.
	ElectLeaders(ctx context.Context, typ metadata.ElectionType, parts []metadata.TopicPartition) ([]metadata.ElectionResult, error)
	// AlterPartitionReassignments starts or cancels (nil Replicas)
	// reassignments on the active controller; one error per request.
	AlterPartitionReassignments(ctx context.Context, reqs []metadata.Reassignment) ([]error, error)
	// ListPartitionReassignments lists the reassignments in progress.
	ListPartitionReassignments(ctx context.Context) ([]metadata.PartitionReassignment, error)
	// DescribeQuorum describes the metadata quorum.
	DescribeQuorum(ctx context.Context) (QuorumInfo, error)
}

// QuorumInfo is the metadata quorum as DescribeQuorum shows it.
type QuorumInfo struct {
	LeaderID      int32
	LeaderEpoch   int32 // the raft term
	HighWatermark int64 // the commit index
	Voters        []QuorumReplica
	Observers     []QuorumReplica // brokers that follow the log without voting
}

// QuorumReplica is one replica of the metadata log; -1 for unknown values.
type QuorumReplica struct {
	ID                    int32
	LogEndOffset          int64
	LastFetchTimestamp    int64 // ms
	LastCaughtUpTimestamp int64 // ms
}

// Group is the handle of one group coordinator actor. Send only enqueues;
// the reply arrives on the request's Reply channel.
type Group interface {
	Send(actors.GroupRequest)
}

// Partition is the handle of one partition actor. Every method only
// enqueues a message and returns at once; results arrive on the request's
// reply channel (see package actors).
type Partition interface {
	// BatchOptions are the produce validation settings of the partition's
	// topic (max.message.bytes, keys required when compacted).
	BatchOptions() batch.Options
	Produce(actors.ProduceRequest)
	Fetch(actors.FetchRequest)
	Watch(actors.WatchRequest)
	ListOffsets(actors.ListOffsetsRequest)
	DeleteRecords(actors.DeleteRecordsRequest)
	// ReplicaFetch serves a follower's fetch (a Fetch with a replica id):
	// batches up to the leader's log end, or a DivergingEpoch.
	ReplicaFetch(actors.ReplicaFetchRequest)
	// ReplicaWatch is Watch on the leader's log end, for a follower's
	// long poll: it wakes once the log grows past Offset or the
	// leadership changes.
	ReplicaWatch(actors.WatchRequest)
	// OffsetForLeaderEpoch answers where an epoch ends in the log.
	OffsetForLeaderEpoch(actors.EpochRequest)
}

// Limits are the protocol-level limits from the broker config.
type Limits struct {
	// SocketRequestMaxBytes caps a request frame (socket.request.max.bytes);
	// larger length prefixes close the connection before any allocation.
	SocketRequestMaxBytes int32
	// AutoCreateTopics is auto.create.topics.enable.
	AutoCreateTopics bool
	// DeleteTopicEnable is delete.topic.enable.
	DeleteTopicEnable bool
	// MaxInflightPerConn bounds requests read ahead on one connection.
	MaxInflightPerConn int
	// QueuedMaxRequestBytes bounds the bytes of requests read and not yet
	// answered across all connections (0: 256 MiB, never less than
	// SocketRequestMaxBytes).
	QueuedMaxRequestBytes int64
}
