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

// ApplyAll applies recs, the first at journal offset first, as one step:
// each changed topic is copied once however many records touch it, so
// creating a topic with n partitions costs O(n), not O(n²).
func ApplyAll(img *Image, first int64, recs []Record) (*Image, error) {
	a := newApplier(img)
	for i, rec := range recs {
		if err := a.apply(first+int64(i), rec); err != nil {
			return nil, err
		}
	}
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
		if !a.ownBrokers {
			img.Brokers = slices.Clone(img.Brokers)
			a.ownBrokers = true
		}
		nb := Broker(*b)
		i := sort.Search(len(img.Brokers), func(i int) bool { return img.Brokers[i].ID >= b.ID })
		if i < len(img.Brokers) && img.Brokers[i].ID == b.ID {
			img.Brokers[i] = nb
		} else {
			img.Brokers = slices.Insert(img.Brokers, i, nb)
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
		}
		if int(p.Index) == len(t.Partitions) {
			t.Partitions = append(t.Partitions, np)
		} else {
			t.Partitions[p.Index] = np
		}
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

func errMissing(rec Record) error {
	return fmt.Errorf("metadata record type %d without its payload", rec.Type)
}
