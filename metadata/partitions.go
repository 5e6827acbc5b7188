package metadata

import (
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/internal/mutation"
)

// partState is a partition's leadership and placement while a command
// works out its change; diff turns it into a PartitionChangeRecord.
type partState struct {
	leader                          int32
	isr, replicas, adding, removing []int32
}

func stateOf(p *Partition) partState {
	return partState{
		leader: p.Leader, isr: slices.Clone(p.ISR), replicas: slices.Clone(p.Replicas),
		adding: slices.Clone(p.AddingReplicas), removing: slices.Clone(p.RemovingReplicas),
	}
}

// diff is the change from p to s, or nil when there is none. A list that
// becomes empty is written as an empty, non-nil slice: nil means "no
// change" in a PartitionChangeRecord.
func (s *partState) diff(id TopicID, p *Partition) *PartitionChangeRecord {
	rec := &PartitionChangeRecord{TopicID: id, Index: p.Index, Leader: NoLeaderChange}
	changed := false
	field := func(cur, next []int32) []int32 {
		if slices.Equal(cur, next) {
			return nil
		}
		changed = true
		if next == nil {
			return []int32{}
		}
		return next
	}
	rec.ISR = field(p.ISR, s.isr)
	rec.Replicas = field(p.Replicas, s.replicas)
	rec.AddingReplicas = field(p.AddingReplicas, s.adding)
	rec.RemovingReplicas = field(p.RemovingReplicas, s.removing)
	if s.leader != p.Leader {
		rec.Leader, changed = s.leader, true
	}
	if !changed {
		return nil
	}
	return rec
}

// electionOrder is the order leaders are picked in: the target replicas,
// then the ones a reassignment is removing.
func (s *partState) electionOrder() []int32 {
	if len(s.removing) == 0 {
		return s.replicas
	}
	return append(without(s.replicas, s.removing...), s.removing...)
}

// electClean picks the first replica in election order that is in the
// ISR and live, or -1.
func electClean(s *partState, live func(int32) bool) int32 {
	for _, r := range s.electionOrder() {
		if slices.Contains(s.isr, r) && live(r) {
			return r
		}
	}
	return -1
}

// electAny picks the first live replica in election order, in the ISR or
// not (an unclean election), or -1.
func electAny(s *partState, live func(int32) bool) int32 {
	for _, r := range s.electionOrder() {
		if live(r) {
			return r
		}
	}
	return -1
}

// keepValidLeader re-elects when a change left the leader outside the ISR
// or the replicas.
func keepValidLeader(s *partState, live func(int32) bool) {
	if s.leader >= 0 && slices.Contains(s.isr, s.leader) && live(s.leader) {
		return
	}
	s.leader = electClean(s, live)
}

// maybeCompleteReassignment finishes s's reassignment when every adding
// replica is in the ISR and the ISR keeps a member once the removed
// replicas leave it (KRaft's rule): replicas become the target and the
// removed replicas leave the replicas and the ISR.
func maybeCompleteReassignment(s *partState) bool {
	if len(s.adding) == 0 && len(s.removing) == 0 {
		return false
	}
	isr := without(s.isr, s.removing...)
	if !subset(s.adding, s.isr) || len(isr) == 0 {
		return false
	}
	s.replicas = without(s.replicas, s.removing...)
	s.isr, s.adding, s.removing = isr, nil, nil
	return true
}

// lookup finds a partition for a command, failing with
// UNKNOWN_TOPIC_OR_PARTITION.
func lookup(img *Image, topic string, partition int32) (*Topic, *Partition, error) {
	t := img.Topic(topic)
	if t == nil || partition < 0 || int(partition) >= len(t.Partitions) {
		return nil, nil, fmt.Errorf("partition %s/%d does not exist: %w", topic, partition, kerr.UnknownTopicOrPartition)
	}
	return t, &t.Partitions[partition], nil
}

// AlterPartition is a partition leader's request to change the ISR
// (Kafka's AlterPartition). leaderEpoch and partitionEpoch are the epochs
// the leader knows. Errors: UNKNOWN_TOPIC_OR_PARTITION; NOT_CONTROLLER
// when the leader knows newer epochs than this image (this controller is
// behind); NOT_LEADER_OR_FOLLOWER when leaderID does not lead the
// partition; FENCED_LEADER_EPOCH for an older leader epoch;
// INVALID_UPDATE_VERSION when partitionEpoch is not the current one;
// INVALID_REQUEST for an ISR that is empty, lists a broker twice or leaves
// out the leader; INELIGIBLE_REPLICA when a member is not a replica or is
// fenced. When the new ISR has every replica a reassignment is adding,
// the reassignment completes in the same change (which may move the
// leadership off a removed replica). It returns the partition as it is
// afterwards; an ISR equal to the current one changes nothing.
func (c *Controller) AlterPartition(topic string, partition, leaderID, leaderEpoch, partitionEpoch int32, newISR []int32) (Partition, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkActive(); err != nil {
		return Partition{}, err
	}
	img := c.img.Load()
	t, p, err := lookup(img, topic, partition)
	if err != nil {
		return Partition{}, err
	}
	where := fmt.Sprintf("alter partition %s/%d", topic, partition)
	if leaderEpoch > p.LeaderEpoch || partitionEpoch > p.PartitionEpoch {
		return Partition{}, fmt.Errorf("%s: epochs %d/%d are newer than this controller's %d/%d: %w",
			where, leaderEpoch, partitionEpoch, p.LeaderEpoch, p.PartitionEpoch, ErrNotController)
	}
	live := img.LiveBroker
	if err := fenceStaleLeader(where, p, leaderID, leaderEpoch, partitionEpoch); err != nil {
		if !mutation.On(mutation.StaleLeaderWrites) {
			return Partition{}, err
		}
		live = func(id int32) bool { return id == leaderID || img.LiveBroker(id) }
		// Broken on purpose (sim mutation check): take the ISR a deposed
		// or out-of-date leader asks for. The unbroken controller fences
		// it here, so only the current leader, knowing the current ISR,
		// ever changes the ISR, and a leader that lost its leadership
		// cannot shrink the ISR to itself and commit writes alone. The
		// checks below still hold the new ISR to live replicas, and
		// keepValidLeader keeps the image valid (a leader in its ISR).
		// The requester counts as live even if fenced: a deposed leader
		// coming back from a pause is fenced until its next heartbeat.
	}
	switch {
	case len(newISR) == 0 || hasDuplicates(newISR):
		return Partition{}, fmt.Errorf("%s: isr %v is empty or lists a broker twice: %w", where, newISR, kerr.InvalidRequest)
	case !slices.Contains(newISR, leaderID):
		return Partition{}, fmt.Errorf("%s: isr %v leaves out the leader %d: %w", where, newISR, leaderID, kerr.InvalidRequest)
	}
	for _, r := range newISR {
		if !slices.Contains(p.Replicas, r) {
			return Partition{}, fmt.Errorf("%s: broker %d in isr %v is not a replica: %w", where, r, newISR, kerr.IneligibleReplica)
		}
		if !live(r) {
			return Partition{}, fmt.Errorf("%s: broker %d in isr %v is fenced or unregistered: %w", where, r, newISR, kerr.IneligibleReplica)
		}
	}
	s := stateOf(p)
	s.isr = slices.Clone(newISR)
	maybeCompleteReassignment(&s)
	// The requester leads and is a live member of the new ISR, so the
	// leadership moves only when a completed reassignment removed it (or,
	// under StaleLeaderWrites, when a stale leader's ISR left the current
	// leader out).
	keepValidLeader(&s, live)
	if rec := s.diff(t.ID, p); rec != nil {
		if err := c.commitLocked([]Record{{Type: RecordPartitionChange, PartitionChange: rec}}); err != nil {
			return Partition{}, err
		}
	}
	np, _ := c.img.Load().Partition(topic, partition)
	return *np, nil
}

// fenceStaleLeader refuses an AlterPartition from anyone but the current
// leader in the current epochs: NOT_LEADER_OR_FOLLOWER, then
// FENCED_LEADER_EPOCH, then INVALID_UPDATE_VERSION (epochs newer than the
// image's are refused before, as NOT_CONTROLLER).
func fenceStaleLeader(where string, p *Partition, leaderID, leaderEpoch, partitionEpoch int32) error {
	switch {
	case leaderID != p.Leader || leaderID < 0:
		return fmt.Errorf("%s: broker %d is not the leader (%d is): %w", where, leaderID, p.Leader, kerr.NotLeaderForPartition)
	case leaderEpoch < p.LeaderEpoch:
		return fmt.Errorf("%s: leader epoch %d is older than %d: %w", where, leaderEpoch, p.LeaderEpoch, kerr.FencedLeaderEpoch)
	case partitionEpoch != p.PartitionEpoch:
		return fmt.Errorf("%s: partition epoch %d is not the current %d: %w", where, partitionEpoch, p.PartitionEpoch, kerr.InvalidUpdateVersion)
	}
	return nil
}

// ElectionType is ElectLeaders' kind of election, with Kafka's values.
type ElectionType int8

const (
	ElectPreferred ElectionType = 0
	ElectUnclean   ElectionType = 1
)

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// ElectionResult is one partition's outcome of ElectLeaders; Err is nil
// when the election changed the leader.
type ElectionResult struct {
	TopicPartition
	Err error
}

// ElectLeaders runs leader elections (Kafka's ElectLeaders), all the
// resulting changes in one batch. Preferred: the first replica becomes
// leader if it is in the ISR and live (ELECTION_NOT_NEEDED when it leads
// already, PREFERRED_LEADER_NOT_AVAILABLE otherwise). Unclean: only for a
// partition without a live leader, the first live ISR member, else the
// first live replica, which becomes the whole ISR
// (ELECTION_NOT_NEEDED when it has a leader, ELIGIBLE_LEADERS_NOT_AVAILABLE
// when no replica is live). With partitions nil every partition is
// considered and those that needed no election are left out of the
// results, as Kafka does.
func (c *Controller) ElectLeaders(typ ElectionType, partitions []TopicPartition) []ElectionResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	img := c.img.Load()
	all := partitions == nil
	if all {
		for _, name := range img.TopicNames() {
			for i := range img.topics[name].Partitions {
				partitions = append(partitions, TopicPartition{name, int32(i)})
			}
		}
	}
	results := make([]ElectionResult, len(partitions))
	if err := c.checkActive(); err != nil {
		for i, tp := range partitions {
			results[i] = ElectionResult{tp, err}
		}
		return results
	}
	var (
		recs []Record
		ok   []int // results that succeed if the batch commits
		seen = map[TopicPartition]bool{}
	)
	for i, tp := range partitions {
		results[i].TopicPartition = tp
		if seen[tp] {
			results[i].Err = fmt.Errorf("partition %s/%d listed twice: %w", tp.Topic, tp.Partition, kerr.InvalidRequest)
			continue
		}
		seen[tp] = true
		rec, err := c.election(img, typ, tp)
		if err != nil {
			results[i].Err = err
			continue
		}
		recs = append(recs, Record{Type: RecordPartitionChange, PartitionChange: rec})
		ok = append(ok, i)
	}
	if err := c.commitLocked(recs); err != nil {
		for _, i := range ok {
			results[i].Err = err
		}
	}
	if all {
		results = slices.DeleteFunc(results, func(r ElectionResult) bool { return errorIs(r.Err, kerr.ElectionNotNeeded) })
	}
	return results
}

// election works out one partition's election.
func (c *Controller) election(img *Image, typ ElectionType, tp TopicPartition) (*PartitionChangeRecord, error) {
	t, p, err := lookup(img, tp.Topic, tp.Partition)
	if err != nil {
		return nil, err
	}
	where := fmt.Sprintf("partition %s/%d", tp.Topic, tp.Partition)
	s := stateOf(p)
	switch typ {
	case ElectPreferred:
		preferred := s.electionOrder()[0]
		if p.Leader == preferred {
			return nil, fmt.Errorf("%s: preferred replica %d leads already: %w", where, preferred, kerr.ElectionNotNeeded)
		}
		if !slices.Contains(p.ISR, preferred) || !img.LiveBroker(preferred) {
			return nil, fmt.Errorf("%s: preferred replica %d is not in the isr %v or not live: %w", where, preferred, p.ISR, kerr.PreferredLeaderNotAvailable)
		}
		s.leader = preferred
	case ElectUnclean:
		if p.Leader >= 0 && img.LiveBroker(p.Leader) {
			return nil, fmt.Errorf("%s: broker %d leads: %w", where, p.Leader, kerr.ElectionNotNeeded)
		}
		if s.leader = electClean(&s, img.LiveBroker); s.leader < 0 {
			s.leader = electAny(&s, img.LiveBroker)
			if s.leader < 0 {
				return nil, fmt.Errorf("%s: no replica of %v is live: %w", where, p.Replicas, kerr.EligibleLeadersNotAvailable)
			}
			s.isr = []int32{s.leader}
		}
	default:
		return nil, fmt.Errorf("unknown election type %d: %w", typ, kerr.InvalidRequest)
	}
	rec := s.diff(t.ID, p)
	if rec == nil {
		return nil, fmt.Errorf("%s: %w", where, kerr.ElectionNotNeeded)
	}
	return rec, nil
}

// Reassignment asks to move one partition's replicas to Replicas, or,
// with Replicas nil, to cancel its reassignment in progress.
type Reassignment struct {
	Topic     string
	Partition int32
	Replicas  []int32
}

// AlterPartitionReassignments starts, changes or cancels reassignments
// (Kafka's AlterPartitionReassignments, with KRaft's semantics); one error
// (or nil) per request. Starting one makes the replicas the target
// followed by the current replicas not in it; the new ones are
// AddingReplicas, the old ones RemovingReplicas. New replicas catch up
// before old ones leave: the reassignment completes through
// AlterPartition once the ISR has every adding replica (at once when it
// has them already). A new target for a partition being reassigned starts
// over from the replicas the partition had before. Cancelling restores
// those replicas, drops the adding ones from the ISR, and fails with
// NO_REASSIGNMENT_IN_PROGRESS when there is none. Errors for a target:
// INVALID_REPLICA_ASSIGNMENT when it is empty, lists a broker twice or an
// unregistered one, or when the change would leave the ISR empty.
func (c *Controller) AlterPartitionReassignments(reqs []Reassignment) []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	errs := make([]error, len(reqs))
	if err := c.checkActive(); err != nil {
		return fill(errs, err)
	}
	for i, r := range reqs {
		rec, err := c.reassignment(c.img.Load(), r)
		if err == nil && rec != nil {
			err = c.commitLocked([]Record{{Type: RecordPartitionChange, PartitionChange: rec}})
		}
		errs[i] = err
	}
	return errs
}

func (c *Controller) reassignment(img *Image, r Reassignment) (*PartitionChangeRecord, error) {
	t, p, err := lookup(img, r.Topic, r.Partition)
	if err != nil {
		return nil, err
	}
	where := fmt.Sprintf("reassign partition %s/%d", r.Topic, r.Partition)
	if r.Replicas != nil {
		if len(r.Replicas) == 0 || hasDuplicates(r.Replicas) {
			return nil, fmt.Errorf("%s: target %v is empty or lists a broker twice: %w", where, r.Replicas, kerr.InvalidReplicaAssignment)
		}
		for _, b := range r.Replicas {
			if _, ok := img.Broker(b); !ok {
				return nil, fmt.Errorf("%s: broker %d is not registered: %w", where, b, kerr.InvalidReplicaAssignment)
			}
		}
	} else if !p.Reassigning() {
		return nil, fmt.Errorf("%s: %w", where, kerr.NoReassignmentInProgress)
	}
	s := stateOf(p)
	// What the partition had before any reassignment in progress.
	original := without(s.replicas, s.adding...)
	if r.Replicas == nil {
		s.replicas = original
		s.isr = without(s.isr, s.adding...)
		s.adding, s.removing = nil, nil
	} else {
		target := r.Replicas
		s.adding = without(target, original...)
		s.removing = without(original, target...)
		s.replicas = append(slices.Clone(target), s.removing...)
		// Replicas added by an earlier target and not in this one leave.
		s.isr = intersect(s.isr, s.replicas)
		if len(s.adding) == 0 && len(s.removing) == 0 {
			s.adding, s.removing = nil, nil
		}
		maybeCompleteReassignment(&s)
	}
	if len(s.isr) == 0 {
		return nil, fmt.Errorf("%s: no in-sync replica would be left (isr %v): %w", where, p.ISR, kerr.InvalidReplicaAssignment)
	}
	keepValidLeader(&s, img.LiveBroker)
	return s.diff(t.ID, p), nil
}

// ListPartitionReassignments lists the reassignments in progress (Kafka's
// ListPartitionReassignments); any node may answer it from its image.
func (c *Controller) ListPartitionReassignments() []PartitionReassignment {
	return c.img.Load().Reassignments()
}

// intersect returns the elements of a that are in b, in a's order.
func intersect(a, b []int32) []int32 {
	out := make([]int32, 0, len(a))
	for _, v := range a {
		if slices.Contains(b, v) {
			out = append(out, v)
		}
	}
	return out
}

func errorIs(err error, target *kerr.Error) bool { return err != nil && errors.Is(err, target) }
