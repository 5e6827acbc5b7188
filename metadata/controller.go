package metadata

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Defaults are the broker settings the controller applies to commands that
// leave them out.
type Defaults struct {
	NumPartitions     int32
	ReplicationFactor int16
	DeleteTopicEnable bool
	// BrokerConfig holds the broker's explicitly set keys (for topic config
	// fallbacks); see EffectiveTopicConfigs.
	BrokerConfig map[string]string
}

// maxPartitionsPerTopic bounds one topic's partitions. Each partition is
// an actor with open segment files on its leader, so a mistyped count
// must not take a node down.
const maxPartitionsPerTopic = 100_000

// producerIDBlock is how many producer ids one journal record reserves, so
// that allocating an id is usually a memory operation.
const producerIDBlock = 1000

// Controller validates administrative commands, turns them into records,
// makes them durable through its Journal and applies them to the image.
// Commands are serialised by mu; readers take the current image through
// Image without locking.
type Controller struct {
	mu       sync.Mutex
	journal  Journal
	img      atomic.Pointer[Image]
	defaults Defaults
	nodeID   int32
	// random supplies topic ids; crypto/rand in production, seeded in sim.
	random io.Reader
	// producer ids reserved by the last ProducerIDsRecord and not yet used.
	pidNext, pidEnd int64
	watchers        []func(old, new *Image)
}

// NewController replays the journal into an image and returns the
// controller of a node. clusterID names a brand-new cluster; an existing
// journal keeps its own.
func NewController(j Journal, nodeID int32, clusterID string, d Defaults, random io.Reader) (*Controller, error) {
	// One applier across the whole replay: each topic is copied once.
	a := newApplier(NewImage(clusterID))
	err := j.Replay(func(off int64, rec Record) error { return a.apply(off, rec) })
	if err != nil {
		return nil, fmt.Errorf("replay metadata journal: %w", err)
	}
	img := a.finish()
	c := &Controller{journal: j, defaults: d, nodeID: nodeID, random: random}
	c.img.Store(img)
	// Ids reserved before a restart may have been handed out; never reuse
	// them: start from the next block.
	c.pidNext, c.pidEnd = img.NextProducerID, img.NextProducerID
	return c, nil
}

// Image returns the current image.
func (c *Controller) Image() *Image { return c.img.Load() }

// Defaults returns the controller's defaults.
func (c *Controller) Defaults() Defaults { return c.defaults }

// Watch registers fn to run after every change, under the controller's
// lock, with the images before and after. fn must not call back into the
// controller.
func (c *Controller) Watch(fn func(old, new *Image)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watchers = append(c.watchers, fn)
}

// commitLocked makes recs durable, applies them and notifies watchers.
func (c *Controller) commitLocked(recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	old := c.img.Load()
	// Apply first on a scratch image so an invalid record is caught before
	// it reaches the journal.
	img, err := ApplyAll(old, old.Offset+1, recs)
	if err != nil {
		return fmt.Errorf("metadata: %v: %w", err, kerr.UnknownServerError)
	}
	if _, err := c.journal.Append(recs); err != nil {
		return fmt.Errorf("metadata: %v: %w", err, kerr.KafkaStorageError)
	}
	c.img.Store(img)
	for _, w := range c.watchers {
		w(old, img)
	}
	return nil
}

// RegisterBroker records this node's listener and makes it the controller
// (single-node mode). It writes nothing when the image already says so.
func (c *Controller) RegisterBroker(b BrokerRecord) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	img := c.img.Load()
	var recs []Record
	if cur, ok := img.Broker(b.ID); !ok || cur != Broker(b) {
		recs = append(recs, Record{Type: RecordRegisterBroker, Broker: &b})
	}
	if img.ControllerID != c.nodeID {
		recs = append(recs, Record{Type: RecordController, Controller: &ControllerRecord{ID: c.nodeID}})
	}
	return c.commitLocked(recs)
}

// ValidTopicName reports why name cannot be a topic, or nil.
func ValidTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("topic name is empty: %w", kerr.InvalidTopicException)
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is not allowed: %w", name, kerr.InvalidTopicException)
	case len(name) > 249:
		return fmt.Errorf("topic name is longer than 249 characters: %w", kerr.InvalidTopicException)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic name %q contains %q; legal characters are ASCII letters, digits, '.', '_' and '-': %w", name, r, kerr.InvalidTopicException)
		}
	}
	return nil
}

// CreateTopics creates topics; the result has one error (or nil) per request.
func (c *Controller) CreateTopics(reqs []CreateTopic, validateOnly bool) []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	errs := make([]error, len(reqs))
	seen := map[string]int{}
	for _, r := range reqs {
		seen[r.Name]++
	}
	for i, r := range reqs {
		if seen[r.Name] > 1 {
			errs[i] = fmt.Errorf("topic %q appears more than once in the request: %w", r.Name, kerr.InvalidRequest)
			continue
		}
		recs, err := c.createTopicRecords(r)
		if err != nil {
			errs[i] = err
			continue
		}
		if validateOnly {
			continue
		}
		errs[i] = c.commitLocked(recs)
	}
	return errs
}

func (c *Controller) createTopicRecords(r CreateTopic) ([]Record, error) {
	img := c.img.Load()
	if err := ValidTopicName(r.Name); err != nil {
		return nil, err
	}
	if img.Topic(r.Name) != nil {
		return nil, fmt.Errorf("topic %q already exists: %w", r.Name, kerr.TopicAlreadyExists)
	}
	if collides := collidingTopic(img, r.Name); collides != "" {
		return nil, fmt.Errorf("topic %q collides with existing topic %q ('.' and '_' are equivalent in metric names): %w", r.Name, collides, kerr.InvalidTopicException)
	}
	live := liveBrokers(img)
	var assignment [][]int32
	if len(r.Assignment) > 0 {
		if r.NumPartitions != -1 || r.ReplicationFactor != -1 {
			return nil, fmt.Errorf("both a replica assignment and a partition count or replication factor were given: %w", kerr.InvalidRequest)
		}
		if err := validateAssignment(img, r.Assignment, 0); err != nil {
			return nil, err
		}
		assignment = r.Assignment
	} else {
		n, rf := r.NumPartitions, r.ReplicationFactor
		if n == -1 {
			n = c.defaults.NumPartitions
		}
		if rf == -1 {
			rf = c.defaults.ReplicationFactor
		}
		if n <= 0 {
			return nil, fmt.Errorf("number of partitions must be larger than 0, got %d: %w", n, kerr.InvalidPartitions)
		}
		if n > maxPartitionsPerTopic {
			return nil, fmt.Errorf("number of partitions %d is over the limit of %d: %w", n, maxPartitionsPerTopic, kerr.InvalidPartitions)
		}
		if rf <= 0 {
			return nil, fmt.Errorf("replication factor must be larger than 0, got %d: %w", rf, kerr.InvalidReplicationFactor)
		}
		if int(rf) > len(live) {
			return nil, fmt.Errorf("replication factor %d is larger than the %d available brokers: %w", rf, len(live), kerr.InvalidReplicationFactor)
		}
		assignment = assignReplicas(live, 0, n, int(rf))
	}
	for name, v := range r.Configs {
		if v == nil {
			return nil, fmt.Errorf("topic config %q has a null value: %w", name, kerr.InvalidConfig)
		}
		if err := ValidateTopicConfig(name, *v); err != nil {
			return nil, err
		}
	}
	var id TopicID
	if _, err := io.ReadFull(c.random, id[:]); err != nil {
		return nil, fmt.Errorf("topic id: %v: %w", err, kerr.UnknownServerError)
	}
	// Version 4 UUID bits, as Kafka's Uuid.randomUuid.
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	recs := []Record{{Type: RecordTopic, Topic: &TopicRecord{Name: r.Name, ID: id, Internal: strings.HasPrefix(r.Name, "__")}}}
	for _, name := range sortedKeys(r.Configs) {
		recs = append(recs, Record{Type: RecordConfig, Config: &ConfigRecord{Topic: r.Name, Name: name, Value: r.Configs[name]}})
	}
	for p, replicas := range assignment {
		recs = append(recs, Record{Type: RecordPartition, Partition: &PartitionRecord{
			TopicID: id, Index: int32(p), Leader: replicas[0], Replicas: replicas, ISR: replicas,
		}})
	}
	return recs, nil
}

// collidingTopic finds an existing topic whose name differs from name only
// by '.' versus '_', which Kafka forbids.
func collidingTopic(img *Image, name string) string {
	norm := strings.ReplaceAll(name, ".", "_")
	for _, n := range img.TopicNames() {
		if n != name && strings.ReplaceAll(n, ".", "_") == norm {
			return n
		}
	}
	return ""
}

func liveBrokers(img *Image) []int32 {
	var ids []int32
	for _, b := range img.Brokers {
		if !b.Fenced {
			ids = append(ids, b.ID)
		}
	}
	return ids
}

// assignReplicas spreads partitions [first, first+n) round-robin over the
// brokers, each partition's replicas on distinct brokers, leaders rotating.
func assignReplicas(brokers []int32, first, n int32, rf int) [][]int32 {
	out := make([][]int32, 0, n)
	for p := first; p < first+n; p++ {
		replicas := make([]int32, rf)
		for r := 0; r < rf; r++ {
			replicas[r] = brokers[(int(p)+r)%len(brokers)]
		}
		out = append(out, replicas)
	}
	return out
}

func validateAssignment(img *Image, assignment [][]int32, first int) error {
	rf := -1
	for i, replicas := range assignment {
		if len(replicas) == 0 {
			return fmt.Errorf("partition %d has no replicas: %w", first+i, kerr.InvalidReplicaAssignment)
		}
		if rf != -1 && len(replicas) != rf {
			return fmt.Errorf("partitions have different replica counts: %w", kerr.InvalidReplicaAssignment)
		}
		rf = len(replicas)
		seen := map[int32]bool{}
		for _, b := range replicas {
			if _, ok := img.Broker(b); !ok {
				return fmt.Errorf("partition %d: unknown broker %d: %w", first+i, b, kerr.InvalidReplicaAssignment)
			}
			if seen[b] {
				return fmt.Errorf("partition %d: broker %d listed twice: %w", first+i, b, kerr.InvalidReplicaAssignment)
			}
			seen[b] = true
		}
	}
	return nil
}

// DeleteTopics deletes topics by name.
func (c *Controller) DeleteTopics(names []string) []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	errs := make([]error, len(names))
	for i, name := range names {
		if !c.defaults.DeleteTopicEnable {
			errs[i] = fmt.Errorf("topic deletion is disabled (delete.topic.enable=false): %w", kerr.TopicDeletionDisabled)
			continue
		}
		t := c.img.Load().Topic(name)
		if t == nil {
			errs[i] = fmt.Errorf("topic %q does not exist: %w", name, kerr.UnknownTopicOrPartition)
			continue
		}
		errs[i] = c.commitLocked([]Record{{Type: RecordRemoveTopic, RemoveTopic: &RemoveTopicRecord{ID: t.ID}}})
	}
	return errs
}

// CreatePartitions grows topics.
func (c *Controller) CreatePartitions(reqs []CreatePartitions, validateOnly bool) []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	errs := make([]error, len(reqs))
	for i, r := range reqs {
		img := c.img.Load()
		t := img.Topic(r.Topic)
		if t == nil {
			errs[i] = fmt.Errorf("topic %q does not exist: %w", r.Topic, kerr.UnknownTopicOrPartition)
			continue
		}
		have := int32(len(t.Partitions))
		if r.Count <= have {
			errs[i] = fmt.Errorf("topic %q has %d partitions; the new count must be larger, got %d: %w", r.Topic, have, r.Count, kerr.InvalidPartitions)
			continue
		}
		if r.Count > maxPartitionsPerTopic {
			errs[i] = fmt.Errorf("partition count %d is over the limit of %d: %w", r.Count, maxPartitionsPerTopic, kerr.InvalidPartitions)
			continue
		}
		rf := len(t.Partitions[0].Replicas)
		var assignment [][]int32
		if len(r.Assignment) > 0 {
			if int32(len(r.Assignment)) != r.Count-have {
				errs[i] = fmt.Errorf("assignment lists %d partitions but %d are being added: %w", len(r.Assignment), r.Count-have, kerr.InvalidReplicaAssignment)
				continue
			}
			if err := validateAssignment(img, r.Assignment, int(have)); err != nil {
				errs[i] = err
				continue
			}
			assignment = r.Assignment
		} else {
			live := liveBrokers(img)
			if rf > len(live) {
				errs[i] = fmt.Errorf("replication factor %d is larger than the %d available brokers: %w", rf, len(live), kerr.InvalidReplicationFactor)
				continue
			}
			assignment = assignReplicas(live, have, r.Count-have, rf)
		}
		if validateOnly {
			continue
		}
		var recs []Record
		for j, replicas := range assignment {
			recs = append(recs, Record{Type: RecordPartition, Partition: &PartitionRecord{
				TopicID: t.ID, Index: have + int32(j), Leader: replicas[0], Replicas: replicas, ISR: replicas,
			}})
		}
		errs[i] = c.commitLocked(recs)
	}
	return errs
}

// AlterTopicConfigs applies IncrementalAlterConfigs operations to a topic.
func (c *Controller) AlterTopicConfigs(topic string, ops []ConfigOp, validateOnly bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.img.Load().Topic(topic)
	if t == nil {
		return fmt.Errorf("topic %q does not exist: %w", topic, kerr.UnknownTopicOrPartition)
	}
	effective := map[string]string{}
	for _, cv := range EffectiveTopicConfigs(t, c.defaults.BrokerConfig) {
		effective[cv.Name] = cv.Value
	}
	var recs []Record
	seen := map[string]bool{}
	for _, op := range ops {
		if seen[op.Name] {
			return fmt.Errorf("config %q appears more than once: %w", op.Name, kerr.InvalidRequest)
		}
		seen[op.Name] = true
		def, ok := TopicConfigDefByName(op.Name)
		if !ok {
			return fmt.Errorf("unknown topic config %q: %w", op.Name, kerr.InvalidConfig)
		}
		var value *string
		switch op.Op {
		case ConfigSet:
			if op.Value == nil {
				return fmt.Errorf("config %q: SET needs a value: %w", op.Name, kerr.InvalidConfig)
			}
			value = op.Value
		case ConfigDelete:
		case ConfigAppend, ConfigSubtract:
			if def.Type != TypeList {
				return fmt.Errorf("config %q is not a list; APPEND and SUBTRACT apply to lists only: %w", op.Name, kerr.InvalidConfig)
			}
			items := splitList(effective[op.Name])
			for _, v := range splitList(deref(op.Value)) {
				has := slices.Contains(items, v)
				if op.Op == ConfigAppend && !has {
					items = append(items, v)
				}
				if op.Op == ConfigSubtract && has {
					items = slices.DeleteFunc(items, func(s string) bool { return s == v })
				}
			}
			joined := strings.Join(items, ",")
			value = &joined
		default:
			return fmt.Errorf("config %q: unknown operation %d: %w", op.Name, op.Op, kerr.InvalidRequest)
		}
		if value != nil {
			if err := ValidateTopicConfig(op.Name, *value); err != nil {
				return err
			}
		}
		recs = append(recs, Record{Type: RecordConfig, Config: &ConfigRecord{Topic: topic, Name: op.Name, Value: value}})
	}
	if validateOnly {
		return nil
	}
	return c.commitLocked(recs)
}

func splitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// AllocateProducerID returns a producer id never handed out before, on
// this node or (after the cluster work) any other.
func (c *Controller) AllocateProducerID() (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pidNext >= c.pidEnd {
		first := c.img.Load().NextProducerID
		if err := c.commitLocked([]Record{{Type: RecordProducerIDs, ProducerIDs: &ProducerIDsRecord{BrokerID: c.nodeID, First: first, Count: producerIDBlock}}}); err != nil {
			return 0, err
		}
		c.pidNext, c.pidEnd = first, first+producerIDBlock
	}
	id := c.pidNext
	c.pidNext++
	return id, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
