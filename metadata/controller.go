package metadata

import (
	"errors"
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
	// fallbacks, unclean.leader.election.enable among them); see
	// EffectiveTopicConfigs.
	BrokerConfig map[string]string
	// BrokerSessionTimeoutMs is broker.session.timeout.ms: a broker whose
	// last heartbeat is older is fenced by Tick. 0 means Kafka's 9000.
	BrokerSessionTimeoutMs int64
}

// DefaultBrokerSessionTimeoutMs is Kafka's broker.session.timeout.ms.
const DefaultBrokerSessionTimeoutMs = 9000

func (d Defaults) sessionTimeoutMs() int64 {
	if d.BrokerSessionTimeoutMs > 0 {
		return d.BrokerSessionTimeoutMs
	}
	return DefaultBrokerSessionTimeoutMs
}

// maxPartitionsPerTopic bounds one topic's partitions. Each partition is
// an actor with open segment files on its leader, so a mistyped count
// must not take a node down.
const maxPartitionsPerTopic = 100_000

// ProducerIDBlockSize is how many producer ids one ProducerIDsRecord
// reserves, so that allocating an id is usually a memory operation.
const ProducerIDBlockSize = 1000

// Controller validates administrative commands, turns them into records
// and proposes them through its Journal; committed batches come back
// through Apply, which publishes the next image and runs the watchers.
// Readers take the current image through Image without locking.
//
// Locks: mu serialises commands, each of which validates against the
// current image and returns only once its records are applied, so the
// next command sees them. applyMu serialises Apply and guards the
// watchers. The order is mu before applyMu, and Apply never takes mu: a
// command holding mu waits in Journal.Append for the journal's apply loop,
// which must be able to run Apply meanwhile.
//
// Only the active controller proposes. A new Controller is active, as a
// single node is its own controller. In a cluster the node calls Resign at
// once and BecomeActive whenever its quorum member wins an election;
// applying a ControllerRecord that names another node resigns too.
type Controller struct {
	mu           sync.Mutex
	journal      Journal
	selfApplying bool // journal implements CommitHook
	defaults     Defaults
	nodeID       int32
	// random supplies topic ids; crypto/rand in production, seeded in sim.
	random io.Reader
	// producer ids reserved for this node by the last ProducerIDsRecord it
	// wrote and not yet used. Guarded by mu.
	pidNext, pidEnd int64
	// lastHeartbeatMs is when each broker last heartbeated, by id: kept in
	// memory by the active controller only (as Kafka does), reset by
	// BecomeActive. A broker missing from it starts its session at the
	// next Tick. Guarded by mu.
	lastHeartbeatMs map[int32]int64

	active atomic.Bool
	img    atomic.Pointer[Image]

	applyMu  sync.Mutex
	watchers []func(old, new *Image)
}

// NewController replays the journal into an image and returns the
// controller of a node. clusterID is the image's cluster id (the node
// keeps it in meta.properties; the log does not record it). If j is a
// FileJournal or implements CommitHook, the controller installs its apply
// function as the hook after the replay.
func NewController(j Journal, nodeID int32, clusterID string, d Defaults, random io.Reader) (*Controller, error) {
	// One applier across the whole replay: each topic is copied once.
	a := newApplier(NewImage(clusterID))
	err := j.Replay(func(off int64, rec Record) error { return a.apply(off, rec) })
	if err != nil {
		return nil, fmt.Errorf("replay metadata journal: %w", err)
	}
	img := a.finish()
	c := &Controller{journal: j, defaults: d, nodeID: nodeID, random: random, lastHeartbeatMs: map[int32]int64{}}
	c.img.Store(img)
	// Ids reserved before a restart may have been handed out; never reuse
	// them: start from the next block.
	c.pidNext, c.pidEnd = img.NextProducerID, img.NextProducerID
	c.active.Store(true)
	switch h := j.(type) {
	case *FileJournal:
		h.SetApply(c.applyNumbered)
		c.selfApplying = true
	case CommitHook:
		h.SetApply(c.Apply)
		c.selfApplying = true
	}
	return c, nil
}

// Image returns the current image.
func (c *Controller) Image() *Image { return c.img.Load() }

// Defaults returns the controller's defaults.
func (c *Controller) Defaults() Defaults { return c.defaults }

// NodeID is the id of the node this controller runs on.
func (c *Controller) NodeID() int32 { return c.nodeID }

// Active reports whether this controller may propose: it is the single
// node's controller, or BecomeActive succeeded and it has not resigned.
func (c *Controller) Active() bool { return c.active.Load() }

// Watch registers fn to run after every applied batch, under the apply
// lock, with the images before and after. fn must not call back into the
// controller's commands (they may wait for the apply it is part of).
func (c *Controller) Watch(fn func(old, new *Image)) {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	c.watchers = append(c.watchers, fn)
}

// Apply applies a committed batch at log offset offset (the raft index,
// or a FileJournal's last record offset) and runs the watchers. The
// journal calls it for every committed batch, in order, on every node. A
// batch at or below the image's offset was applied already (a raft log
// replayed over a snapshot) and is skipped. A batch that does not apply
// leaves the image as it was and returns the error; every node fails the
// same way, since Apply is deterministic.
//
// Every record of the batch is applied at offset (a raft entry is one
// batch); a registration's Broker.Epoch is that offset.
func (c *Controller) Apply(offset int64, recs []Record) error {
	return c.apply(offset, recs, ApplyBatch)
}

// applyNumbered is Apply for a log that numbers every record (FileJournal,
// or a Journal without CommitHook): offset is the batch's last record's,
// and the records before it have the offsets before, exactly as Replay
// numbers them, so that a restart rebuilds the very same image.
func (c *Controller) applyNumbered(offset int64, recs []Record) error {
	return c.apply(offset, recs, func(img *Image, last int64, recs []Record) (*Image, error) {
		return ApplyAll(img, last-int64(len(recs))+1, recs)
	})
}

func (c *Controller) apply(offset int64, recs []Record, applyFn func(*Image, int64, []Record) (*Image, error)) error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	old := c.img.Load()
	if offset <= old.Offset {
		return nil
	}
	img, err := applyFn(old, offset, recs)
	if err != nil {
		return err
	}
	img.Offset = offset
	c.publishLocked(old, img, len(recs) > 0)
	return nil
}

// Restore replaces the image with img, a raft snapshot's (see
// ImageFromSnapshot), and runs the watchers. A snapshot at or below the
// current offset is ignored: the image already has everything in it.
func (c *Controller) Restore(img *Image) error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	old := c.img.Load()
	if img.Offset <= old.Offset {
		return nil
	}
	if old.ClusterID != "" && img.ClusterID != old.ClusterID {
		return fmt.Errorf("metadata snapshot of cluster %q restored on cluster %q", img.ClusterID, old.ClusterID)
	}
	c.publishLocked(old, img, true)
	return nil
}

// publishLocked makes img current. Called with applyMu held.
func (c *Controller) publishLocked(old, img *Image, notify bool) {
	c.img.Store(img)
	if img.ControllerID != c.nodeID && img.ControllerID != old.ControllerID {
		// Another node took over: whatever this one believed, it may no
		// longer propose.
		c.active.Store(false)
	}
	if notify {
		for _, w := range c.watchers {
			w(old, img)
		}
	}
}

// Resign stops this controller from proposing: the node's quorum member
// lost (or never had) the raft leadership. It never blocks, so the raft
// loop may call it.
func (c *Controller) Resign() { c.active.Store(false) }

// BecomeActive makes this node the active controller once its quorum
// member leads raft: it proposes a ControllerRecord naming this node and
// waits for it to apply, so that everything committed before is in the
// image, then starts every registered broker's heartbeat session at nowMs
// (heartbeat times are not in the log). It blocks until the record
// applies, so it must not run on the goroutine that applies batches.
func (c *Controller) BecomeActive(nowMs int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.commitLocked([]Record{{Type: RecordController, Controller: &ControllerRecord{ID: c.nodeID}}}); err != nil {
		return fmt.Errorf("take over as controller: %w", err)
	}
	img := c.img.Load()
	clear(c.lastHeartbeatMs)
	for _, b := range img.Brokers {
		c.lastHeartbeatMs[b.ID] = nowMs
	}
	return c.activateIfNamed()
}

// activateIfNamed marks the controller active if the image names it; under
// applyMu so that it cannot interleave with Apply of another node's
// ControllerRecord.
func (c *Controller) activateIfNamed() error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	if id := c.img.Load().ControllerID; id != c.nodeID {
		return fmt.Errorf("node %d took over meanwhile: %w", id, ErrNotController)
	}
	c.active.Store(true)
	return nil
}

// checkActive fails commands on a node that may not propose.
func (c *Controller) checkActive() error {
	if !c.active.Load() {
		return ErrNotController
	}
	return nil
}

// commitLocked proposes recs as one batch and returns once they are
// applied. Called with mu held.
func (c *Controller) commitLocked(recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	// Apply first on a scratch image so an invalid record is caught before
	// it reaches the log, where it would fail on every node.
	old := c.img.Load()
	if _, err := ApplyBatch(old, old.Offset+1, recs); err != nil {
		return fmt.Errorf("metadata: %v: %w", err, kerr.UnknownServerError)
	}
	last, err := c.journal.Append(recs)
	if err != nil {
		if ke := (*kerr.Error)(nil); errors.As(err, &ke) {
			return fmt.Errorf("metadata: %w", err) // NOT_CONTROLLER and the like
		}
		return fmt.Errorf("metadata: %v: %w", err, kerr.KafkaStorageError)
	}
	if !c.selfApplying {
		if err := c.applyNumbered(last, recs); err != nil {
			return fmt.Errorf("metadata: %v: %w", err, kerr.UnknownServerError)
		}
	}
	return nil
}

// RegisterBroker writes registration b exactly as given and makes this
// node the controller: the single-node path (and tests), where the node is
// its own controller and no one heartbeats. It writes nothing when the
// image already says so. Unlike RegisterBrokerIncarnation it neither
// fences a new incarnation nor moves leaderships. Cluster nodes use
// RegisterBrokerIncarnation and BrokerHeartbeat.
func (c *Controller) RegisterBroker(b BrokerRecord) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	img := c.img.Load()
	var recs []Record
	if cur, ok := img.Broker(b.ID); !ok || brokerRecordOf(cur) != b {
		recs = append(recs, Record{Type: RecordRegisterBroker, Broker: &b})
	}
	if img.ControllerID != c.nodeID {
		recs = append(recs, Record{Type: RecordController, Controller: &ControllerRecord{ID: c.nodeID}})
	}
	if err := c.commitLocked(recs); err != nil {
		return err
	}
	return c.activateIfNamed()
}

func brokerRecordOf(b Broker) BrokerRecord {
	return BrokerRecord{
		ID: b.ID, Host: b.Host, Port: b.Port, Rack: b.Rack, Fenced: b.Fenced,
		Incarnation: b.Incarnation, ControllerAddr: b.ControllerAddr, GossipAddr: b.GossipAddr, Roles: b.Roles,
	}
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
	if err := c.checkActive(); err != nil {
		return fill(errs, err)
	}
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
	rf := 0
	if len(r.Assignment) > 0 {
		if r.NumPartitions != -1 || r.ReplicationFactor != -1 {
			return nil, fmt.Errorf("both a replica assignment and a partition count or replication factor were given: %w", kerr.InvalidRequest)
		}
		if err := validateAssignment(img, r.Assignment, 0); err != nil {
			return nil, err
		}
		assignment = r.Assignment
	} else {
		n, wantRF := r.NumPartitions, r.ReplicationFactor
		if n == -1 {
			n = c.defaults.NumPartitions
		}
		if wantRF == -1 {
			wantRF = c.defaults.ReplicationFactor
		}
		rf = int(wantRF)
		if n <= 0 {
			return nil, fmt.Errorf("number of partitions must be larger than 0, got %d: %w", n, kerr.InvalidPartitions)
		}
		if n > maxPartitionsPerTopic {
			return nil, fmt.Errorf("number of partitions %d is over the limit of %d: %w", n, maxPartitionsPerTopic, kerr.InvalidPartitions)
		}
		if rf <= 0 {
			return nil, fmt.Errorf("replication factor must be larger than 0, got %d: %w", rf, kerr.InvalidReplicationFactor)
		}
		if rf > len(live) {
			return nil, fmt.Errorf("replication factor %d is larger than the %d available brokers: %w", rf, len(live), kerr.InvalidReplicationFactor)
		}
		// Placed once the topic id is drawn: the id seeds the placement.
		assignment = make([][]int32, n)
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
	if rf > 0 {
		assignment = assignReplicas(live, id, 0, int32(len(assignment)), rf)
	}
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
	if err := c.checkActive(); err != nil {
		return fill(errs, err)
	}
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
	if err := c.checkActive(); err != nil {
		return fill(errs, err)
	}
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
		// The topic's replication factor: partition 0's, not counting
		// replicas a reassignment is removing.
		rf := len(t.Partitions[0].TargetReplicas())
		var assignment [][]int32
		if len(r.Assignment) > 0 {
			if int32(len(r.Assignment)) != r.Count-have {
				errs[i] = fmt.Errorf("assignment lists %d partitions but %d are being added: %w", len(r.Assignment), r.Count-have, kerr.InvalidReplicaAssignment)
				continue
			}
			if n := len(r.Assignment[0]); n != rf {
				errs[i] = fmt.Errorf("assignment gives %d replicas per partition, topic %q has %d: %w", n, r.Topic, rf, kerr.InvalidReplicaAssignment)
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
			assignment = assignReplicas(live, t.ID, have, r.Count-have, rf)
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
	if err := c.checkActive(); err != nil {
		return err
	}
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
// this node or any other: ids come from blocks this node reserves through
// the log (AllocateProducerIDBlock), so a controller failover cannot hand
// an id out twice.
func (c *Controller) AllocateProducerID() (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pidNext >= c.pidEnd {
		first, count, err := c.allocateBlockLocked(c.nodeID)
		if err != nil {
			return 0, err
		}
		c.pidNext, c.pidEnd = first, first+count
	}
	id := c.pidNext
	c.pidNext++
	return id, nil
}

// AllocateProducerIDBlock reserves the next block of producer ids for
// broker brokerID (Kafka's AllocateProducerIds): [first, first+count).
// The block is the image's NextProducerID onwards, so a new controller
// carries on where the old one stopped.
func (c *Controller) AllocateProducerIDBlock(brokerID int32) (first, count int64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.allocateBlockLocked(brokerID)
}

func (c *Controller) allocateBlockLocked(brokerID int32) (int64, int64, error) {
	if err := c.checkActive(); err != nil {
		return 0, 0, err
	}
	first := c.img.Load().NextProducerID
	if err := c.commitLocked([]Record{{Type: RecordProducerIDs, ProducerIDs: &ProducerIDsRecord{BrokerID: brokerID, First: first, Count: ProducerIDBlockSize}}}); err != nil {
		return 0, 0, err
	}
	return first, ProducerIDBlockSize, nil
}

// fill sets every element of errs to err and returns errs.
func fill(errs []error, err error) []error {
	for i := range errs {
		errs[i] = err
	}
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
