package group

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KIP-848 consumer groups: the coordinator side of ConsumerGroupHeartbeat
// and ConsumerGroupDescribe, as Kafka 4.x's GroupMetadataManager and
// CurrentAssignmentBuilder behave.
//
// Epochs. The group epoch counts changes of what the assignment depends
// on: membership, subscriptions, the subscribed topics' partitions and
// the group's assignor. Whenever it runs ahead of the assignment epoch,
// the next heartbeat recomputes every member's target assignment with
// the server assignor (assign.go) and sets the assignment epoch to it.
// Each member then reconciles toward its target on its own heartbeats:
//
//   - it first gives up what the target takes away: the partitions stay
//     "pending revocation" (member state unrevoked-partitions, epoch
//     unchanged) until a heartbeat no longer reports them owned;
//   - then it moves to the assignment epoch and gets the target's
//     partitions, except those another member still holds (assigned or
//     pending revocation); it waits for those in state
//     unreleased-partitions and gets them on a later heartbeat.
//
// Invariant (the one that makes this cooperative and safe): a partition
// is held — assigned or pending revocation — by at most one member.
// owners records the holder of every held partition and is updated
// together with the members' sets; a partition is handed out only when
// owners shows it free or already held by the same member.
//
// Durability. Membership is not written to the offsets topic (Kafka
// writes ConsumerGroupMemberMetadata and friends there). A new
// coordinator starts with no members; the members' next heartbeats get
// UNKNOWN_MEMBER_ID and they rejoin, which costs one rebalance and loses
// no committed offset (offsets.go persists those).

const (
	// Member epochs with a meaning of their own in requests.
	leaveGroupMemberEpoch       = -1 // the member leaves
	leaveGroupStaticMemberEpoch = -2 // a static member leaves for now

	// consumerMetadataRefreshMs is how often, at most, a heartbeat
	// re-resolves the group's subscriptions against the cluster's topics
	// (new topics matching a regex, partitions added, topics deleted);
	// a subscription change always re-resolves at once.
	consumerMetadataRefreshMs = 1000

	// consumerGroupAuthorizedOps is what ConsumerGroupDescribe reports
	// when asked: Troupe has no authorizer, so, like Kafka without one,
	// every operation on a group (READ, DELETE, DESCRIBE,
	// DESCRIBE_CONFIGS, ALTER_CONFIGS) is allowed.
	consumerGroupAuthorizedOps = 1<<3 | 1<<6 | 1<<8 | 1<<10 | 1<<11
)

// memberState is where a member is in reconciling toward its target.
type memberState int8

const (
	// memberStable: the member owns its whole target at the assignment
	// epoch, or reconciles nothing.
	memberStable memberState = iota
	// memberUnrevoked: the member must stop owning revoking partitions
	// before it may advance its epoch.
	memberUnrevoked
	// memberUnreleased: the member is at the assignment epoch but waits
	// for partitions other members still hold.
	memberUnreleased
)

func (s memberState) String() string {
	switch s {
	case memberUnrevoked:
		return "unrevoked-partitions"
	case memberUnreleased:
		return "unreleased-partitions"
	}
	return "stable"
}

// consumerMember is one member of a consumer group.
type consumerMember struct {
	id         string
	instanceID *string
	rackID     *string
	clientID   string
	clientHost string

	epoch, prevEpoch int32
	state            memberState

	rebalanceTimeoutMs int32
	topicNames         []string // subscribed by name; sorted, unique
	regex              string   // subscribed by regex; "" if none
	assignor           string   // requested server assignor; "" if none

	// assigned is what the member was told it owns; revoking what it
	// must give up before its epoch advances; target where the
	// assignor wants it to end up.
	assigned, revoking, target assignment

	sessionDeadlineMs int64
	revokeDeadlineMs  int64 // while unrevoked: fenced if still there then; 0 otherwise
}

// topicPartition names one partition by topic id.
type topicPartition struct {
	id [16]byte
	p  int32
}

// regexSubscription is one regex some members subscribe to.
type regexSubscription struct {
	re      *regexp.Regexp
	members int
	matches []string // topic names it matched at the last refresh, sorted
}

type consumerState struct {
	// epoch is the group epoch; 0 while the group never had a
	// consumer-protocol member (or after consumerReset).
	epoch           int32
	assignmentEpoch int32
	assignorName    string // the assignor of the current target

	members map[string]*consumerMember
	static  map[string]string // instance id → member id
	owners  map[topicPartition]string

	// The union of the members' subscriptions, kept with counts so a
	// metadata refresh costs one lookup per subscribed name and one
	// match per topic per distinct regex, not per member.
	nameSubs  map[string]int
	regexSubs map[string]*regexSubscription
	// assignorVotes counts the members asking for each server assignor.
	assignorVotes map[string]int

	// topics are the subscribed topics that exist, sorted by name, as
	// of the last refresh (at refreshedMs): the assignors' input.
	topics      []assignTopic
	refreshed   bool
	refreshedMs int64
}

func (cs *consumerState) lazyInit() {
	if cs.members == nil {
		cs.members = make(map[string]*consumerMember)
		cs.static = make(map[string]string)
		cs.owners = make(map[topicPartition]string)
		cs.nameSubs = make(map[string]int)
		cs.regexSubs = make(map[string]*regexSubscription)
		cs.assignorVotes = make(map[string]int)
	}
}

// exists reports whether the group is a consumer-protocol group: it had
// a member since it was created or last reset.
func (cs *consumerState) exists() bool { return cs.epoch > 0 }

// sortedMemberIDs keeps map order out of everything the core outputs.
func (cs *consumerState) sortedMemberIDs() []string {
	ids := make([]string, 0, len(cs.members))
	for id := range cs.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Settings with Kafka's defaults where the configured value is unusable.

func (c *Core) consumerSessionTimeoutMs() int64 {
	if c.s.ConsumerSessionTimeoutMs > 0 {
		return int64(c.s.ConsumerSessionTimeoutMs)
	}
	return 45000
}

func (c *Core) consumerHeartbeatIntervalMs() int32 {
	if c.s.ConsumerHeartbeatIntervalMs > 0 {
		return c.s.ConsumerHeartbeatIntervalMs
	}
	return 5000
}

func (c *Core) consumerMaxSize() int {
	if c.s.ConsumerMaxSize > 0 {
		return c.s.ConsumerMaxSize
	}
	return 1<<31 - 1
}

// consumerAssignors are the configured assignors this core implements,
// in configured order; the first is the group's default.
func (c *Core) consumerAssignors() []string {
	var out []string
	for _, name := range c.s.ConsumerAssignors {
		if _, ok := serverAssignors[name]; ok && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		out = []string{"uniform", "range"}
	}
	return out
}

// heartbeatError is a failed ConsumerGroupHeartbeat: nothing changed.
type heartbeatError struct {
	err *kerr.Error
	msg string
}

func hbErr(err *kerr.Error, format string, args ...any) *heartbeatError {
	return &heartbeatError{err: err, msg: fmt.Sprintf(format, args...)}
}

func (c *Core) consumerHeartbeat(r Request, req *kmsg.ConsumerGroupHeartbeatRequest) {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	if e := c.consumerHeartbeatInto(r, req, resp); e != nil {
		*resp = kmsg.ConsumerGroupHeartbeatResponse{Version: resp.Version}
		resp.Default()
		resp.ErrorCode = e.err.Code
		resp.ErrorMessage = kmsg.StringPtr(e.msg)
	}
	c.reply(r.Tag, resp)
}

func (c *Core) consumerHeartbeatInto(r Request, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) *heartbeatError {
	if e := c.validateConsumerHeartbeat(req); e != nil {
		return e
	}
	if c.classicHasMembers() {
		return hbErr(kerr.GroupIDNotFound, "Group %s is not a consumer group: it is a classic group with members.", c.id)
	}
	cs := &c.consumer
	cs.lazyInit()
	switch req.MemberEpoch {
	case leaveGroupMemberEpoch, leaveGroupStaticMemberEpoch:
		return c.consumerLeave(req, resp)
	}
	return c.consumerJoinOrHeartbeat(r, req, resp)
}

// validateConsumerHeartbeat rejects what Kafka rejects before looking at
// the group.
func (c *Core) validateConsumerHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) *heartbeatError {
	if req.MemberID == "" && (req.Version >= 1 || req.MemberEpoch != 0) {
		// v1 (KIP-1082): the client generates its member id.
		return hbErr(kerr.InvalidRequest, "MemberId can't be empty.")
	}
	if req.InstanceID != nil && *req.InstanceID == "" {
		return hbErr(kerr.InvalidRequest, "InstanceId can't be empty.")
	}
	if req.RackID != nil && *req.RackID == "" {
		return hbErr(kerr.InvalidRequest, "RackId can't be empty.")
	}
	switch {
	case req.MemberEpoch == 0:
		if req.RebalanceTimeoutMillis == -1 {
			return hbErr(kerr.InvalidRequest, "RebalanceTimeoutMs must be provided in first request.")
		}
		if req.Topics == nil || len(req.Topics) > 0 {
			return hbErr(kerr.InvalidRequest, "TopicPartitions must be empty when (re-)joining.")
		}
		if req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil {
			return hbErr(kerr.InvalidRequest, "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.")
		}
	case req.MemberEpoch < leaveGroupStaticMemberEpoch:
		return hbErr(kerr.InvalidRequest, "MemberEpoch is invalid.")
	}
	// Kafka also requires InstanceId with epoch -2; franz-go leaves a
	// static member with epoch -2 and no InstanceId, so the member's
	// own instance id decides instead (consumerLeave).
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != "" {
		if _, ok := c.consumer.regexSubs[*req.SubscribedTopicRegex]; !ok {
			if _, err := compileTopicRegex(*req.SubscribedTopicRegex); err != nil {
				return hbErr(kerr.InvalidRegularExpression, "SubscribedTopicRegex %q is not a valid regular expression: %v", *req.SubscribedTopicRegex, err)
			}
		}
	}
	if req.ServerAssignor != nil {
		supported := c.consumerAssignors()
		if !slices.Contains(supported, *req.ServerAssignor) {
			return hbErr(kerr.UnsupportedAssignor, "ServerAssignor %s is not supported. Supported assignors: %s.", *req.ServerAssignor, strings.Join(supported, ", "))
		}
	}
	return nil
}

// compileTopicRegex compiles a subscription regex. Kafka matches it
// (RE2/J) against whole topic names; Go's regexp is RE2 too.
func compileTopicRegex(src string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`^(?:` + src + `)$`)
	if err != nil {
		return nil, fmt.Errorf("compiling topic regex: %w", err)
	}
	return re, nil
}

// consumerLeave handles epochs -1 (leave) and -2 (static member leaves
// for now, keeping its assignment until it rejoins or its session
// expires).
func (c *Core) consumerLeave(req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) *heartbeatError {
	cs := &c.consumer
	m := cs.members[req.MemberID]
	if req.InstanceID != nil {
		if holder, ok := cs.static[*req.InstanceID]; ok && holder != req.MemberID {
			return hbErr(kerr.FencedInstanceID, "Static member %s with instance id %s is fenced: the instance id belongs to member %s.", req.MemberID, *req.InstanceID, holder)
		}
	}
	if m == nil {
		return hbErr(kerr.UnknownMemberID, "Member %s is not a member of group %s.", req.MemberID, c.id)
	}
	if req.MemberEpoch == leaveGroupStaticMemberEpoch && m.instanceID != nil {
		cs.staticLeave(m)
	} else {
		cs.remove(m)
	}
	resp.MemberID = kmsg.StringPtr(req.MemberID)
	resp.MemberEpoch = req.MemberEpoch
	return nil
}

// consumerJoinOrHeartbeat handles epoch 0 (join or rejoin) and the
// regular heartbeats of members.
func (c *Core) consumerJoinOrHeartbeat(r Request, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) *heartbeatError {
	cs := &c.consumer
	memberID := req.MemberID
	if memberID == "" { // v0 join: the coordinator names the member
		if r.NewMemberID == "" {
			return hbErr(kerr.InvalidRequest, "MemberId can't be empty.")
		}
		memberID = r.NewMemberID
	}
	// A member past a deadline is gone even if no Tick removed it yet,
	// so the outcome does not depend on when the host ticks.
	if m := cs.members[memberID]; m != nil {
		cs.expireIfDue(m, r.NowMs)
	}
	if req.InstanceID != nil {
		if holder := cs.members[cs.static[*req.InstanceID]]; holder != nil {
			cs.expireIfDue(holder, r.NowMs)
		}
	}

	// Find the member or decide how to create it; the request changes
	// nothing before every check passed.
	//
	// Epoch 0 from a known member id is a rejoin in place: the client
	// lost its state (franz-go rejoins so after FENCED_MEMBER_EPOCH,
	// keeping its id), owns nothing, and gets its assignment again.
	// For a static member this is more lenient than Kafka, which
	// answers UNRELEASED_INSTANCE_ID while the instance id is held,
	// even by the same member id: that only delays the rejoin.
	var (
		m        = cs.members[memberID]
		rejoin   = req.MemberEpoch == 0 && m != nil
		replaces *consumerMember // a static member that left, replaced by this one
	)
	if req.InstanceID != nil {
		inst := *req.InstanceID
		holder := cs.members[cs.static[inst]]
		switch {
		case req.MemberEpoch != 0 && holder == nil:
			return hbErr(kerr.UnknownMemberID, "Instance id %s is unknown in group %s.", inst, c.id)
		case holder != nil && holder.id != memberID && req.MemberEpoch != 0:
			return hbErr(kerr.FencedInstanceID, "Static member %s with instance id %s is fenced: the instance id belongs to member %s.", memberID, inst, holder.id)
		case holder != nil && holder.id != memberID && holder.epoch != leaveGroupStaticMemberEpoch:
			return hbErr(kerr.UnreleasedInstanceID, "Static member %s with instance id %s cannot join the group because the instance id is owned by member %s.", memberID, inst, holder.id)
		case holder != nil && holder.id != memberID:
			if m != nil {
				return hbErr(kerr.InvalidRequest, "Member id %s is already used by another member of group %s.", memberID, c.id)
			}
			replaces = holder
		}
	}
	if m == nil && replaces == nil {
		if req.MemberEpoch != 0 {
			return hbErr(kerr.UnknownMemberID, "Member %s is not a member of group %s.", memberID, c.id)
		}
		if len(cs.members) >= c.consumerMaxSize() {
			return hbErr(kerr.GroupMaxSizeReached, "The consumer group has reached its maximum capacity of %d members.", c.consumerMaxSize())
		}
	}
	if m != nil && req.MemberEpoch != 0 {
		if e := checkMemberEpoch(m, req); e != nil {
			return e
		}
	}

	oldAssignor := cs.preferredAssignor(c.consumerAssignors())
	changed := false
	switch {
	case replaces != nil:
		m = cs.replaceStatic(replaces, memberID)
		rejoin = true
	case m == nil:
		m = &consumerMember{id: memberID, rebalanceTimeoutMs: req.RebalanceTimeoutMillis}
		cs.members[memberID] = m
		rejoin = true
		changed = true
	}
	if req.InstanceID != nil && (m.instanceID == nil || *m.instanceID != *req.InstanceID) {
		if m.instanceID != nil && cs.static[*m.instanceID] == m.id {
			delete(cs.static, *m.instanceID)
		}
		m.instanceID = kmsg.StringPtr(*req.InstanceID)
		cs.static[*req.InstanceID] = m.id
	}
	m.clientID, m.clientHost = r.ClientID, r.ClientHost
	if req.RackID != nil {
		m.rackID = kmsg.StringPtr(*req.RackID)
	}
	if req.RebalanceTimeoutMillis > 0 {
		m.rebalanceTimeoutMs = req.RebalanceTimeoutMillis
	}
	if req.SubscribedTopicNames != nil {
		names := slices.Clone(req.SubscribedTopicNames)
		slices.Sort(names)
		names = slices.Compact(names)
		if !slices.Equal(names, m.topicNames) {
			cs.unsubscribeNames(m)
			m.topicNames = names
			cs.subscribeNames(m)
			changed = true
		}
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != m.regex {
		cs.unsubscribeRegex(m)
		m.regex = *req.SubscribedTopicRegex
		cs.subscribeRegex(m)
		changed = true
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.assignor {
		cs.unvote(m)
		m.assignor = *req.ServerAssignor
		cs.vote(m)
	}
	if cs.preferredAssignor(c.consumerAssignors()) != oldAssignor {
		changed = true
	}

	// The subscribed topics' metadata is part of what the assignment
	// depends on: re-resolve it when subscriptions changed, else now and
	// then.
	if r.Topics != nil && (changed || !cs.refreshed || r.NowMs-cs.refreshedMs >= consumerMetadataRefreshMs) {
		if cs.refreshTopics(r.Topics, r.NowMs) {
			changed = true
		}
	}
	if changed {
		cs.epoch++
	}
	if cs.epoch > cs.assignmentEpoch {
		cs.computeTargets(c.consumerAssignors())
	}

	before := m.assigned
	wasRevoking := m.revoking
	owned := req.Topics
	if rejoin {
		// The (re)joining member owns nothing (validated), so what it
		// was revoking is released, and its assignment is sent again.
		cs.release(m, m.revoking)
		m.revoking = nil
		if m.epoch < 0 {
			m.setEpoch(0)
		}
		m.state = memberStable
		cs.computeNext(m, owned)
	} else {
		cs.reconcile(m, owned)
	}

	m.sessionDeadlineMs = r.NowMs + c.consumerSessionTimeoutMs()
	switch {
	case m.state != memberUnrevoked:
		m.revokeDeadlineMs = 0
	case m.revokeDeadlineMs == 0 || !m.revoking.equal(wasRevoking):
		// The member has its rebalance timeout to revoke; a changed
		// set of partitions to revoke restarts the clock.
		m.revokeDeadlineMs = r.NowMs + int64(max(m.rebalanceTimeoutMs, 1))
	}

	resp.MemberID = kmsg.StringPtr(m.id)
	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = c.consumerHeartbeatIntervalMs()
	// The assignment goes out on full requests (joins, and the requests
	// clients send after errors, which carry every field) and whenever
	// it changed; keepalives get none.
	full := req.MemberEpoch == 0 || (req.RebalanceTimeoutMillis != -1 &&
		(req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil) && req.Topics != nil)
	if full || !before.equal(m.assigned) {
		resp.Assignment = heartbeatAssignment(m.assigned)
	}
	return nil
}

// checkMemberEpoch fences a heartbeat whose epoch is not the member's:
// FENCED_MEMBER_EPOCH, after which the client rejoins with epoch 0. The
// member's previous epoch passes if the request reports a subset of its
// assignment: the response that moved it on was lost.
func checkMemberEpoch(m *consumerMember, req *kmsg.ConsumerGroupHeartbeatRequest) *heartbeatError {
	switch {
	case req.MemberEpoch > m.epoch:
		return hbErr(kerr.FencedMemberEpoch, "The consumer group member has a greater member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", req.MemberEpoch, m.epoch)
	case req.MemberEpoch < m.epoch:
		if req.MemberEpoch != m.prevEpoch || req.Topics == nil || !ownedSubsetOf(req.Topics, m.assigned) {
			return hbErr(kerr.FencedMemberEpoch, "The consumer group member has a smaller member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", req.MemberEpoch, m.epoch)
		}
	}
	return nil
}

// ownedSubsetOf reports whether every partition reported owned is in a.
func ownedSubsetOf(owned []kmsg.ConsumerGroupHeartbeatRequestTopic, a assignment) bool {
	for _, t := range owned {
		for _, p := range t.Partitions {
			if !a.contains(t.TopicID, p) {
				return false
			}
		}
	}
	return true
}

// ownsAny reports whether the reported owned partitions include any of
// set. A request without them (nil: a keepalive) may still own anything.
func ownsAny(owned []kmsg.ConsumerGroupHeartbeatRequestTopic, set assignment) bool {
	if owned == nil {
		return len(set) > 0
	}
	for _, t := range owned {
		for _, p := range t.Partitions {
			if set.contains(t.TopicID, p) {
				return true
			}
		}
	}
	return false
}

func heartbeatAssignment(a assignment) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	out := &kmsg.ConsumerGroupHeartbeatResponseAssignment{}
	out.Default()
	out.Topics = make([]kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic, 0, len(a))
	for _, id := range a.sortedTopicIDs() {
		if len(a[id]) == 0 {
			continue
		}
		t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		t.TopicID = id
		t.Partitions = slices.Clone(a[id])
		out.Topics = append(out.Topics, t)
	}
	return out
}

func (m *consumerMember) setEpoch(e int32) {
	if e != m.epoch {
		m.prevEpoch, m.epoch = m.epoch, e
	}
}

// reconcile moves m toward its target as far as the partitions it
// reports owned (nil: not reported) allow. This is Kafka's
// CurrentAssignmentBuilder.
func (cs *consumerState) reconcile(m *consumerMember, owned []kmsg.ConsumerGroupHeartbeatRequestTopic) {
	switch m.state {
	case memberStable:
		if m.epoch == cs.assignmentEpoch {
			return
		}
	case memberUnrevoked:
		if ownsAny(owned, m.revoking) {
			return // still revoking; the rebalance timeout runs
		}
	case memberUnreleased:
		// Partitions it waits for may have been released.
	}
	cs.computeNext(m, owned)
}

// computeNext takes the next step from m's assignment toward its target.
// Partitions the target drops are revoked first if the member may still
// own them; otherwise the member moves to the assignment epoch with what
// it keeps plus every target partition no other member holds.
func (cs *consumerState) computeNext(m *consumerMember, owned []kmsg.ConsumerGroupHeartbeatRequestTopic) {
	ids := make(map[[16]byte]struct{}, len(m.target)+len(m.assigned))
	for id := range m.target {
		ids[id] = struct{}{}
	}
	for id := range m.assigned {
		ids[id] = struct{}{}
	}
	var (
		kept       = assignment{}
		revoke     = assignment{}
		granted    = assignment{}
		unreleased bool
	)
	for id := range ids { // each topic independently: order does not matter
		target, cur := m.target[id], m.assigned[id]
		k := intersectSorted(cur, target)
		if len(k) > 0 {
			kept[id] = k
		}
		if rv := subtractSorted(cur, k); len(rv) > 0 {
			revoke[id] = rv
		}
		var g []int32
		for _, p := range subtractSorted(target, k) {
			if holder, held := cs.owners[topicPartition{id, p}]; held && holder != m.id {
				unreleased = true
				continue
			}
			g = append(g, p)
		}
		if len(g) > 0 {
			granted[id] = g
		}
	}

	cs.release(m, m.assigned)
	cs.release(m, m.revoking)
	if len(revoke) > 0 && ownsAny(owned, revoke) {
		m.state = memberUnrevoked
		m.assigned, m.revoking = kept, revoke
	} else {
		for id, g := range granted {
			kept[id] = unionSorted(kept[id], g)
		}
		m.assigned, m.revoking = kept, nil
		m.setEpoch(cs.assignmentEpoch)
		m.state = memberStable
		if unreleased {
			m.state = memberUnreleased
		}
	}
	cs.hold(m, m.assigned)
	cs.hold(m, m.revoking)
}

// hold records m as the holder of a's partitions. Callers only pass
// partitions that are free or m's (computeNext's grant check), which
// keeps the one-holder invariant.
func (cs *consumerState) hold(m *consumerMember, a assignment) {
	for id, ps := range a {
		for _, p := range ps {
			cs.owners[topicPartition{id, p}] = m.id
		}
	}
}

// release frees a's partitions that m holds.
func (cs *consumerState) release(m *consumerMember, a assignment) {
	for id, ps := range a {
		for _, p := range ps {
			tp := topicPartition{id, p}
			if cs.owners[tp] == m.id {
				delete(cs.owners, tp)
			}
		}
	}
}

// remove takes m out of the group (leave, session expiry, fencing): its
// partitions are free and the group epoch moves on.
func (cs *consumerState) remove(m *consumerMember) {
	cs.release(m, m.assigned)
	cs.release(m, m.revoking)
	cs.unsubscribeNames(m)
	cs.unsubscribeRegex(m)
	cs.unvote(m)
	delete(cs.members, m.id)
	if m.instanceID != nil && cs.static[*m.instanceID] == m.id {
		delete(cs.static, *m.instanceID)
	}
	cs.pruneTopics()
	cs.epoch++
}

// staticLeave parks a static member at epoch -2: it keeps its assigned
// partitions (no other member gets them) until it rejoins under the same
// instance id or its session expires; what it was revoking is released,
// as the client let go of everything.
func (cs *consumerState) staticLeave(m *consumerMember) {
	cs.release(m, m.revoking)
	m.revoking = nil
	m.state = memberStable
	m.revokeDeadlineMs = 0
	m.setEpoch(leaveGroupStaticMemberEpoch)
}

// replaceStatic moves a static member parked at epoch -2 to a new member
// id, with its assignment and subscriptions, at epoch 0.
func (cs *consumerState) replaceStatic(old *consumerMember, newID string) *consumerMember {
	m := *old
	m.id = newID
	m.epoch, m.prevEpoch = 0, 0
	cs.release(old, old.assigned)
	delete(cs.members, old.id)
	cs.members[newID] = &m
	cs.static[*m.instanceID] = newID
	cs.hold(&m, m.assigned)
	return &m
}

// The subscription counts follow the members: subscribeNames and
// subscribeRegex after setting a member's subscription, the matching
// unsubscribe before changing or dropping it.
func (cs *consumerState) subscribeNames(m *consumerMember) {
	for _, name := range m.topicNames {
		cs.nameSubs[name]++
	}
}

func (cs *consumerState) unsubscribeNames(m *consumerMember) {
	for _, name := range m.topicNames {
		if cs.nameSubs[name]--; cs.nameSubs[name] <= 0 {
			delete(cs.nameSubs, name)
		}
	}
}

func (cs *consumerState) subscribeRegex(m *consumerMember) {
	if m.regex == "" {
		return
	}
	rs := cs.regexSubs[m.regex]
	if rs == nil {
		// Validated before; should it not compile, it matches nothing.
		re, _ := compileTopicRegex(m.regex)
		rs = &regexSubscription{re: re}
		cs.regexSubs[m.regex] = rs
		cs.refreshed = false // resolve it on this heartbeat
	}
	rs.members++
}

func (cs *consumerState) unsubscribeRegex(m *consumerMember) {
	if rs := cs.regexSubs[m.regex]; rs != nil {
		if rs.members--; rs.members <= 0 {
			delete(cs.regexSubs, m.regex)
		}
	}
}

// subscribedTopicNames is every topic name m subscribes to, directly or
// through its regex's last resolution.
func (cs *consumerState) subscribedTopicNames(m *consumerMember) []string {
	names := m.topicNames
	if rs := cs.regexSubs[m.regex]; rs != nil && len(rs.matches) > 0 {
		names = append(slices.Clone(names), rs.matches...)
	}
	return names
}

// refreshTopics re-resolves the subscriptions against tv and reports
// whether the subscribed topics (names, ids, partition counts) changed.
func (cs *consumerState) refreshTopics(tv TopicView, nowMs int64) bool {
	cs.refreshed, cs.refreshedMs = true, nowMs
	wanted := make(map[string]struct{}, len(cs.nameSubs))
	for name := range cs.nameSubs {
		wanted[name] = struct{}{}
	}
	if len(cs.regexSubs) > 0 {
		all := tv.TopicNames()
		for _, rs := range cs.regexSubs {
			rs.matches = rs.matches[:0]
			if rs.re == nil {
				continue
			}
			for _, name := range all {
				if rs.re.MatchString(name) {
					rs.matches = append(rs.matches, name)
					wanted[name] = struct{}{}
				}
			}
		}
	}
	topics := make([]assignTopic, 0, len(wanted))
	for name := range wanted {
		if id, n, ok := tv.TopicByName(name); ok {
			topics = append(topics, assignTopic{name: name, id: id, partitions: n})
		}
	}
	slices.SortFunc(topics, func(a, b assignTopic) int { return strings.Compare(a.name, b.name) })
	if slices.Equal(topics, cs.topics) {
		return false
	}
	cs.topics = topics
	return true
}

// pruneTopics drops topics no member subscribes to any more, so that
// the next refresh does not see a change (and bump the epoch again)
// for what a removal already accounted for.
func (cs *consumerState) pruneTopics() {
	cs.topics = slices.DeleteFunc(cs.topics, func(t assignTopic) bool {
		if cs.nameSubs[t.name] > 0 {
			return false
		}
		for _, rs := range cs.regexSubs {
			if _, ok := slices.BinarySearch(rs.matches, t.name); ok {
				return false
			}
		}
		return true
	})
}

func (cs *consumerState) vote(m *consumerMember) {
	if m.assignor != "" {
		cs.assignorVotes[m.assignor]++
	}
}

func (cs *consumerState) unvote(m *consumerMember) {
	if m.assignor == "" {
		return
	}
	if cs.assignorVotes[m.assignor]--; cs.assignorVotes[m.assignor] <= 0 {
		delete(cs.assignorVotes, m.assignor)
	}
}

// preferredAssignor is the assignor most members ask for (ties to the
// one configured first), or the configured default.
func (cs *consumerState) preferredAssignor(supported []string) string {
	best := supported[0]
	for _, name := range supported {
		if cs.assignorVotes[name] > cs.assignorVotes[best] {
			best = name
		}
	}
	return best
}

// computeTargets runs the group's assignor over every member and moves
// the assignment epoch to the group epoch.
func (cs *consumerState) computeTargets(supported []string) {
	ids := cs.sortedMemberIDs()
	members := make([]assignMember, 0, len(ids))
	for _, id := range ids {
		m := cs.members[id]
		members = append(members, assignMember{id: id, topics: cs.subscribedTopicNames(m), current: m.target})
	}
	cs.assignorName = cs.preferredAssignor(supported)
	targets := serverAssignors[cs.assignorName](cs.topics, members)
	for _, id := range ids {
		cs.members[id].target = targets[id]
	}
	cs.assignmentEpoch = cs.epoch
}

func (c *Core) consumerTick(nowMs int64) {
	cs := &c.consumer
	for _, id := range cs.sortedMemberIDs() {
		cs.expireIfDue(cs.members[id], nowMs)
	}
}

// expireIfDue removes m if its session expired or if it did not revoke
// within its rebalance timeout (Kafka fences such a member, so that its
// partitions can move on).
func (cs *consumerState) expireIfDue(m *consumerMember, nowMs int64) {
	expired := m.sessionDeadlineMs <= nowMs
	stuck := m.state == memberUnrevoked && m.revokeDeadlineMs > 0 && m.revokeDeadlineMs <= nowMs
	if expired || stuck {
		cs.remove(m)
	}
}

func (c *Core) consumerNextTickMs() int64 {
	next := int64(-1)
	earliest := func(t int64) {
		if t > 0 && (next < 0 || t < next) {
			next = t
		}
	}
	for _, m := range c.consumer.members { // a minimum: order does not matter
		earliest(m.sessionDeadlineMs)
		earliest(m.revokeDeadlineMs)
	}
	return next
}

// consumerIsActive: the group is a KIP-848 consumer group (it has members
// that joined through ConsumerGroupHeartbeat).
func (c *Core) consumerIsActive() bool { return len(c.consumer.members) > 0 }

// consumerSubscribedTo reports whether a member of the consumer group
// subscribes to topic, by name or by regex (OffsetDelete answers
// GROUP_SUBSCRIBED_TO_TOPIC for such a topic; offsets of other topics may
// expire while the group has members).
func (c *Core) consumerSubscribedTo(topic string) bool {
	cs := &c.consumer
	if cs.nameSubs[topic] > 0 {
		return true
	}
	for _, rs := range cs.regexSubs { // any match: order does not matter
		if rs.re != nil && rs.re.MatchString(topic) {
			return true
		}
	}
	return false
}

// consumerReset forgets the consumer group: the classic protocol takes
// over an empty consumer group (a JoinGroup converts it, as Kafka does),
// or DeleteGroups deleted it. The group epoch starts over.
func (c *Core) consumerReset() {
	if len(c.consumer.members) > 0 {
		return // only an empty group converts or is deleted
	}
	c.consumer = consumerState{}
}

// consumerValidateCommit checks an OffsetCommit (v9+ memberEpoch) or
// OffsetFetch (v9+) against a consumer group's members: 0, or
// UNKNOWN_MEMBER_ID / STALE_MEMBER_EPOCH.
//
// Kafka 4.0 wants the member's current epoch. A commit that raced with
// the heartbeat that moved the member on carries the previous one; like
// Kafka 4.1+ (which checks per partition that it was not revoked
// meanwhile) we accept it, so no commit a client makes in normal
// operation fails. The member's epoch moves on only after it revoked
// what it had to, and clients commit revoked partitions before they
// acknowledge the revocation, so such a commit is for partitions the
// member still owns.
func (c *Core) consumerValidateCommit(memberID string, memberEpoch int32, nowMs int64) int16 {
	cs := &c.consumer
	if memberEpoch < 0 && len(cs.members) == 0 {
		return 0 // an admin commit, or a consumer without group management
	}
	m := cs.members[memberID]
	if m == nil || m.sessionDeadlineMs <= nowMs {
		return kerr.UnknownMemberID.Code
	}
	if m.epoch < 0 || (memberEpoch != m.epoch && (memberEpoch != m.prevEpoch || m.prevEpoch <= 0)) {
		return kerr.StaleMemberEpoch.Code
	}
	return 0
}

// consumerState names the group's state as Kafka does.
func (cs *consumerState) stateName() string {
	if len(cs.members) == 0 {
		return "Empty"
	}
	if cs.epoch > cs.assignmentEpoch {
		return "Assigning"
	}
	for _, m := range cs.members { // any: order does not matter
		if m.state != memberStable || m.epoch != cs.assignmentEpoch {
			return "Reconciling"
		}
	}
	return "Stable"
}

// consumerSummary is the group's ListGroups state when it is a consumer
// group.
func (c *Core) consumerSummary() (state string, ok bool) {
	if !c.consumer.exists() || c.classicHasMembers() {
		return "", false
	}
	return c.consumer.stateName(), true
}

func (c *Core) consumerDescribe(r Request, d *DescribeConsumerGroup) {
	g := kmsg.NewConsumerGroupDescribeResponseGroup()
	g.Group = c.id
	if d.IncludeAuthorizedOperations {
		g.AuthorizedOperations = consumerGroupAuthorizedOps
	}
	cs := &c.consumer
	if !cs.exists() || c.classicHasMembers() {
		g.ErrorCode = kerr.GroupIDNotFound.Code
		g.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("Group %s is not a consumer group.", c.id))
		c.reply(r.Tag, &g)
		return
	}
	names := make(map[[16]byte]string, len(cs.topics))
	for _, t := range cs.topics {
		names[t.id] = t.name
	}
	topicName := func(id [16]byte) (string, bool) {
		if r.Topics != nil {
			if name, _, ok := r.Topics.TopicByID(id); ok {
				return name, true
			}
		}
		name, ok := names[id]
		return name, ok
	}
	describe := func(a assignment) kmsg.Assignment {
		out := kmsg.NewAssignment()
		for _, id := range a.sortedTopicIDs() {
			name, ok := topicName(id)
			if !ok || len(a[id]) == 0 {
				continue // Kafka leaves out topics it no longer knows
			}
			tp := kmsg.NewAssignmentTopicPartition()
			tp.TopicID, tp.Topic, tp.Partitions = id, name, slices.Clone(a[id])
			out.TopicPartitions = append(out.TopicPartitions, tp)
		}
		return out
	}

	g.State = cs.stateName()
	g.Epoch = cs.epoch
	g.AssignmentEpoch = cs.assignmentEpoch
	g.AssignorName = cs.assignorName
	if g.AssignorName == "" {
		g.AssignorName = cs.preferredAssignor(c.consumerAssignors())
	}
	for _, id := range cs.sortedMemberIDs() {
		m := cs.members[id]
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = m.instanceID
		dm.RackID = m.rackID
		dm.MemberEpoch = m.epoch
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		dm.SubscribedTopics = slices.Clone(m.topicNames)
		if dm.SubscribedTopics == nil {
			dm.SubscribedTopics = []string{}
		}
		if m.regex != "" {
			dm.SubscribedTopicRegex = kmsg.StringPtr(m.regex)
		}
		dm.Assignment = describe(m.assigned)
		dm.TargetAssignment = describe(m.target)
		dm.MemberType = 1 // a consumer-protocol member (v1+)
		g.Members = append(g.Members, dm)
	}
	c.reply(r.Tag, &g)
}
