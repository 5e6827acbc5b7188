package group

import "github.com/twmb/franz-go/pkg/kmsg"

// Msg is an input to Core.Step.
type Msg interface{ isMsg() }

// TopicView is what the core may ask of the cluster metadata: it
// validates committed topics and, for KIP-848 groups, assigns partitions.
// Implementations are immutable snapshots.
type TopicView interface {
	TopicByName(name string) (id [16]byte, partitions int32, ok bool)
	TopicByID(id [16]byte) (name string, partitions int32, ok bool)
	// TopicNames lists every topic, sorted (regex subscriptions).
	TopicNames() []string
}

type (
	// Request is one Kafka request, or one group's share of a
	// multi-group request, addressed to this group. Req is one of
	//
	//	*kmsg.JoinGroupRequest        → *kmsg.JoinGroupResponse
	//	*kmsg.SyncGroupRequest        → *kmsg.SyncGroupResponse
	//	*kmsg.HeartbeatRequest        → *kmsg.HeartbeatResponse
	//	*kmsg.LeaveGroupRequest       → *kmsg.LeaveGroupResponse
	//	*kmsg.OffsetCommitRequest     → *kmsg.OffsetCommitResponse
	//	*kmsg.OffsetDeleteRequest     → *kmsg.OffsetDeleteResponse
	//	*kmsg.ConsumerGroupHeartbeatRequest → *kmsg.ConsumerGroupHeartbeatResponse
	//	*FetchOffsets                 → *kmsg.OffsetFetchResponseGroup
	//	*DescribeGroup                → *kmsg.DescribeGroupsResponseGroup
	//	*DeleteGroup                  → *kmsg.DeleteGroupsResponseGroup
	//	*DescribeConsumerGroup        → *kmsg.ConsumerGroupDescribeResponseGroup
	//
	// and the reply (Reply.Resp) is the matching type on the right, built
	// for the request's version (kmsg requests carry it). The response
	// shapes of the multi-group requests are the per-group elements of
	// the v8+/flexible forms; the wire layer folds them into older
	// versions' shapes.
	Request struct {
		Tag   int64 // echoed in the Reply
		NowMs int64
		// ClientID and ClientHost describe the connection the request came
		// on (JoinGroup records them for DescribeGroups).
		ClientID   string
		ClientHost string
		// NewMemberID is a fresh, globally unique member id the host drew
		// for this request (clientID-UUID, as Kafka forms them); the core
		// uses it only if the request creates a member, because the core
		// itself may not draw random numbers.
		NewMemberID string
		Topics      TopicView
		Req         any
	}

	// Appended completes the Append the last Ready returned. ErrorCode is
	// the produce error of the offsets partition (0 on success).
	Appended struct {
		NowMs     int64
		ErrorCode int16
	}

	// Tick advances the core's clock: session, rebalance and join
	// deadlines, the initial rebalance delay, offset expiry.
	Tick struct{ NowMs int64 }
)

func (Request) isMsg()  {}
func (Appended) isMsg() {}
func (Tick) isMsg()     {}

// The group's shares of multi-group requests.
type (
	// FetchOffsets is one group of an OffsetFetch. Topics nil means all
	// committed offsets of the group.
	FetchOffsets struct {
		Version       int16
		Topics        []kmsg.OffsetFetchRequestGroupTopic
		RequireStable bool
		// MemberID and MemberEpoch are set from v9 on (KIP-848); an epoch
		// of -1 means not checked.
		MemberID    *string
		MemberEpoch int32
	}
	// DescribeGroup is one group of a DescribeGroups.
	DescribeGroup struct {
		Version                     int16
		IncludeAuthorizedOperations bool
	}
	// DeleteGroup is one group of a DeleteGroups: it fails with
	// NON_EMPTY_GROUP while the group has members, else tombstones the
	// group's metadata and offsets.
	DeleteGroup struct{ Version int16 }
	// DescribeConsumerGroup is one group of a ConsumerGroupDescribe.
	DescribeConsumerGroup struct {
		Version                     int16
		IncludeAuthorizedOperations bool
	}
)

// Reply answers a Request.
type Reply struct {
	Tag  int64
	Resp any
}

// Record is one record for the offsets topic, in Kafka's
// __consumer_offsets format. A nil Value is a tombstone.
type Record struct {
	Key, Value []byte
}

// Append asks the host to append Records, in order, to the group's
// partition of the offsets topic and to answer with Appended once the
// write is acknowledged by every in-sync replica (acks=-1) or failed.
type Append struct {
	Records []Record
}

// Ready is what the core decided since the last Ready.
type Ready struct {
	Replies []Reply
	// Append is set when records wait to be written and no earlier
	// Append is outstanding.
	Append *Append
}

// Summary is the group as ListGroups shows it.
type Summary struct {
	GroupID      string
	ProtocolType string // "consumer" for both protocols' consumer groups, "" for offsets-only groups
	State        string // Kafka's state names: Empty, PreparingRebalance, CompletingRebalance, Stable, Dead; KIP-848: Empty, Assigning, Reconciling, Stable, Dead
	GroupType    string // "classic" or "consumer" (ListGroups v5)
}
