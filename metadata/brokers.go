package metadata

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// BrokerRegistration is what a broker sends the controller when its
// process starts (Kafka's BrokerRegistration request).
type BrokerRegistration struct {
	ID int32
	// Incarnation is drawn at random when the process starts.
	Incarnation IncarnationID
	// ClusterID, when set, must be the image's: a broker of another
	// cluster is refused.
	ClusterID      string
	Host           string // Kafka listener
	Port           int32
	ControllerAddr string // host:port of the node's controller listener, if any
	GossipAddr     string // host:port of the node's gossip (failure detection), if any
	Rack           string
	Roles          Roles
}

// RegisterBrokerIncarnation registers a broker process (Kafka's
// BrokerRegistration) and starts its heartbeat session at nowMs. A new
// incarnation (or a new broker) is registered fenced: it is unfenced by a
// BrokerHeartbeat once it has applied the metadata up to its registration
// (Broker.Epoch). If the previous incarnation was still unfenced, the same
// batch moves its leaderships and ISR memberships away, as fencing does.
// Re-registering the same incarnation updates its listeners and keeps its
// fencing state and epoch. It returns the broker epoch.
func (c *Controller) RegisterBrokerIncarnation(reg BrokerRegistration, nowMs int64) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkActive(); err != nil {
		return 0, err
	}
	img := c.img.Load()
	switch {
	case reg.ClusterID != "" && reg.ClusterID != img.ClusterID:
		return 0, fmt.Errorf("broker %d belongs to cluster %q, this is %q: %w", reg.ID, reg.ClusterID, img.ClusterID, kerr.InconsistentClusterID)
	case reg.ID < 0:
		return 0, fmt.Errorf("invalid broker id %d: %w", reg.ID, kerr.InvalidRequest)
	case reg.Incarnation == IncarnationID{}:
		return 0, fmt.Errorf("broker %d registered without an incarnation id: %w", reg.ID, kerr.InvalidRequest)
	case reg.Host == "" || reg.Port <= 0 || reg.Port > 65535:
		return 0, fmt.Errorf("broker %d: invalid listener %s:%d: %w", reg.ID, reg.Host, reg.Port, kerr.InvalidRequest)
	}
	rec := BrokerRecord{
		ID: reg.ID, Host: reg.Host, Port: reg.Port, Rack: reg.Rack, Fenced: true,
		Incarnation: reg.Incarnation, ControllerAddr: reg.ControllerAddr, GossipAddr: reg.GossipAddr, Roles: reg.Roles,
	}
	var recs []Record
	cur, known := img.Broker(reg.ID)
	switch {
	case known && cur.Incarnation == reg.Incarnation:
		rec.Fenced = cur.Fenced
		if brokerRecordOf(cur) != rec {
			recs = append(recs, Record{Type: RecordRegisterBroker, Broker: &rec})
		}
	default:
		recs = append(recs, Record{Type: RecordRegisterBroker, Broker: &rec})
		if known && !cur.Fenced {
			// The old process died without being fenced; its replicas
			// restart from disk and must catch up before they lead.
			recs = append(recs, c.fenceChanges(img, reg.ID)...)
		}
	}
	if err := c.commitLocked(recs); err != nil {
		return 0, err
	}
	c.lastHeartbeatMs[reg.ID] = nowMs
	b, _ := c.img.Load().Broker(reg.ID)
	return b.Epoch, nil
}

// BrokerHeartbeat records a broker's heartbeat at nowMs (Kafka's
// BrokerHeartbeat) and returns whether the broker is fenced afterwards.
// appliedOffset is the metadata offset the broker has applied. A fenced
// broker that has caught up (appliedOffset ≥ its Broker.Epoch) and does
// not want to be fenced is unfenced; an unfenced one asking to be fenced
// (wantFence) is fenced. A heartbeat from an unknown broker or an old
// incarnation fails with STALE_BROKER_EPOCH: the process must register.
func (c *Controller) BrokerHeartbeat(id int32, incarnation IncarnationID, appliedOffset int64, wantFence bool, nowMs int64) (fenced bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkActive(); err != nil {
		return true, err
	}
	img := c.img.Load()
	b, ok := img.Broker(id)
	if !ok {
		return true, fmt.Errorf("heartbeat from unregistered broker %d: %w", id, kerr.StaleBrokerEpoch)
	}
	if b.Incarnation != incarnation {
		return true, fmt.Errorf("heartbeat from broker %d incarnation %s, registered is %s: %w", id, incarnation, b.Incarnation, kerr.StaleBrokerEpoch)
	}
	c.lastHeartbeatMs[id] = nowMs
	switch {
	case b.Fenced && !wantFence && appliedOffset >= b.Epoch:
		if err := c.commitLocked(c.unfenceRecords(img, id)); err != nil {
			return true, err
		}
		return false, nil
	case !b.Fenced && wantFence:
		if err := c.commitLocked(c.fenceRecords(img, id)); err != nil {
			return false, err
		}
		return true, nil
	}
	return b.Fenced, nil
}

// Tick fences every unfenced broker whose session expired: no heartbeat
// for longer than BrokerSessionTimeoutMs before nowMs. It returns the ids
// it fenced, in order. On a node that is not the active controller it
// does nothing, so every node may tick. Only tick where brokers
// heartbeat: on the single-node path nobody does, and Tick would fence
// the node itself.
func (c *Controller) Tick(nowMs int64) ([]int32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.active.Load() {
		return nil, nil
	}
	timeout := c.defaults.sessionTimeoutMs()
	var fenced []int32
	for _, b := range c.img.Load().Brokers {
		if b.Fenced {
			continue
		}
		last, ok := c.lastHeartbeatMs[b.ID]
		if !ok {
			// Registered before this controller took over (or on the
			// single-node path): its session starts now.
			c.lastHeartbeatMs[b.ID] = nowMs
			continue
		}
		if nowMs <= last+timeout {
			continue
		}
		// One batch per broker, each against the image the previous one
		// produced, so that no partition is handed to a broker fenced a
		// moment later in the same tick.
		if err := c.commitLocked(c.fenceRecords(c.img.Load(), b.ID)); err != nil {
			return fenced, fmt.Errorf("fence broker %d after its session expired: %w", b.ID, err)
		}
		fenced = append(fenced, b.ID)
	}
	return fenced, nil
}

// ReportDead fences broker id at once: the membership layer saw the node
// die, so waiting for its session to expire would only keep its
// partitions offline longer. Fencing an already fenced broker does
// nothing; the broker is unfenced again by a caught-up heartbeat.
func (c *Controller) ReportDead(id int32, nowMs int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkActive(); err != nil {
		return err
	}
	img := c.img.Load()
	b, ok := img.Broker(id)
	if !ok {
		return fmt.Errorf("broker %d is not registered: %w", id, kerr.BrokerIDNotRegistered)
	}
	if b.Fenced {
		return nil
	}
	return c.commitLocked(c.fenceRecords(img, id))
}

// UnregisterBroker removes a broker from the cluster (Kafka's
// UnregisterBroker), fencing it first in the same batch. Its replicas stay
// in their partitions' replica lists, offline, until reassigned.
func (c *Controller) UnregisterBroker(id int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkActive(); err != nil {
		return err
	}
	img := c.img.Load()
	b, ok := img.Broker(id)
	if !ok {
		return fmt.Errorf("broker %d is not registered: %w", id, kerr.BrokerIDNotRegistered)
	}
	var recs []Record
	if !b.Fenced {
		recs = c.fenceRecords(img, id)
	}
	recs = append(recs, Record{Type: RecordUnregisterBroker, BrokerRef: &BrokerRefRecord{ID: id}})
	if err := c.commitLocked(recs); err != nil {
		return err
	}
	delete(c.lastHeartbeatMs, id)
	return nil
}

// fenceRecords is the batch that fences broker b.
func (c *Controller) fenceRecords(img *Image, b int32) []Record {
	return append([]Record{{Type: RecordFenceBroker, BrokerRef: &BrokerRefRecord{ID: b}}}, c.fenceChanges(img, b)...)
}

// fenceChanges are the partition changes fencing broker b needs, with img
// still showing b unfenced: every partition b leads gets a new leader (the
// first replica in election order that is in the ISR and live; failing
// that, with unclean leader election enabled for the topic, the first
// live replica, which becomes the whole ISR; failing that, none), and b
// leaves every ISR it is in unless it is the last member, which stays so
// the partition remembers who has its data.
func (c *Controller) fenceChanges(img *Image, b int32) []Record {
	live := func(id int32) bool { return id != b && img.LiveBroker(id) }
	var recs []Record
	for _, name := range img.TopicNames() {
		t := img.topics[name]
		for i := range t.Partitions {
			p := &t.Partitions[i]
			inISR := slices.Contains(p.ISR, b)
			if p.Leader != b && !inISR {
				continue
			}
			s := stateOf(p)
			if inISR && len(s.isr) > 1 {
				s.isr = without(s.isr, b)
			}
			if s.leader == b {
				s.leader = electClean(&s, live)
				if s.leader < 0 && c.uncleanEnabled(t) {
					if u := electAny(&s, live); u >= 0 {
						s.leader, s.isr = u, []int32{u}
					}
				}
			}
			if rec := s.diff(t.ID, p); rec != nil {
				recs = append(recs, Record{Type: RecordPartitionChange, PartitionChange: rec})
			}
		}
	}
	return recs
}

// unfenceRecords is the batch that unfences broker b: the UnfenceBroker
// record, and b as leader of every partition without a live leader whose
// ISR has b (or, with unclean leader election enabled, that has b as a
// replica, b becoming the whole ISR). Preferred leadership is not
// restored here: that is ElectLeaders' job.
func (c *Controller) unfenceRecords(img *Image, b int32) []Record {
	recs := []Record{{Type: RecordUnfenceBroker, BrokerRef: &BrokerRefRecord{ID: b}}}
	live := func(id int32) bool { return id == b || img.LiveBroker(id) }
	for _, name := range img.TopicNames() {
		t := img.topics[name]
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if p.Leader >= 0 && img.LiveBroker(p.Leader) || !slices.Contains(p.Replicas, b) {
				continue
			}
			s := stateOf(p)
			switch {
			case slices.Contains(s.isr, b):
				s.leader = electClean(&s, live)
			case c.uncleanEnabled(t):
				s.leader, s.isr = b, []int32{b}
			default:
				continue
			}
			if rec := s.diff(t.ID, p); rec != nil {
				recs = append(recs, Record{Type: RecordPartitionChange, PartitionChange: rec})
			}
		}
	}
	return recs
}

// uncleanEnabled is the topic's effective unclean.leader.election.enable.
func (c *Controller) uncleanEnabled(t *Topic) bool {
	const key = "unclean.leader.election.enable"
	v, ok := t.Configs[key]
	if !ok {
		v = c.defaults.BrokerConfig[key]
	}
	return v == "true"
}
