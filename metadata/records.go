package metadata

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// RecordType names the kind of a metadata record. The values are part of
// the journal format: never renumber them, only append.
type RecordType uint8

const (
	RecordRegisterBroker RecordType = iota + 1
	RecordTopic
	RecordPartition
	RecordRemoveTopic
	RecordConfig
	RecordProducerIDs
	RecordController
	RecordFenceBroker
	RecordUnfenceBroker
	RecordUnregisterBroker
	RecordPartitionChange
)

// Record is one entry of the metadata log. Exactly one payload field is set,
// matching Type. Records are encoded as JSON: metadata changes are rare and
// small, and a readable journal is worth more than a few bytes. New fields
// are optional so that journals written before them still decode.
type Record struct {
	Type        RecordType         `json:"type"`
	Broker      *BrokerRecord      `json:"broker,omitempty"`
	Topic       *TopicRecord       `json:"topic,omitempty"`
	Partition   *PartitionRecord   `json:"partition,omitempty"`
	RemoveTopic *RemoveTopicRecord `json:"removeTopic,omitempty"`
	Config      *ConfigRecord      `json:"config,omitempty"`
	ProducerIDs *ProducerIDsRecord `json:"producerIds,omitempty"`
	Controller  *ControllerRecord  `json:"controller,omitempty"`
	// BrokerRef is the payload of FenceBroker, UnfenceBroker and
	// UnregisterBroker.
	BrokerRef       *BrokerRefRecord       `json:"brokerRef,omitempty"`
	PartitionChange *PartitionChangeRecord `json:"partitionChange,omitempty"`
}

// IncarnationID identifies one run of a broker process: a random 16 bytes
// drawn at start-up. A registration with a new incarnation means the
// broker restarted (and may have lost in-memory state), so it stays fenced
// until it has caught up with the metadata.
type IncarnationID [16]byte

// MarshalText encodes the id as 32 hex digits.
func (id IncarnationID) MarshalText() ([]byte, error) {
	return hex.AppendEncode(nil, id[:]), nil
}

// UnmarshalText decodes 32 hex digits.
func (id *IncarnationID) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(id) {
		return fmt.Errorf("incarnation id %q: want %d hex digits", b, 2*len(id))
	}
	if _, err := hex.Decode(id[:], b); err != nil {
		return fmt.Errorf("incarnation id %q: %w", b, err)
	}
	return nil
}

// String is the hex form.
func (id IncarnationID) String() string { return hex.EncodeToString(id[:]) }

// Roles says what a node does in the cluster.
type Roles uint8

const (
	RoleBroker     Roles = 1 << iota // serves Kafka clients and hosts replicas
	RoleController                   // votes in the metadata quorum
)

// BrokerRecord registers (or re-registers) a broker. Host and Port are the
// Kafka listener clients connect to; ControllerAddr (host:port) is where
// the node's controller/raft listener is, empty when the node has none.
// Registrations written before incarnations existed carry a zero
// Incarnation.
type BrokerRecord struct {
	ID             int32         `json:"id"`
	Host           string        `json:"host"`
	Port           int32         `json:"port"`
	Rack           string        `json:"rack,omitempty"`
	Fenced         bool          `json:"fenced,omitempty"`
	Incarnation    IncarnationID `json:"incarnation,omitzero"`
	ControllerAddr string        `json:"controllerAddr,omitempty"`
	GossipAddr     string        `json:"gossipAddr,omitempty"`
	Roles          Roles         `json:"roles,omitempty"`
}

// BrokerRefRecord names the broker a FenceBroker, UnfenceBroker or
// UnregisterBroker record applies to.
type BrokerRefRecord struct {
	ID int32 `json:"id"`
}

// TopicRecord creates a topic; its partitions follow as PartitionRecords.
type TopicRecord struct {
	Name     string  `json:"name"`
	ID       TopicID `json:"id"`
	Internal bool    `json:"internal,omitempty"`
}

// PartitionRecord creates or replaces one partition of an existing topic
// with the full state it carries. Later changes are PartitionChangeRecords.
type PartitionRecord struct {
	TopicID          TopicID `json:"topicId"`
	Index            int32   `json:"index"`
	Leader           int32   `json:"leader"`
	LeaderEpoch      int32   `json:"leaderEpoch"`
	PartitionEpoch   int32   `json:"partitionEpoch"`
	Replicas         []int32 `json:"replicas"`
	ISR              []int32 `json:"isr"`
	AddingReplicas   []int32 `json:"addingReplicas,omitempty"`
	RemovingReplicas []int32 `json:"removingReplicas,omitempty"`
}

// NoLeaderChange in PartitionChangeRecord.Leader keeps the current leader.
const NoLeaderChange int32 = -2

// PartitionChangeRecord changes some of a partition's leader, ISR, replicas
// and reassignment state (Kafka's PartitionChangeRecord). A nil slice
// leaves that field as it is; an empty, non-nil one clears it (JSON keeps
// the difference: null versus []). Applying it always bumps the partition
// epoch, and bumps the leader epoch when the leader changes or a replica
// leaves the replica set (so that a removed replica's fetches are fenced).
type PartitionChangeRecord struct {
	TopicID TopicID `json:"topicId"`
	Index   int32   `json:"index"`
	// Leader is the new leader, -1 for none, or NoLeaderChange.
	Leader           int32   `json:"leader"`
	ISR              []int32 `json:"isr"`
	Replicas         []int32 `json:"replicas"`
	AddingReplicas   []int32 `json:"addingReplicas"`
	RemovingReplicas []int32 `json:"removingReplicas"`
}

// RemoveTopicRecord deletes a topic and its partitions.
type RemoveTopicRecord struct {
	ID TopicID `json:"id"`
}

// ConfigRecord sets (Value != nil) or removes (Value == nil) one topic
// config override.
type ConfigRecord struct {
	Topic string  `json:"topic"`
	Name  string  `json:"name"`
	Value *string `json:"value"`
}

// ProducerIDsRecord hands out the producer ids [First, First+Count) to
// broker BrokerID.
type ProducerIDsRecord struct {
	BrokerID int32 `json:"brokerId"`
	First    int64 `json:"first"`
	Count    int64 `json:"count"`
}

// ControllerRecord names the active controller. In a cluster the raft
// leader writes it when it takes over, so every node's image says who
// the controller is.
type ControllerRecord struct {
	ID int32 `json:"id"`
}

// Encode serialises r for the journal.
func (r Record) Encode() ([]byte, error) { return json.Marshal(r) }

// DecodeRecord parses a journal entry.
func DecodeRecord(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("decode metadata record: %w", err)
	}
	return r, nil
}

// MaxBatchBytes bounds an encoded batch. The largest batch the controller
// writes creates a topic of maxPartitionsPerTopic partitions, a few
// hundred bytes each.
const MaxBatchBytes = 64 << 20

// EncodeBatch serialises a batch of records as one payload, for a log
// whose entries are batches (the raft quorum: one proposal, one entry).
func EncodeBatch(recs []Record) ([]byte, error) {
	b, err := json.Marshal(recs)
	if err != nil {
		return nil, fmt.Errorf("encode metadata batch: %w", err)
	}
	if len(b) > MaxBatchBytes {
		return nil, fmt.Errorf("metadata batch of %d bytes is over the %d-byte limit", len(b), MaxBatchBytes)
	}
	return b, nil
}

// DecodeBatch parses what EncodeBatch produced.
func DecodeBatch(b []byte) ([]Record, error) {
	if len(b) > MaxBatchBytes {
		return nil, fmt.Errorf("metadata batch of %d bytes is over the %d-byte limit", len(b), MaxBatchBytes)
	}
	var recs []Record
	if err := json.Unmarshal(b, &recs); err != nil {
		return nil, fmt.Errorf("decode metadata batch: %w", err)
	}
	return recs, nil
}
