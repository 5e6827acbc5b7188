package metadata

import (
	"fmt"
	"maps"
	"slices"
	"sort"
)

// Apply returns the image that results from applying rec at journal offset
// offset to img. img is left untouched. A record that does not fit the
// image (a partition of an unknown topic, say) is an error and yields no
// new image; the controller validates commands before it writes records,
// so this indicates a corrupt journal.
func Apply(img *Image, offset int64, rec Record) (*Image, error) {
	a := newApplier(img)
	if err := a.apply(offset, rec); err != nil {
		return nil, err
	}
	return a.finish(), nil
}

// ApplyAll applies recs, the first at journal offset first and each next
// one at the next offset, as one step: each changed topic is copied once
// however many records touch it, so creating a topic with n partitions
// costs O(n), not O(n²).
func ApplyAll(img *Image, first int64, recs []Record) (*Image, error) {
	a := newApplier(img)
	for i, rec := range recs {
		if err := a.apply(first+int64(i), rec); err != nil {
			return nil, err
		}
	}
	return a.finish(), nil
}

// ApplyBatch applies recs as one batch at log offset offset: every record
// is applied at that offset (a raft entry holds a whole batch), and the
// new image's Offset is offset. All or nothing: on error img is the only
// image.
func ApplyBatch(img *Image, offset int64, recs []Record) (*Image, error) {
	a := newApplier(img)
	for _, rec := range recs {
		if err := a.apply(offset, rec); err != nil {
			return nil, err
		}
	}
	a.next.Offset = offset
	return a.finish(), nil
}

// applier builds a new image from a base one by copy-on-write. Whatever it
// has copied (the topic maps, the broker list, individual topics) it owns
// and may change in place until finish publishes the image; the base
// image is never written.
type applier struct {
	next        *Image
	ownMaps     bool
	ownBrokers  bool
	ownedTopics map[TopicID]bool
}

func newApplier(img *Image) *applier {
	c := *img
	return &applier{next: &c, ownedTopics: map[TopicID]bool{}}
}

// finish returns the new image; the applier must not be used afterwards.
func (a *applier) finish() *Image {
	n := a.next
	a.next = nil
	return n
}

func (a *applier) maps() {
	if !a.ownMaps {
		a.next.topics = maps.Clone(a.next.topics)
		a.next.topicsByID = maps.Clone(a.next.topicsByID)
		a.ownMaps = true
	}
}

// topic returns a copy of the topic with id that the applier owns.
func (a *applier) topic(id TopicID) *Topic {
	t := a.next.topicsByID[id]
	if t == nil {
		return nil
	}
	if a.ownedTopics[id] {
		return t
	}
	a.maps()
	nt := *t
	nt.Partitions = slices.Clone(t.Partitions)
	nt.Configs = maps.Clone(t.Configs)
	a.next.topics[nt.Name] = &nt
	a.next.topicsByID[nt.ID] = &nt
	a.ownedTopics[id] = true
	return &nt
}

func (a *applier) apply(offset int64, rec Record) error {
	img := a.next
	img.Offset = offset
	switch rec.Type {
	case RecordRegisterBroker:
		b := rec.Broker
		if b == nil {
			return errMissing(rec)
		}
		nb := Broker{
			ID: b.ID, Host: b.Host, Port: b.Port, Rack: b.Rack, Fenced: b.Fenced,
			Incarnation: b.Incarnation, ControllerAddr: b.ControllerAddr, GossipAddr: b.GossipAddr, Roles: b.Roles, Epoch: offset,
		}
		i, found := a.brokerIndex(b.ID)
		if found {
			if img.Brokers[i].Incarnation == b.Incarnation {
				// The same process re-registering (new listeners, say):
				// its broker epoch stays, as in Kafka.
				nb.Epoch = img.Brokers[i].Epoch
			}
			img.Brokers[i] = nb
		} else {
			img.Brokers = slices.Insert(img.Brokers, i, nb)
		}
	case RecordFenceBroker, RecordUnfenceBroker, RecordUnregisterBroker:
		r := rec.BrokerRef
		if r == nil {
			return errMissing(rec)
		}
		i, found := a.brokerIndex(r.ID)
		if !found {
			return fmt.Errorf("apply offset %d: record type %d for unknown broker %d", offset, rec.Type, r.ID)
		}
		switch rec.Type {
		case RecordFenceBroker:
			img.Brokers[i].Fenced = true
		case RecordUnfenceBroker:
			img.Brokers[i].Fenced = false
		default:
			img.Brokers = slices.Delete(img.Brokers, i, i+1)
		}
	case RecordController:
		if rec.Controller == nil {
			return errMissing(rec)
		}
		img.ControllerID = rec.Controller.ID
	case RecordTopic:
		t := rec.Topic
		if t == nil {
			return errMissing(rec)
		}
		if img.topics[t.Name] != nil {
			return fmt.Errorf("apply offset %d: topic %q already exists", offset, t.Name)
		}
		if img.topicsByID[t.ID] != nil {
			return fmt.Errorf("apply offset %d: topic id %x already exists", offset, t.ID)
		}
		a.maps()
		nt := &Topic{Name: t.Name, ID: t.ID, Internal: t.Internal, Configs: map[string]string{}}
		img.topics[t.Name] = nt
		img.topicsByID[t.ID] = nt
		a.ownedTopics[t.ID] = true
	case RecordPartition:
		p := rec.Partition
		if p == nil {
			return errMissing(rec)
		}
		t := a.topic(p.TopicID)
		if t == nil {
			return fmt.Errorf("apply offset %d: partition of unknown topic id %x", offset, p.TopicID)
		}
		if p.Index < 0 || int(p.Index) > len(t.Partitions) {
			return fmt.Errorf("apply offset %d: partition %d of %q out of sequence", offset, p.Index, t.Name)
		}
		np := Partition{
			Index: p.Index, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch,
			Replicas: slices.Clone(p.Replicas), ISR: slices.Clone(p.ISR),
			AddingReplicas: cloneOrNil(p.AddingReplicas), RemovingReplicas: cloneOrNil(p.RemovingReplicas),
		}
		if int(p.Index) == len(t.Partitions) {
			t.Partitions = append(t.Partitions, np)
		} else {
			t.Partitions[p.Index] = np
		}
	case RecordPartitionChange:
		pc := rec.PartitionChange
		if pc == nil {
			return errMissing(rec)
		}
		t := a.topic(pc.TopicID)
		if t == nil {
			return fmt.Errorf("apply offset %d: partition change of unknown topic id %x", offset, pc.TopicID)
		}
		if pc.Index < 0 || int(pc.Index) >= len(t.Partitions) {
			return fmt.Errorf("apply offset %d: change of unknown partition %d of %q", offset, pc.Index, t.Name)
		}
		np, err := changePartition(t.Partitions[pc.Index], pc)
		if err != nil {
			return fmt.Errorf("apply offset %d: partition %q/%d: %w", offset, t.Name, pc.Index, err)
		}
		t.Partitions[pc.Index] = np
	case RecordRemoveTopic:
		r := rec.RemoveTopic
		if r == nil {
			return errMissing(rec)
		}
		old := img.topicsByID[r.ID]
		if old == nil {
			return fmt.Errorf("apply offset %d: remove unknown topic id %x", offset, r.ID)
		}
		a.maps()
		delete(img.topics, old.Name)
		delete(img.topicsByID, old.ID)
		delete(a.ownedTopics, old.ID)
	case RecordConfig:
		c := rec.Config
		if c == nil {
			return errMissing(rec)
		}
		old := img.topics[c.Topic]
		if old == nil {
			return fmt.Errorf("apply offset %d: config for unknown topic %q", offset, c.Topic)
		}
		t := a.topic(old.ID)
		if c.Value == nil {
			delete(t.Configs, c.Name)
		} else {
			t.Configs[c.Name] = *c.Value
		}
	case RecordProducerIDs:
		r := rec.ProducerIDs
		if r == nil {
			return errMissing(rec)
		}
		if r.First < img.NextProducerID {
			return fmt.Errorf("apply offset %d: producer id block %d below next %d", offset, r.First, img.NextProducerID)
		}
		img.NextProducerID = r.First + r.Count
	default:
		return fmt.Errorf("apply offset %d: unknown record type %d", offset, rec.Type)
	}
	return nil
}

// brokerIndex finds broker id in the (owned) broker list: its index, or
// where it would be inserted.
func (a *applier) brokerIndex(id int32) (int, bool) {
	if !a.ownBrokers {
		a.next.Brokers = slices.Clone(a.next.Brokers)
		a.ownBrokers = true
	}
	bs := a.next.Brokers
	i := sort.Search(len(bs), func(i int) bool { return bs[i].ID >= id })
	return i, i < len(bs) && bs[i].ID == id
}

// changePartition returns p with the change applied, or why the change
// would break a Partition invariant. p is not modified.
func changePartition(p Partition, pc *PartitionChangeRecord) (Partition, error) {
	np := p
	if pc.Replicas != nil {
		np.Replicas = slices.Clone(pc.Replicas)
	}
	if pc.ISR != nil {
		np.ISR = slices.Clone(pc.ISR)
	}
	if pc.AddingReplicas != nil {
		np.AddingReplicas = cloneOrNil(pc.AddingReplicas)
	}
	if pc.RemovingReplicas != nil {
		np.RemovingReplicas = cloneOrNil(pc.RemovingReplicas)
	}
	if pc.Leader != NoLeaderChange {
		np.Leader = pc.Leader
	}
	switch {
	case len(np.Replicas) == 0:
		return Partition{}, fmt.Errorf("no replicas")
	case hasDuplicates(np.Replicas):
		return Partition{}, fmt.Errorf("replicas %v list a broker twice", np.Replicas)
	case hasDuplicates(np.ISR) || !subset(np.ISR, np.Replicas):
		return Partition{}, fmt.Errorf("isr %v is not a set of replicas %v", np.ISR, np.Replicas)
	case !subset(np.AddingReplicas, np.Replicas) || !subset(np.RemovingReplicas, np.Replicas) || intersects(np.AddingReplicas, np.RemovingReplicas):
		return Partition{}, fmt.Errorf("adding %v and removing %v must be disjoint subsets of replicas %v", np.AddingReplicas, np.RemovingReplicas, np.Replicas)
	case np.Leader < -1:
		return Partition{}, fmt.Errorf("invalid leader %d", np.Leader)
	case np.Leader >= 0 && !slices.Contains(np.ISR, np.Leader):
		return Partition{}, fmt.Errorf("leader %d is not in isr %v", np.Leader, np.ISR)
	}
	// A replica leaving the replica set must no longer fetch from the
	// leader: bumping the leader epoch fences it, as Kafka does.
	if np.Leader != p.Leader || !subset(p.Replicas, np.Replicas) {
		np.LeaderEpoch++
	}
	np.PartitionEpoch++
	return np, nil
}

func cloneOrNil(s []int32) []int32 {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func hasDuplicates(s []int32) bool {
	for i, v := range s {
		if slices.Contains(s[:i], v) {
			return true
		}
	}
	return false
}

// subset reports whether every element of s is in of.
func subset(s, of []int32) bool {
	for _, v := range s {
		if !slices.Contains(of, v) {
			return false
		}
	}
	return true
}

func intersects(a, b []int32) bool {
	for _, v := range a {
		if slices.Contains(b, v) {
			return true
		}
	}
	return false
}

func errMissing(rec Record) error {
	return fmt.Errorf("metadata record type %d without its payload", rec.Type)
}
