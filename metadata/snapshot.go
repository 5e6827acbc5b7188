package metadata

import (
	"encoding/json"
	"fmt"
	"maps"
)

// snapshotVersion is the format of Image.Snapshot; ImageFromSnapshot
// refuses others rather than guessing.
const snapshotVersion = 1

// maxSnapshotBytes bounds what ImageFromSnapshot accepts, so that a
// corrupt or hostile snapshot cannot make a node allocate without limit.
const maxSnapshotBytes = 1 << 30

type snapshot struct {
	Version        int              `json:"version"`
	ClusterID      string           `json:"clusterId"`
	ControllerID   int32            `json:"controllerId"`
	Offset         int64            `json:"offset"`
	NextProducerID int64            `json:"nextProducerId"`
	Brokers        []snapshotBroker `json:"brokers"`
	Topics         []snapshotTopic  `json:"topics"` // by name
}

type snapshotBroker struct {
	BrokerRecord
	Epoch int64 `json:"epoch"`
}

type snapshotTopic struct {
	Name       string              `json:"name"`
	ID         TopicID             `json:"id"`
	Internal   bool                `json:"internal,omitempty"`
	Configs    map[string]string   `json:"configs,omitempty"`
	Partitions []snapshotPartition `json:"partitions"`
}

type snapshotPartition struct {
	Leader           int32   `json:"leader"`
	LeaderEpoch      int32   `json:"leaderEpoch"`
	PartitionEpoch   int32   `json:"partitionEpoch"`
	Replicas         []int32 `json:"replicas"`
	ISR              []int32 `json:"isr"`
	AddingReplicas   []int32 `json:"addingReplicas,omitempty"`
	RemovingReplicas []int32 `json:"removingReplicas,omitempty"`
}

// Snapshot encodes the whole image, Offset included, for a raft snapshot.
// The encoding is deterministic: equal images give equal bytes.
func (img *Image) Snapshot() ([]byte, error) {
	s := snapshot{
		Version: snapshotVersion, ClusterID: img.ClusterID, ControllerID: img.ControllerID,
		Offset: img.Offset, NextProducerID: img.NextProducerID,
		Brokers: make([]snapshotBroker, 0, len(img.Brokers)),
		Topics:  make([]snapshotTopic, 0, len(img.topics)),
	}
	for _, b := range img.Brokers {
		s.Brokers = append(s.Brokers, snapshotBroker{BrokerRecord: BrokerRecord{
			ID: b.ID, Host: b.Host, Port: b.Port, Rack: b.Rack, Fenced: b.Fenced,
			Incarnation: b.Incarnation, ControllerAddr: b.ControllerAddr, GossipAddr: b.GossipAddr, Roles: b.Roles,
		}, Epoch: b.Epoch})
	}
	for _, name := range img.TopicNames() {
		t := img.topics[name]
		st := snapshotTopic{Name: t.Name, ID: t.ID, Internal: t.Internal, Configs: t.Configs,
			Partitions: make([]snapshotPartition, 0, len(t.Partitions))}
		for _, p := range t.Partitions {
			st.Partitions = append(st.Partitions, snapshotPartition{
				Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch,
				Replicas: p.Replicas, ISR: p.ISR, AddingReplicas: p.AddingReplicas, RemovingReplicas: p.RemovingReplicas,
			})
		}
		s.Topics = append(s.Topics, st)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode metadata snapshot: %w", err)
	}
	return b, nil
}

// ImageFromSnapshot decodes what Image.Snapshot encoded.
func ImageFromSnapshot(b []byte) (*Image, error) {
	if len(b) > maxSnapshotBytes {
		return nil, fmt.Errorf("metadata snapshot of %d bytes is over the %d-byte limit", len(b), maxSnapshotBytes)
	}
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode metadata snapshot: %w", err)
	}
	if s.Version != snapshotVersion {
		return nil, fmt.Errorf("metadata snapshot version %d, want %d", s.Version, snapshotVersion)
	}
	img := NewImage(s.ClusterID)
	img.ControllerID, img.Offset, img.NextProducerID = s.ControllerID, s.Offset, s.NextProducerID
	for i, sb := range s.Brokers {
		if i > 0 && sb.ID <= s.Brokers[i-1].ID {
			return nil, fmt.Errorf("metadata snapshot: brokers not sorted by id at %d", sb.ID)
		}
		img.Brokers = append(img.Brokers, Broker{
			ID: sb.ID, Host: sb.Host, Port: sb.Port, Rack: sb.Rack, Fenced: sb.Fenced,
			Incarnation: sb.Incarnation, ControllerAddr: sb.ControllerAddr, GossipAddr: sb.GossipAddr, Roles: sb.Roles, Epoch: sb.Epoch,
		})
	}
	for _, st := range s.Topics {
		if img.topics[st.Name] != nil || img.topicsByID[st.ID] != nil {
			return nil, fmt.Errorf("metadata snapshot: topic %q or its id listed twice", st.Name)
		}
		t := &Topic{Name: st.Name, ID: st.ID, Internal: st.Internal, Configs: maps.Clone(st.Configs),
			Partitions: make([]Partition, 0, len(st.Partitions))}
		if t.Configs == nil {
			t.Configs = map[string]string{}
		}
		for i, sp := range st.Partitions {
			t.Partitions = append(t.Partitions, Partition{
				Index: int32(i), Leader: sp.Leader, LeaderEpoch: sp.LeaderEpoch, PartitionEpoch: sp.PartitionEpoch,
				Replicas: sp.Replicas, ISR: sp.ISR, AddingReplicas: cloneOrNil(sp.AddingReplicas), RemovingReplicas: cloneOrNil(sp.RemovingReplicas),
			})
		}
		img.topics[t.Name] = t
		img.topicsByID[t.ID] = t
	}
	return img, nil
}
