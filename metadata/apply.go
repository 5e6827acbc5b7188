package metadata

import (
	"fmt"
	"maps"
	"slices"
	"sort"
)

// Apply returns the image that results from applying rec at journal offset
// offset to img. img is left untouched: Apply copies what it changes. A
// record that does not fit the image (a partition of an unknown topic, say)
// is an error and yields no new image; the controller validates commands
// before it writes records, so this indicates a corrupt journal.
func Apply(img *Image, offset int64, rec Record) (*Image, error) {
	next := img.shallowCopy()
	next.Offset = offset
	switch rec.Type {
	case RecordRegisterBroker:
		b := rec.Broker
		if b == nil {
			return nil, errMissing(rec)
		}
		brokers := slices.Clone(img.Brokers)
		nb := Broker(*b)
		i := sort.Search(len(brokers), func(i int) bool { return brokers[i].ID >= b.ID })
		if i < len(brokers) && brokers[i].ID == b.ID {
			brokers[i] = nb
		} else {
			brokers = slices.Insert(brokers, i, nb)
		}
		next.Brokers = brokers
	case RecordController:
		if rec.Controller == nil {
			return nil, errMissing(rec)
		}
		next.ControllerID = rec.Controller.ID
	case RecordTopic:
		t := rec.Topic
		if t == nil {
			return nil, errMissing(rec)
		}
		if img.topics[t.Name] != nil {
			return nil, fmt.Errorf("apply offset %d: topic %q already exists", offset, t.Name)
		}
		nt := &Topic{Name: t.Name, ID: t.ID, Internal: t.Internal, Configs: map[string]string{}}
		next.copyTopicMaps()
		next.topics[t.Name] = nt
		next.topicsByID[t.ID] = nt
	case RecordPartition:
		p := rec.Partition
		if p == nil {
			return nil, errMissing(rec)
		}
		old := img.topicsByID[p.TopicID]
		if old == nil {
			return nil, fmt.Errorf("apply offset %d: partition of unknown topic id %x", offset, p.TopicID)
		}
		if p.Index < 0 || int(p.Index) > len(old.Partitions) {
			return nil, fmt.Errorf("apply offset %d: partition %d of %q out of sequence", offset, p.Index, old.Name)
		}
		nt := *old
		nt.Partitions = slices.Clone(old.Partitions)
		np := Partition{
			Index: p.Index, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch,
			Replicas: slices.Clone(p.Replicas), ISR: slices.Clone(p.ISR),
		}
		if int(p.Index) == len(nt.Partitions) {
			nt.Partitions = append(nt.Partitions, np)
		} else {
			nt.Partitions[p.Index] = np
		}
		next.copyTopicMaps()
		next.topics[nt.Name] = &nt
		next.topicsByID[nt.ID] = &nt
	case RecordRemoveTopic:
		r := rec.RemoveTopic
		if r == nil {
			return nil, errMissing(rec)
		}
		old := img.topicsByID[r.ID]
		if old == nil {
			return nil, fmt.Errorf("apply offset %d: remove unknown topic id %x", offset, r.ID)
		}
		next.copyTopicMaps()
		delete(next.topics, old.Name)
		delete(next.topicsByID, old.ID)
	case RecordConfig:
		c := rec.Config
		if c == nil {
			return nil, errMissing(rec)
		}
		old := img.topics[c.Topic]
		if old == nil {
			return nil, fmt.Errorf("apply offset %d: config for unknown topic %q", offset, c.Topic)
		}
		nt := *old
		nt.Configs = maps.Clone(old.Configs)
		if c.Value == nil {
			delete(nt.Configs, c.Name)
		} else {
			nt.Configs[c.Name] = *c.Value
		}
		next.copyTopicMaps()
		next.topics[nt.Name] = &nt
		next.topicsByID[nt.ID] = &nt
	case RecordProducerIDs:
		r := rec.ProducerIDs
		if r == nil {
			return nil, errMissing(rec)
		}
		if r.First < img.NextProducerID {
			return nil, fmt.Errorf("apply offset %d: producer id block %d below next %d", offset, r.First, img.NextProducerID)
		}
		next.NextProducerID = r.First + r.Count
	default:
		return nil, fmt.Errorf("apply offset %d: unknown record type %d", offset, rec.Type)
	}
	return next, nil
}

func errMissing(rec Record) error {
	return fmt.Errorf("metadata record type %d without its payload", rec.Type)
}

// shallowCopy copies the Image header; maps stay shared until
// copyTopicMaps is called.
func (img *Image) shallowCopy() *Image {
	c := *img
	return &c
}

// copyTopicMaps gives the image its own topic maps before a change.
// Topics themselves are replaced, never mutated.
func (img *Image) copyTopicMaps() {
	img.topics = maps.Clone(img.topics)
	img.topicsByID = maps.Clone(img.topicsByID)
}
