package membership

import (
	"errors"
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate receives memberlist's callbacks. memberlist calls most of them
// (NodeMeta excepted, join notifications, alive and conflict checks) with
// its node lock held, so none of them may call back into memberlist.
type delegate struct {
	m *Membership
}

var (
	_ memberlist.Delegate         = (*delegate)(nil)
	_ memberlist.EventDelegate    = (*delegate)(nil)
	_ memberlist.AliveDelegate    = (*delegate)(nil)
	_ memberlist.ConflictDelegate = (*delegate)(nil)
	_ memberlist.MergeDelegate    = (*delegate)(nil)
)

// NodeMeta returns this node's encoded metadata. Start checked that both
// variants fit memberlist's limit.
func (d *delegate) NodeMeta(limit int) []byte {
	b := *d.m.meta.Load()
	if len(b) > limit {
		// Unreachable (see Start); memberlist would panic on it.
		return nil
	}
	return b
}

// This package gossips no user data: only memberlist's own messages.

func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

func (d *delegate) NotifyJoin(n *memberlist.Node)   { d.m.record(n, Joined) }
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.m.record(n, Updated) }
func (d *delegate) NotifyLeave(n *memberlist.Node)  { d.m.record(n, Failed) }

// NotifyAlive admits only Troupe nodes whose name and metadata agree, so
// everything in memberlist's tables decodes.
func (d *delegate) NotifyAlive(n *memberlist.Node) error {
	_, _, _, err := decodeNode(n)
	return err
}

// NotifyConflict is told when two addresses claim one name. Briefly after
// a node restarts on a new address that is expected (peers still hold the
// old process as alive until they detect it); for longer, two processes
// share a node id.
func (d *delegate) NotifyConflict(existing, other *memberlist.Node) {
	m := d.m
	if existing.Name == m.selfName {
		// Not a poke: every join attempt causes conflicts while the
		// predecessor lives; the loop's backoff paces the retries.
		m.staleSelf.Store(true)
	}
	now := time.Now().UnixNano()
	last := m.lastConflictLog.Load()
	if now-last > int64(10*time.Second) && m.lastConflictLog.CompareAndSwap(last, now) {
		m.log.Warn("two addresses claim one node id; expected briefly after a restart on a new address, otherwise node ids are duplicated",
			"name", existing.Name, "known", existing.Address(), "other", other.Address())
	}
}

var (
	errNotTroupe = errors.New("membership: peer's cluster has a non-Troupe node")
	errRevive    = errors.New("membership: peer's view revives a node that just died or left; waiting for its own announcement")
)

// NotifyMerge sees the other side's whole view on every join, in either
// direction, before it is merged; an error cancels this side's merge. It
// refuses views that are not a Troupe cluster, and does two things for
// restarts.
//
// A restarted process starts memberlist's own incarnation counter at 1,
// below the last one its predecessor used, while the predecessor's death
// (or leave) is still being gossiped with that higher number. Merged now,
// the new process would be accepted and then killed by that late gossip:
// peers would report it Joined, Failed (or Left), Joined. So:
//
//   - A view that shows alive, under a new NodeMeta incarnation, a node
//     this one saw die or leave less than reviveGuard ago is refused. The
//     restarted node still merges this side's view, sees its predecessor
//     dead there, and refutes with a higher memberlist incarnation, which
//     peers accept by gossip and the late death gossip cannot override.
//   - When the other side's view holds this node under another NodeMeta
//     incarnation (its predecessor, alive or gone), the other side has not
//     accepted this process yet: staleSelf asks the rejoin loop to retry.
//   - When it holds the predecessor dead or left, merging that makes
//     memberlist refute it if the predecessor's memberlist incarnation is
//     not below ours; if it is below, nothing is said at all. Either way
//     announce asks the rejoin loop to gossip this node once more, with an
//     incarnation now above the predecessor's.
func (d *delegate) NotifyMerge(peers []*memberlist.Node) error {
	m := d.m
	announce := false
	for _, p := range peers {
		id, meta, _, err := decodeNode(p)
		if err != nil {
			return errors.Join(errNotTroupe, err)
		}
		if p.Name == m.selfName {
			if meta.Incarnation != m.cfg.Meta.Incarnation {
				m.staleSelf.Store(true)
				announce = announce || p.State == memberlist.StateDead || p.State == memberlist.StateLeft
			}
			continue
		}
		if p.State == memberlist.StateAlive && m.recentlyGone(id, meta.Incarnation) {
			return errRevive
		}
	}
	// Only a merge that goes ahead raises our incarnation; announcing
	// without it could lose to the predecessor's death again.
	if announce {
		m.announce.Store(true)
	}
	return nil
}
