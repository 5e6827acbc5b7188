package metadata

import (
	"slices"
	"sort"
)

// TopicID is a topic's 16-byte UUID, as Kafka's Metadata v10+ carries it.
type TopicID [16]byte

// Broker is a registered broker as clients and the controller see it.
type Broker struct {
	ID     int32
	Host   string // Kafka listener
	Port   int32
	Rack   string
	Fenced bool
	// Incarnation is the broker process run that registered; zero for
	// registrations from before incarnations existed.
	Incarnation IncarnationID
	// ControllerAddr is the node's controller/raft listener (host:port),
	// empty when it has none.
	ControllerAddr string
	// GossipAddr is the node's memberlist address (host:port), if any.
	GossipAddr string
	Roles      Roles
	// Epoch is the metadata offset at which this incarnation's
	// registration was applied (Kafka's broker epoch). A fenced broker is
	// unfenced only once it has applied the metadata up to here.
	Epoch int64
}

// Partition is one partition's replica placement and leadership.
//
// Invariants the controller keeps: ISR ⊆ Replicas; a leader ≥ 0 is in the
// ISR; AddingReplicas and RemovingReplicas are disjoint subsets of
// Replicas, non-empty only while a reassignment is in progress. During a
// reassignment Replicas is the target followed by the replicas being
// removed, so the target is Replicas minus RemovingReplicas, in order.
type Partition struct {
	Index            int32
	Leader           int32 // -1 when offline
	LeaderEpoch      int32
	PartitionEpoch   int32
	Replicas         []int32
	ISR              []int32
	AddingReplicas   []int32
	RemovingReplicas []int32
}

// Reassigning reports whether a reassignment of p is in progress.
func (p *Partition) Reassigning() bool {
	return len(p.AddingReplicas) > 0 || len(p.RemovingReplicas) > 0
}

// TargetReplicas is where p's replicas are going: Replicas minus the ones
// being removed (all of Replicas when no reassignment is in progress).
func (p *Partition) TargetReplicas() []int32 {
	if len(p.RemovingReplicas) == 0 {
		return p.Replicas
	}
	return without(p.Replicas, p.RemovingReplicas...)
}

// Topic is a topic with its partitions and its per-topic config overrides.
type Topic struct {
	Name       string
	ID         TopicID
	Partitions []Partition
	Configs    map[string]string // overrides only; defaults come from the broker
	Internal   bool
}

// Image is an immutable snapshot of the cluster metadata.
type Image struct {
	ClusterID    string
	ControllerID int32
	Brokers      []Broker // sorted by ID
	topics       map[string]*Topic
	topicsByID   map[TopicID]*Topic
	// NextProducerID is the first producer id not yet handed out.
	NextProducerID int64
	// Offset is the log offset of the last batch applied: the last
	// record's offset in a FileJournal, the raft index in a cluster; -1
	// for an empty log.
	Offset int64
}

// NewImage returns the empty image of a cluster.
func NewImage(clusterID string) *Image {
	return &Image{
		ClusterID:    clusterID,
		ControllerID: -1,
		topics:       map[string]*Topic{},
		topicsByID:   map[TopicID]*Topic{},
		Offset:       -1,
	}
}

// Topic returns the named topic, or nil.
func (img *Image) Topic(name string) *Topic { return img.topics[name] }

// TopicByID returns the topic with the given id, or nil.
func (img *Image) TopicByID(id TopicID) *Topic { return img.topicsByID[id] }

// TopicNames returns every topic name, sorted.
func (img *Image) TopicNames() []string {
	names := make([]string, 0, len(img.topics))
	for n := range img.topics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// NumTopics is the number of topics.
func (img *Image) NumTopics() int { return len(img.topics) }

// Broker returns the broker with the given id.
func (img *Image) Broker(id int32) (Broker, bool) {
	i := sort.Search(len(img.Brokers), func(i int) bool { return img.Brokers[i].ID >= id })
	if i < len(img.Brokers) && img.Brokers[i].ID == id {
		return img.Brokers[i], true
	}
	return Broker{}, false
}

// LiveBroker reports whether id is registered and unfenced: a broker that
// may lead partitions and be in ISRs.
func (img *Image) LiveBroker(id int32) bool {
	b, ok := img.Broker(id)
	return ok && !b.Fenced
}

// Partition returns one partition of the named topic.
func (img *Image) Partition(topic string, partition int32) (*Partition, bool) {
	t := img.topics[topic]
	if t == nil || partition < 0 || int(partition) >= len(t.Partitions) {
		return nil, false
	}
	return &t.Partitions[partition], true
}

// OfflineReplicas lists the replicas of a partition whose broker is fenced
// or no longer registered, in replica order; nil when all are live or the
// partition does not exist.
func (img *Image) OfflineReplicas(topic string, partition int32) []int32 {
	p, ok := img.Partition(topic, partition)
	if !ok {
		return nil
	}
	var out []int32
	for _, r := range p.Replicas {
		if !img.LiveBroker(r) {
			out = append(out, r)
		}
	}
	return out
}

// PartitionReassignment is a reassignment in progress.
type PartitionReassignment struct {
	Topic            string
	Partition        int32
	Replicas         []int32 // target followed by the replicas being removed
	AddingReplicas   []int32
	RemovingReplicas []int32
}

// Reassignments lists the reassignments in progress, by topic and
// partition.
func (img *Image) Reassignments() []PartitionReassignment {
	var out []PartitionReassignment
	for _, name := range img.TopicNames() {
		t := img.topics[name]
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if p.Reassigning() {
				out = append(out, PartitionReassignment{
					Topic: name, Partition: p.Index, Replicas: slices.Clone(p.Replicas),
					AddingReplicas: slices.Clone(p.AddingReplicas), RemovingReplicas: slices.Clone(p.RemovingReplicas),
				})
			}
		}
	}
	return out
}

// without returns s minus the given ids, order kept, as a new slice.
func without(s []int32, ids ...int32) []int32 {
	out := make([]int32, 0, len(s))
	for _, v := range s {
		if !slices.Contains(ids, v) {
			out = append(out, v)
		}
	}
	return out
}

// TopicIndex looks topics up by name or id together with their partition
// counts: the view of the image a group coordinator needs (it satisfies
// actors/group.TopicView).
type TopicIndex struct{ img *Image }

// TopicIndex returns img's TopicIndex.
func (img *Image) TopicIndex() TopicIndex { return TopicIndex{img} }

// TopicByName returns the id and partition count of topic name.
func (v TopicIndex) TopicByName(name string) ([16]byte, int32, bool) {
	t := v.img.Topic(name)
	if t == nil {
		return [16]byte{}, 0, false
	}
	return t.ID, int32(len(t.Partitions)), true
}

// TopicByID returns the name and partition count of topic id.
func (v TopicIndex) TopicByID(id [16]byte) (string, int32, bool) {
	t := v.img.TopicByID(id)
	if t == nil {
		return "", 0, false
	}
	return t.Name, int32(len(t.Partitions)), true
}

// TopicNames lists every topic, sorted.
func (v TopicIndex) TopicNames() []string { return v.img.TopicNames() }
