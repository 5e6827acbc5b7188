package metadata

import (
	"encoding/json"
	"fmt"
)

// RecordType names the kind of a metadata record.
type RecordType uint8

const (
	RecordRegisterBroker RecordType = iota + 1
	RecordTopic
	RecordPartition
	RecordRemoveTopic
	RecordConfig
	RecordProducerIDs
	RecordController
)

// Record is one entry of the metadata log. Exactly one payload field is set,
// matching Type. Records are encoded as JSON: metadata changes are rare and
// small, and a readable journal is worth more than a few bytes.
type Record struct {
	Type        RecordType         `json:"type"`
	Broker      *BrokerRecord      `json:"broker,omitempty"`
	Topic       *TopicRecord       `json:"topic,omitempty"`
	Partition   *PartitionRecord   `json:"partition,omitempty"`
	RemoveTopic *RemoveTopicRecord `json:"removeTopic,omitempty"`
	Config      *ConfigRecord      `json:"config,omitempty"`
	ProducerIDs *ProducerIDsRecord `json:"producerIds,omitempty"`
	Controller  *ControllerRecord  `json:"controller,omitempty"`
}

// BrokerRecord registers (or re-registers) a broker and its listener.
type BrokerRecord struct {
	ID     int32  `json:"id"`
	Host   string `json:"host"`
	Port   int32  `json:"port"`
	Rack   string `json:"rack,omitempty"`
	Fenced bool   `json:"fenced,omitempty"`
}

// TopicRecord creates a topic; its partitions follow as PartitionRecords.
type TopicRecord struct {
	Name     string  `json:"name"`
	ID       TopicID `json:"id"`
	Internal bool    `json:"internal,omitempty"`
}

// PartitionRecord creates or replaces one partition of an existing topic.
type PartitionRecord struct {
	TopicID        TopicID `json:"topicId"`
	Index          int32   `json:"index"`
	Leader         int32   `json:"leader"`
	LeaderEpoch    int32   `json:"leaderEpoch"`
	PartitionEpoch int32   `json:"partitionEpoch"`
	Replicas       []int32 `json:"replicas"`
	ISR            []int32 `json:"isr"`
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

// ProducerIDsRecord hands out the producer ids [First, First+Count).
type ProducerIDsRecord struct {
	BrokerID int32 `json:"brokerId"`
	First    int64 `json:"first"`
	Count    int64 `json:"count"`
}

// ControllerRecord names the active controller.
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
