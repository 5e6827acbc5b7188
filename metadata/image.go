package metadata

import "sort"

// TopicID is a topic's 16-byte UUID, as Kafka's Metadata v10+ carries it.
type TopicID [16]byte

// Broker is a registered broker as clients see it.
type Broker struct {
	ID     int32
	Host   string
	Port   int32
	Rack   string
	Fenced bool
}

// Partition is one partition's replica placement and leadership.
type Partition struct {
	Index          int32
	Leader         int32 // -1 when offline
	LeaderEpoch    int32
	PartitionEpoch int32
	Replicas       []int32
	ISR            []int32
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
	// Offset is the journal offset of the last record applied.
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
