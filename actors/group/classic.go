package group

import (
	"bytes"
	"fmt"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The classic group protocol (JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup, DescribeGroups) with the semantics and error codes of
// Kafka's GroupCoordinator, whose names this file keeps: prepareRebalance,
// onCompleteJoin, the InitialDelayedJoin, pending (KIP-394) and
// pending-sync members, static members (KIP-345).
//
// Kafka's purgatories become deadlines: the join deadline (DelayedJoin,
// InitialDelayedJoin), the sync deadline (DelayedSync), every member's
// heartbeat deadline (DelayedHeartbeat) and every pending member's
// expiry. classicTick fires those due, earliest first, each at its own
// deadline, so the outcome does not depend on how often the host ticks;
// each request first fires what was due before it, as Kafka's timers
// would have.

const (
	// newMemberJoinTimeoutMs is Kafka's NewMemberJoinTimeoutMs: a member
	// that joined but has not yet completed a join is dropped after it,
	// whatever its session timeout.
	newMemberJoinTimeoutMs = 5 * 60 * 1000

	// classicGroupAuthorizedOps is what DescribeGroups reports when
	// asked: like Kafka without an authorizer, every group operation
	// (READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS). The wire
	// layer narrows it when it enforces ACLs.
	classicGroupAuthorizedOps = 1<<3 | 1<<6 | 1<<8 | 1<<10 | 1<<11

	// maxTimerSteps bounds the timers one input fires; whatever is
	// still due waits for the next input (NextTickMs then lies in the
	// past, so the host ticks again at once).
	maxTimerSteps = 4096

	consumerProtocolType = "consumer"
)

// groupState is a classic group's state, named as Kafka names it.
type groupState int8

const (
	// stateDead: there is no classic group (a fresh core, or the group
	// was deleted); also the state while a deletion's tombstones are in
	// flight (classicState.deleting).
	stateDead groupState = iota
	stateEmpty
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
)

func (s groupState) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

type classicState struct {
	state groupState
	// stateSinceMs is Kafka's currentStateTimestamp: when the group
	// entered its state, -1 when unknown (metadata from before Kafka
	// 2.1). Offsets of an Empty group expire relative to it.
	stateSinceMs int64
	// deleting: DeleteGroups or expiry decided to delete the group and
	// its tombstones are in flight; the group answers as Dead meanwhile
	// and goes back to deleteFrom if the append fails.
	deleting          bool
	deleteFrom        groupState
	deleteFromSinceMs int64
	// metaOnDisk: the offsets topic holds live (not tombstoned) group
	// metadata for the group, so it is not gone until expiry deletes it.
	metaOnDisk bool

	generation   int32
	protocolType string // "" is Kafka's None
	protocol     string
	hasProtocol  bool
	leader       string // "" when there is none

	// members in join order (deterministic leader choice and output);
	// byID indexes them. Invariant: static maps every static member's
	// instance id to its member id and nothing else.
	members []*member
	byID    map[string]*member
	static  map[string]string
	// supported counts, per protocol name, the members supporting it.
	supported map[string]int
	// awaitingJoin counts members with a JoinGroup waiting for the
	// rebalance to complete (Kafka's numMembersAwaitingJoin).
	awaitingJoin int
	// pending are KIP-394 member ids handed out with MEMBER_ID_REQUIRED
	// that have not joined yet, with their expiry deadline.
	pending map[string]int64

	// newMemberAdded is Kafka's flag that extends the initial
	// rebalance delay while members keep joining generation 0.
	newMemberAdded bool
	join           joinTimer
	// pendingSync holds the members that were sent a JoinGroup
	// response and have not sent SyncGroup; syncDeadline (-1 when none)
	// removes them and rebalances.
	pendingSync  map[string]struct{}
	syncDeadline int64

	// subscribed is the union of the members' consumer-protocol
	// subscriptions at the start of the generation; known is false when
	// it could not be computed (not a "consumer" group, unparsable
	// metadata), as Kafka's Option.
	subscribed      map[string]struct{}
	subscribedKnown bool
}

// joinTimer is Kafka's DelayedJoin / InitialDelayedJoin in the rebalance
// purgatory.
type joinTimer struct {
	deadline int64 // -1: none armed
	// initial: an InitialDelayedJoin, which never completes early and
	// re-arms for delayMs more (at most remainingMs in all) while new
	// members keep joining.
	initial              bool
	delayMs, remainingMs int64
}

type member struct {
	id                 string
	instanceID         *string
	clientID           string
	clientHost         string
	rebalanceTimeoutMs int32
	sessionTimeoutMs   int32
	protocolType       string
	protocols          []protocol // in the member's order of preference
	assignment         []byte
	// isNew: the member joined and has not completed a join yet; its
	// heartbeat deadline is newMemberJoinTimeoutMs and holds even while
	// it waits in JoinGroup.
	isNew bool
	// hbDeadline is when the member is removed unless it heartbeats (or
	// waits in JoinGroup or SyncGroup); -1 when none is armed.
	hbDeadline int64
	join       *waiting // a JoinGroup waiting for the rebalance
	sync       *waiting // a SyncGroup waiting for the leader's assignment
}

type protocol struct {
	name     string
	metadata []byte
}

// waiting is a request parked until the group answers it.
type waiting struct {
	tag     int64
	version int16
}

func newClassicState() classicState {
	return classicState{
		state:        stateDead,
		stateSinceMs: -1,
		byID:         make(map[string]*member),
		static:       make(map[string]string),
		supported:    make(map[string]int),
		pending:      make(map[string]int64),
		pendingSync:  make(map[string]struct{}),
		join:         joinTimer{deadline: -1},
		syncDeadline: -1,
	}
}

// init restores the group from what the offsets topic held. A group
// with members comes back Stable with every member's session starting
// now, as Kafka's loader does; their next heartbeats keep them.
func (c *Core) init(loaded *Loaded, nowMs int64) {
	c.classic = newClassicState()
	c.offsets.init(loaded, nowMs, c.s)
	g := &c.classic
	if loaded != nil && loaded.Group != nil {
		v := loaded.Group
		g.metaOnDisk = true
		g.generation = v.Generation
		g.protocolType = v.ProtocolType
		if v.Protocol != nil {
			g.protocol, g.hasProtocol = *v.Protocol, true
		}
		g.stateSinceMs = v.CurrentStateTimestamp
		if v.Protocol != nil { // members without a protocol cannot be restored
			for i := range v.Members {
				vm := &v.Members[i]
				if g.byID[vm.MemberID] != nil {
					continue
				}
				m := &member{
					id:                 vm.MemberID,
					instanceID:         cloneStringPtr(vm.InstanceID),
					clientID:           vm.ClientID,
					clientHost:         vm.ClientHost,
					rebalanceTimeoutMs: vm.RebalanceTimeoutMillis,
					sessionTimeoutMs:   vm.SessionTimeoutMillis,
					protocolType:       v.ProtocolType,
					protocols:          []protocol{{name: *v.Protocol, metadata: slices.Clone(vm.Subscription)}},
					assignment:         slices.Clone(vm.Assignment),
					hbDeadline:         nowMs + int64(vm.SessionTimeoutMillis),
				}
				g.addMember(m)
			}
		}
		if v.Leader != nil && g.byID[*v.Leader] != nil {
			g.leader = *v.Leader
		}
		if len(g.members) > 0 {
			g.state = stateStable
		} else {
			g.state = stateEmpty
			g.hasProtocol, g.protocol, g.leader = false, "", ""
		}
		g.computeSubscribed()
		return
	}
	if c.offsets.count > 0 {
		// A group with offsets and no metadata is a simple group
		// (offsets committed outside group management).
		g.state = stateEmpty
		g.stateSinceMs = nowMs
	}
}

// classicHasMembers reports whether the group is a classic group with
// members: a ConsumerGroupHeartbeat must not take such a group over.
func (c *Core) classicHasMembers() bool { return len(c.classic.members) > 0 }

// Summary is the group as ListGroups shows it.
func (c *Core) Summary() Summary {
	if state, ok := c.consumerSummary(); ok {
		return Summary{GroupID: c.id, ProtocolType: consumerProtocolType, State: state, GroupType: "consumer"}
	}
	return Summary{GroupID: c.id, ProtocolType: c.classic.protocolType, State: c.classic.state.String(), GroupType: "classic"}
}

// Dead reports whether the core holds nothing worth keeping: no members
// of either protocol, no pending member, no committed offset, no group
// metadata left on disk, and nothing in flight or unanswered. The host
// then stops the group's actor; a later request starts a fresh core.
func (c *Core) Dead() bool {
	g := &c.classic
	return len(g.members) == 0 && len(g.pending) == 0 && !g.metaOnDisk && !g.deleting &&
		c.offsets.count == 0 && len(c.offsets.inflight) == 0 &&
		!c.inflight && len(c.queued) == 0 && len(c.replies) == 0 &&
		!c.consumerIsActive()
}

// classicRequest handles every request that is not KIP-848's.
func (c *Core) classicRequest(r Request) {
	c.classicTick(r.NowMs)
	switch req := r.Req.(type) {
	case *kmsg.JoinGroupRequest:
		c.joinGroup(r, req)
	case *kmsg.SyncGroupRequest:
		c.syncGroup(r, req)
	case *kmsg.HeartbeatRequest:
		c.heartbeat(r, req)
	case *kmsg.LeaveGroupRequest:
		c.leaveGroup(r, req)
	case *kmsg.OffsetCommitRequest:
		c.offsetCommit(r, req)
	case *kmsg.OffsetDeleteRequest:
		c.offsetDelete(r, req)
	case *FetchOffsets:
		c.fetchOffsets(r, req)
	case *DescribeGroup:
		c.describeGroup(r, req)
	case *DeleteGroup:
		c.deleteGroup(r, req)
	default:
		// Every request is answered, so the host never leaks one; an
		// error tells it the request does not belong here.
		c.reply(r.Tag, fmt.Errorf("group %q: unsupported request %T", c.id, r.Req))
	}
}

// ---- JoinGroup ----

// joinResult is Kafka's JoinGroupResult.
type joinResult struct {
	code         int16
	memberID     string
	generation   int32
	protocolType *string
	protocol     *string
	leader       string
	members      []kmsg.JoinGroupResponseMember
}

func joinError(memberID string, code int16) joinResult {
	return joinResult{code: code, memberID: memberID, generation: -1}
}

func (c *Core) sendJoin(w waiting, res joinResult) {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = w.version
	resp.ErrorCode = res.code
	resp.Generation = res.generation
	resp.ProtocolType = res.protocolType
	resp.Protocol = res.protocol
	if w.version < 7 && resp.Protocol == nil {
		resp.Protocol = kmsg.StringPtr("") // not nullable before v7
	}
	resp.LeaderID = res.leader
	resp.MemberID = res.memberID
	resp.Members = res.members
	// SkipAssignment (v9, KIP-814) stays false: a static leader that
	// rejoins a Stable group is told the old leader id, as before v9.
	c.reply(w.tag, resp)
}

// currentJoin is the group's current generation as a JoinGroup answer
// for memberID; the leader also gets every member's metadata.
func (g *classicState) currentJoin(memberID, leader string, withMembers bool) joinResult {
	res := joinResult{
		memberID:   memberID,
		generation: g.generation,
		leader:     leader,
	}
	if g.protocolType != "" {
		res.protocolType = kmsg.StringPtr(g.protocolType)
	}
	if g.hasProtocol {
		res.protocol = kmsg.StringPtr(g.protocol)
	}
	if withMembers {
		res.members = make([]kmsg.JoinGroupResponseMember, 0, len(g.members))
		for _, m := range g.members {
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID = m.id
			jm.InstanceID = m.instanceID
			jm.ProtocolMetadata = m.metadata(g.protocol)
			res.members = append(res.members, jm)
		}
	}
	return res
}

func (c *Core) joinGroup(r Request, req *kmsg.JoinGroupRequest) {
	g := &c.classic
	w := waiting{tag: r.Tag, version: req.Version}
	if req.SessionTimeoutMillis < c.s.MinSessionTimeoutMs || req.SessionTimeoutMillis > c.s.MaxSessionTimeoutMs {
		c.sendJoin(w, joinError(req.MemberID, kerr.InvalidSessionTimeout.Code))
		return
	}
	if c.consumerIsActive() {
		// Classic members cannot join a KIP-848 group with members.
		c.sendJoin(w, joinError(req.MemberID, kerr.InconsistentGroupProtocol.Code))
		return
	}
	if g.deleting {
		c.sendJoin(w, joinError(req.MemberID, kerr.CoordinatorNotAvailable.Code))
		return
	}
	unknown := req.MemberID == ""
	if g.state == stateDead {
		// Kafka creates the group only for a member without an id.
		if !unknown {
			c.sendJoin(w, joinError(req.MemberID, kerr.UnknownMemberID.Code))
			return
		}
		g.transition(stateEmpty, r.NowMs)
	}
	c.consumerReset() // an empty KIP-848 group converts to classic
	switch {
	case !c.acceptJoiningMember(req.MemberID):
		// Kafka's group.remove: the member, or its KIP-394 id, is gone.
		if m := g.byID[req.MemberID]; m != nil {
			c.dropMember(m, kerr.UnknownMemberID.Code)
		}
		delete(g.pending, req.MemberID)
		c.sendJoin(w, joinError("", kerr.GroupMaxSizeReached.Code))
	case unknown:
		c.newMemberJoin(r, req, w)
	default:
		c.currentMemberJoin(r, req, w)
	}
	if g.state == statePreparingRebalance {
		c.tryCompleteJoin(r.NowMs)
	}
}

// acceptJoiningMember is Kafka's group.max.size check: existing members
// are always let back in; new ones only while the group (or, while it
// rebalances, the set of members that rejoined) is below the limit.
func (c *Core) acceptJoiningMember(memberID string) bool {
	g := &c.classic
	m := g.byID[memberID]
	switch g.state {
	case statePreparingRebalance:
		return (m != nil && m.join != nil) || g.awaitingJoin < c.s.MaxSize
	case stateCompletingRebalance, stateStable:
		return m != nil || len(g.members) < c.s.MaxSize
	default:
		return true
	}
}

// supportsProtocols is Kafka's check that a member can be in the group:
// an Empty group takes any non-empty protocol type and list; otherwise
// the type must match and one protocol must be supported by all.
func (g *classicState) supportsProtocols(protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	if g.state == stateEmpty {
		return protocolType != "" && len(protocols) > 0
	}
	if g.protocolType == "" || g.protocolType != protocolType {
		return false
	}
	for _, p := range protocols {
		if g.supported[p.Name] == len(g.members) {
			return true
		}
	}
	return false
}

func (c *Core) newMemberJoin(r Request, req *kmsg.JoinGroupRequest, w waiting) {
	g := &c.classic
	if !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		c.sendJoin(w, joinError(req.MemberID, kerr.InconsistentGroupProtocol.Code))
		return
	}
	newID := r.NewMemberID
	if _, clash := g.pending[newID]; newID == "" || clash || g.byID[newID] != nil {
		// The host owes every request a fresh id; without one the
		// client retries, as after a coordinator hiccup.
		c.sendJoin(w, joinError(req.MemberID, kerr.CoordinatorNotAvailable.Code))
		return
	}
	if req.InstanceID != nil {
		if oldID, ok := g.static[*req.InstanceID]; ok {
			c.updateStaticMemberAndRebalance(r, req, w, oldID, newID)
			return
		}
		c.addMemberAndRebalance(r, req, w, newID)
		return
	}
	if req.Version >= 4 {
		// KIP-394: the member must come back with this id, within its
		// session timeout, before it counts.
		g.pending[newID] = r.NowMs + int64(req.SessionTimeoutMillis)
		c.sendJoin(w, joinError(newID, kerr.MemberIDRequired.Code))
		return
	}
	c.addMemberAndRebalance(r, req, w, newID)
}

func (c *Core) currentMemberJoin(r Request, req *kmsg.JoinGroupRequest, w waiting) {
	g := &c.classic
	if !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		c.sendJoin(w, joinError(req.MemberID, kerr.InconsistentGroupProtocol.Code))
		return
	}
	if _, ok := g.pending[req.MemberID]; ok {
		if req.InstanceID != nil {
			// Pending ids are only handed to dynamic members.
			c.sendJoin(w, joinError(req.MemberID, kerr.UnknownServerError.Code))
			return
		}
		c.addMemberAndRebalance(r, req, w, req.MemberID)
		return
	}
	if code := g.validateInstance(req.InstanceID, req.MemberID); code == kerr.FencedInstanceID.Code {
		c.sendJoin(w, joinError(req.MemberID, code))
		return
	}
	m := g.byID[req.MemberID]
	if m == nil || (req.InstanceID != nil && g.static[*req.InstanceID] == "") {
		c.sendJoin(w, joinError(req.MemberID, kerr.UnknownMemberID.Code))
		return
	}
	switch g.state {
	case statePreparingRebalance:
		c.updateMemberAndRebalance(m, req, w, r.NowMs)
	case stateCompletingRebalance:
		if m.matches(req.Protocols) {
			// It lost the JoinGroup response: answer it again.
			c.sendJoin(w, g.currentJoin(m.id, g.leader, g.leader == m.id))
			return
		}
		c.updateMemberAndRebalance(m, req, w, r.NowMs)
	case stateStable:
		if g.leader == m.id || !m.matches(req.Protocols) {
			// The leader rejoins to have metadata changes (new topics
			// and partitions) assigned; anyone else only when its own
			// metadata changed.
			c.updateMemberAndRebalance(m, req, w, r.NowMs)
			return
		}
		c.sendJoin(w, g.currentJoin(m.id, g.leader, false))
	default:
		c.sendJoin(w, joinError(req.MemberID, kerr.UnknownMemberID.Code))
	}
}

func requestProtocols(ps []kmsg.JoinGroupRequestProtocol) []protocol {
	out := make([]protocol, len(ps))
	for i, p := range ps {
		out[i] = protocol{name: p.Name, metadata: slices.Clone(p.Metadata)}
	}
	return out
}

// rebalanceTimeout is the JoinGroup's rebalance timeout; v0 had only the
// session timeout.
func rebalanceTimeout(req *kmsg.JoinGroupRequest) int32 {
	if req.Version == 0 {
		return req.SessionTimeoutMillis
	}
	return req.RebalanceTimeoutMillis
}

func (c *Core) addMemberAndRebalance(r Request, req *kmsg.JoinGroupRequest, w waiting, id string) {
	g := &c.classic
	m := &member{
		id:                 id,
		instanceID:         cloneStringPtr(req.InstanceID),
		clientID:           r.ClientID,
		clientHost:         r.ClientHost,
		rebalanceTimeoutMs: rebalanceTimeout(req),
		sessionTimeoutMs:   req.SessionTimeoutMillis,
		protocolType:       req.ProtocolType,
		protocols:          requestProtocols(req.Protocols),
		isNew:              true,
		hbDeadline:         -1,
	}
	if g.state == statePreparingRebalance && g.generation == 0 {
		g.newMemberAdded = true
	}
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	g.addMember(m)
	m.join = &w
	g.awaitingJoin++
	c.scheduleHeartbeat(m, r.NowMs, newMemberJoinTimeoutMs)
	c.maybePrepareRebalance(r.NowMs)
}

// addMember is the bookkeeping half of Kafka's group.add.
func (g *classicState) addMember(m *member) {
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
	g.members = append(g.members, m)
	g.byID[m.id] = m
	for _, p := range m.protocols {
		g.supported[p.name]++
	}
	delete(g.pending, m.id)
}

// removeMember is the bookkeeping half of Kafka's group.remove. The
// caller answers whatever the member had waiting first.
func (g *classicState) removeMember(m *member) {
	if i := slices.Index(g.members, m); i >= 0 {
		g.members = slices.Delete(g.members, i, i+1)
	}
	delete(g.byID, m.id)
	for _, p := range m.protocols {
		if g.supported[p.name]--; g.supported[p.name] <= 0 {
			delete(g.supported, p.name)
		}
	}
	if m.join != nil {
		g.awaitingJoin--
		m.join = nil
	}
	m.sync = nil
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if len(g.members) > 0 {
			g.leader = g.members[0].id
		}
	}
	g.removePendingSync(m.id)
	m.hbDeadline = -1
}

// dropMember removes m, answering its parked requests with code (Kafka
// answers a parked JoinGroup UNKNOWN_MEMBER_ID with no member id; a
// parked SyncGroup Kafka would leave unanswered gets code too, so the
// host never leaks a request).
func (c *Core) dropMember(m *member, code int16) {
	if m.join != nil {
		c.sendJoin(*m.join, joinError("", code))
	}
	if m.sync != nil {
		c.sendSyncError(*m.sync, code)
	}
	c.classic.removeMember(m)
}

// updateMember is Kafka's group.updateMember: new protocols and timeouts,
// and the JoinGroup now waiting (nil for none). A JoinGroup it
// supersedes is answered REBALANCE_IN_PROGRESS so the host never leaks
// it (Kafka drops it; the client would only retry).
func (c *Core) updateMember(m *member, protocols []protocol, rebalanceMs, sessionMs int32, w *waiting) {
	g := &c.classic
	for _, p := range m.protocols {
		if g.supported[p.name]--; g.supported[p.name] <= 0 {
			delete(g.supported, p.name)
		}
	}
	m.protocols = protocols
	for _, p := range m.protocols {
		g.supported[p.name]++
	}
	m.rebalanceTimeoutMs, m.sessionTimeoutMs = rebalanceMs, sessionMs
	if m.join != nil {
		if w != nil {
			c.sendJoin(*m.join, joinError(m.id, kerr.RebalanceInProgress.Code))
		}
		g.awaitingJoin--
	}
	m.join = w
	if w != nil {
		g.awaitingJoin++
	}
}

func (c *Core) updateMemberAndRebalance(m *member, req *kmsg.JoinGroupRequest, w waiting, nowMs int64) {
	c.updateMember(m, requestProtocols(req.Protocols), rebalanceTimeout(req), req.SessionTimeoutMillis, &w)
	c.maybePrepareRebalance(nowMs)
}

// updateStaticMemberAndRebalance replaces a static member that rejoined
// without its member id (KIP-345): the new id takes over the old
// member's place and assignment, and the old id is fenced. In a Stable
// group whose protocol choice does not change there is no rebalance: the
// group metadata is stored with the new id and the member gets the
// current generation back.
func (c *Core) updateStaticMemberAndRebalance(r Request, req *kmsg.JoinGroupRequest, w waiting, oldID, newID string) {
	g := &c.classic
	currentLeader := g.leader
	m := g.byID[oldID]
	if m == nil { // the static map only names members; be safe anyway
		delete(g.static, *req.InstanceID)
		c.addMemberAndRebalance(r, req, w, newID)
		return
	}
	c.replaceStaticMember(m, newID)
	c.scheduleHeartbeat(m, r.NowMs, int64(m.sessionTimeoutMs))
	oldProtocols, oldRebalance, oldSession := m.protocols, m.rebalanceTimeoutMs, m.sessionTimeoutMs
	c.updateMember(m, requestProtocols(req.Protocols), rebalanceTimeout(req), req.SessionTimeoutMillis, &w)

	switch g.state {
	case stateStable:
		if sel, ok := g.selectProtocol(); !ok || !g.hasProtocol || sel != g.protocol {
			c.maybePrepareRebalance(r.NowMs)
			return
		}
		instanceID := *req.InstanceID
		c.persistGroup(g.metadataValue(func(m *member) []byte { return m.assignment }), func(nowMs int64, code int16) {
			if m.join == nil || m.join.tag != w.tag || g.byID[newID] != m {
				return // the member moved on (a rebalance answered it)
			}
			if code != 0 {
				// Undo: the old member id stays the member, as the log
				// still says.
				c.updateMember(m, oldProtocols, oldRebalance, oldSession, nil)
				if g.static[instanceID] == newID && g.byID[oldID] == nil {
					c.replaceStaticMember(m, oldID)
				}
				c.scheduleHeartbeat(m, nowMs, int64(m.sessionTimeoutMs))
				res := g.currentJoin("", currentLeader, false)
				res.code = groupAppendError(code)
				c.sendJoin(w, res)
				return
			}
			c.updateMember(m, m.protocols, m.rebalanceTimeoutMs, m.sessionTimeoutMs, nil)
			// Before KIP-814 (and here for every version) the rejoined
			// member is told the old leader id, so a static leader does
			// not compute an assignment a Stable group would ignore.
			c.sendJoin(w, g.currentJoin(newID, currentLeader, false))
		})
	case stateCompletingRebalance:
		// The leader may already have been given the old id to assign
		// to; rebalance so that the new id gets an assignment.
		c.prepareRebalance(r.NowMs)
	case statePreparingRebalance:
		// It waits for the rebalance like everyone else.
	}
}

// replaceStaticMember moves m to id newID, fencing whatever the old id
// had waiting with FENCED_INSTANCE_ID.
func (c *Core) replaceStaticMember(m *member, newID string) {
	g := &c.classic
	if m.join != nil {
		c.sendJoin(*m.join, joinError(m.id, kerr.FencedInstanceID.Code))
		m.join = nil
		g.awaitingJoin--
	}
	if m.sync != nil {
		c.sendSyncError(*m.sync, kerr.FencedInstanceID.Code)
		m.sync = nil
	}
	oldID := m.id
	delete(g.byID, oldID)
	m.id = newID
	g.byID[newID] = m
	if g.leader == oldID {
		g.leader = newID
	}
	if m.instanceID != nil {
		g.static[*m.instanceID] = newID
	}
	if _, ok := g.pendingSync[oldID]; ok {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = struct{}{}
	}
}

// matches reports whether a rejoin carries exactly the member's
// protocols and metadata, in the same order.
func (m *member) matches(ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i, p := range ps {
		if p.Name != m.protocols[i].name || !bytes.Equal(p.Metadata, m.protocols[i].metadata) {
			return false
		}
	}
	return true
}

func (m *member) metadata(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

// validateInstance is Kafka's static part of validateCurrentMember: 0,
// FENCED_INSTANCE_ID (another member id holds the instance id) or
// UNKNOWN_MEMBER_ID (the instance id is unknown).
func (g *classicState) validateInstance(instanceID *string, memberID string) int16 {
	if instanceID == nil {
		return 0
	}
	cur, ok := g.static[*instanceID]
	switch {
	case !ok:
		return kerr.UnknownMemberID.Code
	case cur != memberID:
		return kerr.FencedInstanceID.Code
	}
	return 0
}

// validateCurrentMember is Kafka's validateCurrentMember.
func (g *classicState) validateCurrentMember(memberID string, instanceID *string) int16 {
	if instanceID != nil {
		return g.validateInstance(instanceID, memberID)
	}
	if g.byID[memberID] == nil {
		return kerr.UnknownMemberID.Code
	}
	return 0
}

// ---- rebalance ----

func (c *Core) maybePrepareRebalance(nowMs int64) {
	switch c.classic.state {
	case stateStable, stateCompletingRebalance, stateEmpty:
		c.prepareRebalance(nowMs)
	}
}

// prepareRebalance starts a rebalance: members waiting in SyncGroup are
// sent back to JoinGroup, and the group waits for every member to
// rejoin (or, from Empty, for the initial rebalance delay).
func (c *Core) prepareRebalance(nowMs int64) {
	g := &c.classic
	if g.state == stateCompletingRebalance {
		c.resetAndPropagateAssignmentError(kerr.RebalanceInProgress.Code, nowMs)
	}
	g.clearPendingSync()
	rt := int64(g.rebalanceTimeoutMs())
	if g.state == stateEmpty {
		delay := int64(c.s.InitialRebalanceDelayMs)
		g.join = joinTimer{deadline: nowMs + delay, initial: true, delayMs: delay, remainingMs: max(rt-delay, 0)}
		g.transition(statePreparingRebalance, nowMs)
		return
	}
	g.join = joinTimer{deadline: nowMs + rt}
	g.transition(statePreparingRebalance, nowMs)
	c.tryCompleteJoin(nowMs)
}

// rebalanceTimeoutMs is the group's: the largest of its members'.
func (g *classicState) rebalanceTimeoutMs() int32 {
	var t int32
	for _, m := range g.members {
		t = max(t, m.rebalanceTimeoutMs)
	}
	return t
}

// hasAllMembersJoined: every member waits in JoinGroup and no KIP-394
// member is still expected back.
func (g *classicState) hasAllMembersJoined() bool {
	return len(g.members) == g.awaitingJoin && len(g.pending) == 0
}

// tryCompleteJoin completes a plain DelayedJoin early once everyone is
// in; the InitialDelayedJoin always runs its delay.
func (c *Core) tryCompleteJoin(nowMs int64) {
	g := &c.classic
	if g.state == statePreparingRebalance && g.join.deadline >= 0 && !g.join.initial && g.hasAllMembersJoined() {
		c.onCompleteJoin(nowMs)
	}
}

// fireJoin runs the join deadline at nowMs.
func (c *Core) fireJoin(nowMs int64) {
	g := &c.classic
	j := g.join
	if j.initial && g.newMemberAdded && j.remainingMs != 0 {
		// Members keep arriving: wait once more, up to the group's
		// rebalance timeout in all.
		g.newMemberAdded = false
		delay := min(int64(c.s.InitialRebalanceDelayMs), j.remainingMs)
		g.join = joinTimer{deadline: nowMs + delay, initial: true, delayMs: delay, remainingMs: max(j.remainingMs-j.delayMs, 0)}
		return
	}
	c.onCompleteJoin(nowMs)
}

// onCompleteJoin ends PreparingRebalance: dynamic members that did not
// rejoin are dropped (static ones stay, they may come back), a leader
// is chosen among those that rejoined, and the next generation starts.
func (c *Core) onCompleteJoin(nowMs int64) {
	g := &c.classic
	g.join = joinTimer{deadline: -1}
	if g.state != statePreparingRebalance {
		return
	}
	for _, m := range slices.Clone(g.members) {
		if m.join == nil && m.instanceID == nil {
			c.dropMember(m, kerr.UnknownMemberID.Code)
		}
	}
	if !g.electJoinedLeader() && len(g.members) > 0 {
		// Only static members that did not rejoin are left: wait
		// another rebalance timeout for them (or for their sessions to
		// end).
		g.join = joinTimer{deadline: nowMs + max(int64(g.rebalanceTimeoutMs()), 1)}
		return
	}
	g.initNextGeneration(nowMs)
	if g.state == stateEmpty {
		c.persistGroup(g.metadataValue(nil), nil)
		return
	}
	for _, m := range g.members {
		if m.join != nil {
			w := *m.join
			m.join = nil
			g.awaitingJoin--
			c.sendJoin(w, g.currentJoin(m.id, g.leader, g.leader == m.id))
		}
		c.scheduleHeartbeat(m, nowMs, int64(m.sessionTimeoutMs))
		m.isNew = false
		g.pendingSync[m.id] = struct{}{}
	}
	g.syncDeadline = nowMs + int64(g.rebalanceTimeoutMs())
}

// electJoinedLeader keeps the leader if it rejoined, else picks the
// first member that did; false if no member rejoined (or none exists).
func (g *classicState) electJoinedLeader() bool {
	if g.leader == "" {
		return false
	}
	if l := g.byID[g.leader]; l != nil && l.join != nil {
		return true
	}
	for _, m := range g.members {
		if m.join != nil {
			g.leader = m.id
			return true
		}
	}
	return false
}

func (g *classicState) initNextGeneration(nowMs int64) {
	g.generation++
	if len(g.members) > 0 {
		g.protocol, g.hasProtocol = g.selectProtocol()
		g.transition(stateCompletingRebalance, nowMs)
	} else {
		g.protocol, g.hasProtocol = "", false
		g.transition(stateEmpty, nowMs)
	}
	g.computeSubscribed()
	g.clearPendingSync()
}

// selectProtocol is Kafka's vote: among the protocols every member
// supports, each member votes for the first in its own preference
// order, and the most votes win. Kafka breaks ties arbitrarily; here the
// protocol voted for first (in join order) wins.
func (g *classicState) selectProtocol() (string, bool) {
	var order []string
	votes := make(map[string]int)
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.supported[p.name] == len(g.members) {
				if votes[p.name] == 0 {
					order = append(order, p.name)
				}
				votes[p.name]++
				break
			}
		}
	}
	best := ""
	for _, name := range order {
		if best == "" || votes[name] > votes[best] {
			best = name
		}
	}
	return best, len(order) > 0
}

// computeSubscribed is Kafka's computeSubscribedTopics: the union of the
// members' subscriptions when every member's consumer-protocol metadata
// parses, else unknown.
func (g *classicState) computeSubscribed() {
	g.subscribed, g.subscribedKnown = nil, false
	if g.protocolType != consumerProtocolType {
		return
	}
	if len(g.members) == 0 {
		g.subscribed, g.subscribedKnown = map[string]struct{}{}, true
		return
	}
	if !g.hasProtocol {
		return
	}
	subs := make(map[string]struct{})
	for _, m := range g.members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.metadata(g.protocol)); err != nil {
			return
		}
		for _, t := range meta.Topics {
			subs[t] = struct{}{}
		}
	}
	g.subscribed, g.subscribedKnown = subs, true
}

func (g *classicState) isSubscribedTo(topic string) bool {
	_, ok := g.subscribed[topic]
	return g.subscribedKnown && ok
}

func (g *classicState) transition(s groupState, nowMs int64) {
	g.state = s
	g.stateSinceMs = nowMs
}

func (g *classicState) removePendingSync(id string) {
	delete(g.pendingSync, id)
	if len(g.pendingSync) == 0 {
		g.syncDeadline = -1 // everyone synced: the DelayedSync completes
	}
}

func (g *classicState) clearPendingSync() {
	clear(g.pendingSync)
	g.syncDeadline = -1
}

// firePendingSync removes the members that never sent SyncGroup within
// the rebalance timeout, and rebalances without them.
func (c *Core) firePendingSync(nowMs int64) {
	g := &c.classic
	g.syncDeadline = -1
	if g.state != stateCompletingRebalance && g.state != stateStable || len(g.pendingSync) == 0 {
		return
	}
	for _, m := range slices.Clone(g.members) {
		if _, ok := g.pendingSync[m.id]; ok {
			c.dropMember(m, kerr.UnknownMemberID.Code)
		}
	}
	g.clearPendingSync()
	c.prepareRebalance(nowMs)
}

// scheduleHeartbeat is Kafka's completeAndScheduleNextExpiration: the
// member must heartbeat within timeoutMs, unless it waits in JoinGroup
// or SyncGroup (which counts as alive; the deadline is re-armed when
// that wait ends). A new member's deadline holds even while it waits.
func (c *Core) scheduleHeartbeat(m *member, nowMs, timeoutMs int64) {
	if !m.isNew && (m.join != nil || m.sync != nil) {
		m.hbDeadline = -1
		return
	}
	m.hbDeadline = nowMs + timeoutMs
}

// fireHeartbeat expires m at nowMs if it is not alive by Kafka's rules.
func (c *Core) fireHeartbeat(m *member, nowMs int64) {
	m.hbDeadline = -1
	if !m.isNew && (m.join != nil || m.sync != nil) {
		return
	}
	c.removeMemberAndUpdateGroup(m, nowMs)
}

// removeMemberAndUpdateGroup removes a member that left or failed and
// moves the group on: a rebalance, or the end of the current one.
func (c *Core) removeMemberAndUpdateGroup(m *member, nowMs int64) {
	c.dropMember(m, kerr.UnknownMemberID.Code)
	switch c.classic.state {
	case stateStable, stateCompletingRebalance:
		c.maybePrepareRebalance(nowMs)
	case statePreparingRebalance:
		c.tryCompleteJoin(nowMs)
	}
}

func (c *Core) removePendingMemberAndUpdateGroup(id string, nowMs int64) {
	delete(c.classic.pending, id)
	c.tryCompleteJoin(nowMs)
}

// classicTick fires the classic protocol's timers due by nowMs.
func (c *Core) classicTick(nowMs int64) {
	for range maxTimerSteps {
		at, fire := c.nextClassicTimer()
		if fire == nil || at > nowMs {
			return
		}
		fire(at)
	}
}

func (c *Core) classicNextTickMs() int64 {
	at, fire := c.nextClassicTimer()
	if fire == nil {
		return -1
	}
	return at
}

// nextClassicTimer finds the earliest armed timer. Ties go to member
// heartbeats (in join order), then pending members (by id), then the
// sync deadline, then the join deadline.
func (c *Core) nextClassicTimer() (int64, func(int64)) {
	g := &c.classic
	at := int64(-1)
	var fire func(int64)
	consider := func(t int64, f func(int64)) {
		if t >= 0 && (fire == nil || t < at) {
			at, fire = t, f
		}
	}
	for _, m := range g.members {
		consider(m.hbDeadline, func(now int64) { c.fireHeartbeat(m, now) })
	}
	if len(g.pending) > 0 {
		ids := make([]string, 0, len(g.pending))
		for id := range g.pending {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			consider(g.pending[id], func(now int64) { c.removePendingMemberAndUpdateGroup(id, now) })
		}
	}
	consider(g.syncDeadline, c.firePendingSync)
	if g.state == statePreparingRebalance {
		consider(g.join.deadline, c.fireJoin)
	}
	return at, fire
}

// ---- SyncGroup ----

func (c *Core) sendSyncError(w waiting, code int16) {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = w.version
	resp.ErrorCode = code
	resp.MemberAssignment = []byte{}
	c.reply(w.tag, resp)
}

func (c *Core) sendSync(w waiting, assignment []byte) {
	g := &c.classic
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = w.version
	if g.protocolType != "" {
		resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	}
	if g.hasProtocol {
		resp.Protocol = kmsg.StringPtr(g.protocol)
	}
	resp.MemberAssignment = assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	c.reply(w.tag, resp)
}

func (c *Core) syncGroup(r Request, req *kmsg.SyncGroupRequest) {
	g := &c.classic
	w := waiting{tag: r.Tag, version: req.Version}
	if req.Version >= 5 && (req.ProtocolType == nil || req.Protocol == nil) {
		c.sendSyncError(w, kerr.InconsistentGroupProtocol.Code) // mandatory from v5 on
		return
	}
	if g.deleting {
		c.sendSyncError(w, kerr.CoordinatorNotAvailable.Code)
		return
	}
	code := g.validateCurrentMember(req.MemberID, req.InstanceID)
	switch {
	case code != 0:
	case req.Generation != g.generation:
		code = kerr.IllegalGeneration.Code
	case req.ProtocolType != nil && (g.protocolType == "" || *req.ProtocolType != g.protocolType):
		code = kerr.InconsistentGroupProtocol.Code
	case req.Protocol != nil && (!g.hasProtocol || *req.Protocol != g.protocol):
		code = kerr.InconsistentGroupProtocol.Code
	}
	if code != 0 {
		c.sendSyncError(w, code)
		return
	}
	m := g.byID[req.MemberID]
	switch g.state {
	case statePreparingRebalance:
		c.sendSyncError(w, kerr.RebalanceInProgress.Code)
	case stateCompletingRebalance:
		if m.sync != nil {
			c.sendSyncError(*m.sync, kerr.RebalanceInProgress.Code) // superseded
		}
		m.sync = &w
		g.removePendingSync(m.id)
		if m.id == g.leader {
			c.storeLeaderAssignment(req, r.NowMs)
		}
	case stateStable:
		g.removePendingSync(m.id)
		c.sendSync(w, m.assignment)
		c.scheduleHeartbeat(m, r.NowMs, int64(m.sessionTimeoutMs))
	default:
		c.sendSyncError(w, kerr.UnknownMemberID.Code)
	}
}

// storeLeaderAssignment persists the leader's assignment with the group
// metadata and, once that is durable, answers every waiting SyncGroup
// and makes the group Stable — unless the group moved on meanwhile.
func (c *Core) storeLeaderAssignment(req *kmsg.SyncGroupRequest, nowMs int64) {
	g := &c.classic
	assignment := make(map[string][]byte, len(g.members))
	for _, a := range req.GroupAssignment {
		if g.byID[a.MemberID] != nil {
			assignment[a.MemberID] = slices.Clone(a.MemberAssignment)
		}
	}
	for _, m := range g.members {
		if assignment[m.id] == nil {
			assignment[m.id] = []byte{} // Kafka fills in the missing
		}
	}
	gen := g.generation
	c.persistGroup(g.metadataValue(func(m *member) []byte { return assignment[m.id] }), func(nowMs int64, code int16) {
		if g.state != stateCompletingRebalance || g.generation != gen {
			return
		}
		if code != 0 {
			c.resetAndPropagateAssignmentError(groupAppendError(code), nowMs)
			c.maybePrepareRebalance(nowMs)
			return
		}
		for _, m := range g.members {
			m.assignment = assignment[m.id]
		}
		c.propagateAssignment(0, nowMs)
		g.transition(stateStable, nowMs)
	})
}

func (c *Core) resetAndPropagateAssignmentError(code int16, nowMs int64) {
	for _, m := range c.classic.members {
		m.assignment = []byte{}
	}
	c.propagateAssignment(code, nowMs)
}

// propagateAssignment answers every waiting SyncGroup and re-arms the
// session of each member answered.
func (c *Core) propagateAssignment(code int16, nowMs int64) {
	for _, m := range c.classic.members {
		if m.sync == nil {
			continue
		}
		w := *m.sync
		m.sync = nil
		if code != 0 {
			c.sendSyncError(w, code)
		} else {
			c.sendSync(w, m.assignment)
		}
		c.scheduleHeartbeat(m, nowMs, int64(m.sessionTimeoutMs))
	}
}

// metadataValue is the group's GroupMetadataValue with each member's
// assignment from assign (nil: an empty group).
func (g *classicState) metadataValue(assign func(*member) []byte) *kmsg.GroupMetadataValue {
	v := kmsg.NewGroupMetadataValue()
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.hasProtocol {
		v.Protocol = kmsg.StringPtr(g.protocol)
	}
	if g.leader != "" {
		v.Leader = kmsg.StringPtr(g.leader)
	}
	v.CurrentStateTimestamp = g.stateSinceMs
	if assign == nil {
		return &v
	}
	v.Members = make([]kmsg.GroupMetadataValueMember, 0, len(g.members))
	for _, m := range g.members {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = m.id
		vm.InstanceID = m.instanceID
		vm.ClientID = m.clientID
		vm.ClientHost = m.clientHost
		vm.RebalanceTimeoutMillis = m.rebalanceTimeoutMs
		vm.SessionTimeoutMillis = m.sessionTimeoutMs
		vm.Subscription = m.metadata(g.protocol)
		vm.Assignment = assign(m)
		v.Members = append(v.Members, vm)
	}
	return &v
}

// persistGroup appends the group's metadata; done (may be nil) runs
// with the outcome.
func (c *Core) persistGroup(v *kmsg.GroupMetadataValue, done func(nowMs int64, code int16)) {
	c.persist([]Record{groupRecord(c.id, v)}, func(nowMs int64, code int16) {
		if code == 0 {
			c.classic.metaOnDisk = true
		}
		if done != nil {
			done(nowMs, code)
		}
	})
}

// ---- Heartbeat ----

func (c *Core) heartbeat(r Request, req *kmsg.HeartbeatRequest) {
	g := &c.classic
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	defer c.reply(r.Tag, resp)
	if g.deleting {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return
	}
	if code := g.validateCurrentMember(req.MemberID, req.InstanceID); code != 0 {
		resp.ErrorCode = code
		return
	}
	if req.Generation != g.generation {
		resp.ErrorCode = kerr.IllegalGeneration.Code
		return
	}
	m := g.byID[req.MemberID]
	switch g.state {
	case stateCompletingRebalance, stateStable:
		c.scheduleHeartbeat(m, r.NowMs, int64(m.sessionTimeoutMs))
	case statePreparingRebalance:
		c.scheduleHeartbeat(m, r.NowMs, int64(m.sessionTimeoutMs))
		resp.ErrorCode = kerr.RebalanceInProgress.Code // rejoin
	default:
		resp.ErrorCode = kerr.UnknownMemberID.Code
	}
}

// ---- LeaveGroup ----

func (c *Core) leaveGroup(r Request, req *kmsg.LeaveGroupRequest) {
	g := &c.classic
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	defer c.reply(r.Tag, resp)
	if g.deleting {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return
	}
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	out := make([]kmsg.LeaveGroupResponseMember, 0, len(leaving))
	for _, lm := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID = lm.MemberID
		rm.InstanceID = lm.InstanceID
		rm.ErrorCode = c.leaveOne(lm, r.NowMs)
		out = append(out, rm)
	}
	if req.Version < 3 {
		resp.ErrorCode = out[0].ErrorCode
		return
	}
	resp.Members = out
}

// leaveOne removes one leaving member: by member id, or (an admin
// removing a static member) by instance id alone.
func (c *Core) leaveOne(lm kmsg.LeaveGroupRequestMember, nowMs int64) int16 {
	g := &c.classic
	if lm.MemberID == "" {
		if lm.InstanceID == nil {
			return kerr.UnknownMemberID.Code
		}
		id, ok := g.static[*lm.InstanceID]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		c.removeMemberAndUpdateGroup(g.byID[id], nowMs)
		return 0
	}
	if _, ok := g.pending[lm.MemberID]; ok {
		c.removePendingMemberAndUpdateGroup(lm.MemberID, nowMs)
		return 0
	}
	if code := g.validateCurrentMember(lm.MemberID, lm.InstanceID); code != 0 {
		return code
	}
	c.removeMemberAndUpdateGroup(g.byID[lm.MemberID], nowMs)
	return 0
}

// ---- DescribeGroups ----

func (c *Core) describeGroup(r Request, d *DescribeGroup) {
	g := &c.classic
	out := kmsg.NewDescribeGroupsResponseGroup()
	out.Group = c.id
	if d.IncludeAuthorizedOperations {
		out.AuthorizedOperations = classicGroupAuthorizedOps
	}
	_, isConsumer := c.consumerSummary()
	if g.state == stateDead || isConsumer {
		out.State = stateDead.String()
		if d.Version >= 6 {
			out.ErrorCode = kerr.GroupIDNotFound.Code
			msg := fmt.Sprintf("Group %s not found.", c.id)
			if isConsumer {
				msg = fmt.Sprintf("Group %s is not a classic group.", c.id)
			}
			out.ErrorMessage = &msg
		}
		c.reply(r.Tag, &out)
		return
	}
	out.State = g.state.String()
	out.ProtocolType = g.protocolType
	stable := g.state == stateStable
	if stable {
		out.Protocol = g.protocol
	}
	out.Members = make([]kmsg.DescribeGroupsResponseGroupMember, 0, len(g.members))
	for _, m := range g.members {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = m.instanceID
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		dm.ProtocolMetadata, dm.MemberAssignment = []byte{}, []byte{}
		if stable { // Kafka shows metadata and assignments only then
			dm.ProtocolMetadata = m.metadata(g.protocol)
			dm.MemberAssignment = m.assignment
		}
		out.Members = append(out.Members, dm)
	}
	c.reply(r.Tag, &out)
}

// resetClassic forgets the classic group (it was deleted).
func (c *Core) resetClassic() {
	c.classic = newClassicState()
}

func cloneStringPtr(s *string) *string {
	if s == nil {
		return nil
	}
	v := *s
	return &v
}
