package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/cluster/config"
	"github.com/troupe-io/troupe/cluster/membership"
	"github.com/troupe-io/troupe/cluster/transport"
	"github.com/troupe-io/troupe/metadata"
	"github.com/troupe-io/troupe/metadata/quorum"
	"github.com/troupe-io/troupe/raftlog"
)

// Cluster mode: controller.quorum.voters is set. The metadata log is
// replicated by the raft quorum of the voters (package metadata/quorum);
// the raft leader is the active controller; every node applies the
// committed records to its image and acts on it. Without voters a node
// runs alone on a local journal file (single-node mode).

// quorumTick is the raft tick; the election timeout is a whole number of
// ticks (controller.quorum.election.timeout.ms).
const quorumTick = 100 * time.Millisecond

// maxTransportFrame bounds one controller-transport frame: a raft message
// carries up to a 64 MiB metadata batch, and a snapshot the whole image.
const maxTransportFrame = 256 << 20

// clusterMode reports whether cfg describes a multi-voter (or explicitly
// configured) cluster.
func clusterMode(cfg *config.Config) bool { return len(cfg.ControllerQuorumVoters) > 0 }

// derivedClusterID is the cluster id of a cluster whose nodes start with
// empty data directories: every node derives the same id from the voter
// set, so no format step has to hand one out (KRaft needs
// kafka-storage format with one id on every node).
func derivedClusterID(voters []config.Voter) string {
	ss := make([]string, len(voters))
	for i, v := range voters {
		ss[i] = v.String()
	}
	slices.Sort(ss)
	sum := sha256.Sum256([]byte("troupe-cluster:" + strings.Join(ss, ",")))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// raftJournal makes the metadata controller propose through the quorum:
// Append returns once the batch is committed and applied here.
type raftJournal struct {
	// node is set once the quorum has started; ready is closed then. The
	// quorum may elect this node (and so call Append through
	// BecomeActive) before Start has even returned.
	node  atomic.Pointer[quorum.Node]
	ready chan struct{}
	apply metadata.ApplyFunc
	// ctx ends when the node stops, failing proposals still waiting (the
	// quorum may have lost its majority and never commit them).
	ctx  context.Context
	stop context.CancelFunc
}

func newRaftJournal() *raftJournal {
	ctx, stop := context.WithCancel(context.Background())
	return &raftJournal{ready: make(chan struct{}), ctx: ctx, stop: stop}
}

// started hands the journal its quorum.
func (j *raftJournal) started(n *quorum.Node) {
	j.node.Store(n)
	close(j.ready)
}

// proposeTimeout bounds one metadata proposal.
const proposeTimeout = 15 * time.Second

func (j *raftJournal) SetApply(fn metadata.ApplyFunc) { j.apply = fn }

func (j *raftJournal) Append(recs []metadata.Record) (int64, error) {
	if j.ready == nil {
		return 0, fmt.Errorf("this node does not vote in the metadata quorum: %w", metadata.ErrNotController)
	}
	ctx, cancel := context.WithTimeout(j.ctx, proposeTimeout)
	defer cancel()
	select {
	case <-j.ready:
	case <-ctx.Done():
		return 0, fmt.Errorf("the metadata quorum did not start: %w", metadata.ErrNotController)
	}
	data, err := metadata.EncodeBatch(recs)
	if err != nil {
		return 0, err
	}
	idx, err := j.node.Load().Propose(ctx, data)
	if err != nil {
		if errors.Is(err, quorum.ErrNotLeader) || errors.Is(err, quorum.ErrProposalDropped) || errors.Is(err, quorum.ErrStopped) {
			// No controller here (any more): the caller retries on the
			// new one.
			return 0, fmt.Errorf("%v: %w", err, metadata.ErrNotController)
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return 0, fmt.Errorf("metadata proposal not committed: %v: %w", err, kerr.RequestTimedOut)
		}
		return 0, err
	}
	return int64(idx), nil
}

func (j *raftJournal) Replay(func(int64, metadata.Record) error) error { return nil }
func (j *raftJournal) Close() error                                    { return nil }

// startClusterMetadata brings up the controller transport, the raft log,
// the quorum and the controller on top of it.
func (n *Node) startClusterMetadata(clusterID string) error {
	cfg := n.cfg
	_, _ = rand.Read(n.incarnation[:])
	var voterIDs []int32
	isVoter := false
	for _, v := range cfg.ControllerQuorumVoters {
		voterIDs = append(voterIDs, v.ID)
		if v.ID == cfg.NodeID {
			isVoter = true
		}
	}
	hasRole := func(r string) bool { return len(cfg.ProcessRoles) == 0 || slices.Contains(cfg.ProcessRoles, r) }
	if !isVoter {
		if hasRole("controller") && len(cfg.ProcessRoles) > 0 {
			return fmt.Errorf("node.id %d has process.roles=%s but is not in controller.quorum.voters (%s)",
				cfg.NodeID, strings.Join(cfg.ProcessRoles, ","), joinVoters(cfg.ControllerQuorumVoters))
		}
		return n.startMetadataFollower(clusterID)
	}
	ctrlAddr, err := n.controllerListenAddr()
	if err != nil {
		return err
	}
	if err := n.startTransport(ctrlAddr, clusterID); err != nil {
		return err
	}
	tr := n.transport
	n.raftStore, err = raftlog.Open(raftlog.Options{Dir: filepath.Join(cfg.LogDir, "__raft"), Logger: n.logger.With("component", "raftlog")})
	if err != nil {
		return fmt.Errorf("open the metadata raft log: %w", err)
	}
	j := newRaftJournal()
	n.stopProposals = j.stop
	n.controller, err = metadata.NewController(j, cfg.NodeID, clusterID, n.metadataDefaults(), rand.Reader)
	if err != nil {
		return err
	}
	// The raft leader becomes the active controller (onLeaderChange).
	n.controller.Resign()
	electionTicks := max(int(time.Duration(cfg.QuorumElectionTimeoutMs)*time.Millisecond/quorumTick), 2)
	n.quorum, err = quorum.Start(quorum.Config{
		NodeID: cfg.NodeID, Voters: voterIDs, Storage: n.raftStore, Transport: tr,
		Apply: func(index uint64, data []byte) error {
			recs, err := metadata.DecodeBatch(data)
			if err != nil {
				return err
			}
			return j.apply(int64(index), recs)
		},
		Snapshot: func() ([]byte, error) { return n.controller.Image().Snapshot() },
		Restore: func(data []byte, _ uint64) error {
			img, err := metadata.ImageFromSnapshot(data)
			if err != nil {
				return err
			}
			return n.controller.Restore(img)
		},
		OnLeaderChange: n.onLeaderChange,
		TickInterval:   quorumTick, ElectionTick: electionTicks, HeartbeatTick: 1,
		Logger: n.logger.With("component", "quorum"),
	})
	if err != nil {
		return fmt.Errorf("start the metadata quorum: %w", err)
	}
	j.started(n.quorum)
	return nil
}

// startTransport listens on addr and starts the controller transport,
// knowing every voter's address.
func (n *Node) startTransport(addr, clusterID string) error {
	var err error
	n.ctrlListener, err = net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on the controller listener %s: %w", addr, err)
	}
	n.transport, err = transport.NewTCP(transport.Options{
		NodeID: n.cfg.NodeID, ClusterID: clusterID, Listener: n.ctrlListener, Handler: n,
		Logger: n.logger.With("component", "transport"), MaxFrameBytes: maxTransportFrame,
	})
	if err != nil {
		return fmt.Errorf("controller transport: %w", err)
	}
	for _, v := range n.cfg.ControllerQuorumVoters {
		n.transport.SetPeer(v.ID, net.JoinHostPort(v.Host, strconv.Itoa(v.Port)))
	}
	return nil
}

// metadataDefaults are the controller's defaults from the broker config.
func (n *Node) metadataDefaults() metadata.Defaults {
	return metadata.Defaults{
		NumPartitions:          n.cfg.NumPartitions,
		ReplicationFactor:      n.cfg.DefaultReplicationFactor,
		DeleteTopicEnable:      n.cfg.DeleteTopicEnable,
		BrokerConfig:           n.cfg.TopicDefaults(),
		BrokerSessionTimeoutMs: int64(n.cfg.BrokerSessionTimeoutMs),
	}
}

// controllerListenAddr is where the CONTROLLER listener binds.
func (n *Node) controllerListenAddr() (string, error) {
	for _, l := range n.cfg.Listeners {
		if slices.Contains(n.cfg.ControllerListenerNames, l.Name) {
			return l.Addr(), nil
		}
	}
	// Fall back to this node's voter address.
	for _, v := range n.cfg.ControllerQuorumVoters {
		if v.ID == n.cfg.NodeID {
			return net.JoinHostPort(v.Host, strconv.Itoa(v.Port)), nil
		}
	}
	return "", fmt.Errorf("no controller listener: add CONTROLLER://host:port to listeners and controller.listener.names=CONTROLLER")
}

func joinVoters(vs []config.Voter) string {
	ss := make([]string, len(vs))
	for i, v := range vs {
		ss[i] = v.String()
	}
	return strings.Join(ss, ",")
}

// onLeaderChange runs on the quorum's goroutine when the raft leadership
// changes (for this node: only once it has applied everything before its
// term). It must not block.
func (n *Node) onLeaderChange(leader int32, term uint64) {
	n.logger.Info("metadata quorum leader", "leader", leader, "term", term, "self", leader == n.cfg.NodeID)
	if leader != n.cfg.NodeID {
		n.controller.Resign()
		return
	}
	go func() {
		if err := n.controller.BecomeActive(time.Now().UnixMilli()); err != nil {
			n.logger.Warn("becoming the active controller", "err", err)
			return
		}
		n.logger.Info("active controller", "term", term)
	}()
}

// HandleMessage implements transport.Handler.
func (n *Node) HandleMessage(from int32, kind transport.Kind, payload []byte) {
	// Until start-up has set n.quorum (ctrlReady publishes it), raft
	// messages are dropped; raft resends.
	if kind == transport.KindRaft && n.ctrlReady.Load() && n.quorum != nil {
		n.quorum.HandleMessage(from, payload)
	}
}

// HandleRequest implements transport.Handler.
func (n *Node) HandleRequest(_ context.Context, from int32, kind transport.Kind, payload []byte) ([]byte, error) {
	if !n.ctrlReady.Load() {
		return nil, errors.New("node is starting")
	}
	switch kind {
	case transport.KindController:
		if n.controller == nil {
			return nil, errors.New("node is starting")
		}
		return n.handleControllerRequest(from, payload)
	case transport.KindMetadataFetch:
		if n.quorum == nil {
			return nil, errors.New("not a voter of the metadata quorum")
		}
		return n.serveMetadataFetch(payload)
	}
	return nil, fmt.Errorf("unsupported request kind %d", kind)
}

// brokerLoop registers this broker with the active controller and
// heartbeats until ctx ends (KRaft's BrokerRegistration and
// BrokerHeartbeat). While fenced it heartbeats quickly, so that it is
// unfenced as soon as it has caught up with the metadata log.
func (n *Node) brokerLoop(ctx context.Context) {
	defer close(n.brokerDone)
	incarnation := n.incarnation
	adv := n.cfg.AdvertisedBrokerListener()
	port := adv.Port
	if port == 0 {
		port = n.listener.Addr().(*net.TCPAddr).Port
	}
	reg := metadata.BrokerRegistration{
		ID: n.cfg.NodeID, Incarnation: incarnation, ClusterID: n.clusterID, Host: adv.Host, Port: int32(port),
		Rack: n.cfg.Rack, Roles: metadata.RoleBroker,
	}
	if n.quorum != nil {
		reg.ControllerAddr = n.ctrlListener.Addr().String()
		reg.Roles |= metadata.RoleController
	}
	if n.members != nil {
		reg.GossipAddr = n.members.Addr()
	}
	interval := time.Duration(n.cfg.BrokerHeartbeatIntervalMs) * time.Millisecond
	registered, fenced := false, true
	for {
		wait := interval
		callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if !registered {
			var epoch int64
			if err := n.callController(callCtx, opRegister, reg, &epoch); err != nil {
				if ctx.Err() == nil {
					n.logger.Warn("broker registration", "err", err)
				}
			} else {
				registered = true
				n.logger.Info("registered with the controller", "broker_epoch", epoch)
			}
			wait = 200 * time.Millisecond
		} else {
			var res heartbeatResult
			err := n.callController(callCtx, opHeartbeat, heartbeatArgs{ID: n.cfg.NodeID, Incarnation: incarnation,
				Applied: n.controller.Image().Offset}, &res)
			switch {
			case err != nil && ctx.Err() == nil:
				n.logger.Warn("broker heartbeat", "err", err)
				if isStaleRegistration(err) {
					registered = false
				}
			case err == nil:
				if res.Fenced != fenced {
					n.logger.Info("broker fencing changed", "fenced", res.Fenced)
				}
				fenced = res.Fenced
			}
			if fenced {
				wait = 200 * time.Millisecond
			}
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func isStaleRegistration(err error) bool {
	return errors.Is(err, kerr.StaleBrokerEpoch) || errors.Is(err, kerr.BrokerIDNotRegistered)
}

// controllerTickLoop lets the active controller fence brokers whose
// heartbeats stopped.
func (n *Node) controllerTickLoop(ctx context.Context) {
	defer close(n.tickDone)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !n.controller.Active() {
			continue
		}
		if fenced, err := n.controller.Tick(time.Now().UnixMilli()); err != nil {
			n.logger.Warn("controller tick", "err", err)
		} else if len(fenced) > 0 {
			n.logger.Warn("fenced brokers whose heartbeats stopped", "brokers", fenced)
		}
	}
}

// startMembership starts gossip-based failure detection: a node memberlist
// declares dead is reported to the controller, which fences it at once
// instead of waiting out broker.session.timeout.ms.
func (n *Node) startMembership(ctx context.Context) error {
	bind := n.cfg.GossipListener
	if bind == "" {
		host := n.cfg.BrokerListener().Host
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		bind = net.JoinHostPort(host, "0")
	}
	m, err := membership.Start(membership.Config{
		NodeID: n.cfg.NodeID, BindAddr: bind, AdvertiseAddr: n.cfg.GossipAdvertisedListener, ClusterID: n.clusterID,
		Meta: membership.NodeMeta{NodeID: n.cfg.NodeID, Incarnation: int64(binary.BigEndian.Uint64(n.incarnation[:8]) >> 1),
			KafkaAddr: n.listener.Addr().String(), ControllerAddr: n.ctrlListener.Addr().String(), Roles: n.roles()},
		Logger: n.logger.With("component", "membership"),
	})
	if err != nil {
		return err
	}
	n.members = m
	go n.watchMembers(ctx)
	return nil
}

// watchMembers reports failed nodes to the controller and keeps the gossip
// seeds in line with the brokers the metadata knows.
func (n *Node) watchMembers(ctx context.Context) {
	defer close(n.membersDone)
	seedTick := time.NewTicker(250 * time.Millisecond)
	defer seedTick.Stop()
	var lastSeeds string
	for {
		select {
		case <-ctx.Done():
			return
		case <-seedTick.C:
			var seeds []string
			for _, b := range n.controller.Image().Brokers {
				if b.ID != n.cfg.NodeID && b.GossipAddr != "" {
					seeds = append(seeds, b.GossipAddr)
				}
			}
			if s := strings.Join(seeds, ","); s != lastSeeds {
				lastSeeds = s
				n.members.SetSeeds(seeds)
			}
		case ev, ok := <-n.members.Events():
			if !ok {
				return
			}
			if ev.Kind == membership.Failed {
				n.reportIfDead(ctx, ev.Member)
			}
			continue
		}
		// Every tick also look at the whole membership table: a report
		// lost while the quorum had no leader (the dead node may have been
		// the controller) is made again to the new one.
		for _, m := range n.members.Members() {
			if m.State == membership.StateDead {
				n.reportIfDead(ctx, m)
			}
		}
	}
}

// reportIfDead asks the controller to fence a node gossip declared dead,
// unless the metadata already fences it or knows a newer process of it.
func (n *Node) reportIfDead(ctx context.Context, m membership.Member) {
	b, known := n.controller.Image().Broker(m.NodeID)
	if !known || b.Fenced || int64(binary.BigEndian.Uint64(b.Incarnation[:8])>>1) != m.Meta.Incarnation {
		return
	}
	n.logger.Warn("gossip reports a node dead; asking the controller to fence it", "node", m.NodeID)
	callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := n.callController(callCtx, opReportDead, m.NodeID, nil); err != nil && ctx.Err() == nil {
		n.logger.Warn("report dead node", "node", m.NodeID, "err", err)
	}
}

// roles are this node's process.roles (both when unset).
func (n *Node) roles() []string {
	if len(n.cfg.ProcessRoles) == 0 {
		return []string{"broker", "controller"}
	}
	return n.cfg.ProcessRoles
}

// isBroker reports whether this node serves Kafka clients and hosts
// replicas (process.roles includes broker).
func (n *Node) isBroker() bool { return slices.Contains(n.roles(), "broker") }

// Brokers that do not vote (process.roles=broker) follow the committed
// metadata log by pulling it from the voters (transport.KindMetadataFetch),
// as KRaft brokers fetch __cluster_metadata from the controllers.

// metadataFetchBytes bounds one pull of the metadata log.
const metadataFetchBytes = 4 << 20

// serveMetadataFetch answers a non-voter's pull: request = from index
// (8 bytes); response = [firstIndex u64][snapshot len u32][snapshot]
// [count u32] then per entry [len u32][payload] (len 0xffffffff: none).
func (n *Node) serveMetadataFetch(payload []byte) ([]byte, error) {
	if len(payload) != 8 {
		return nil, errors.New("bad metadata fetch request")
	}
	from := binary.BigEndian.Uint64(payload)
	entries, first, snap, err := n.quorum.ReadCommitted(from, metadataFetchBytes)
	if err != nil {
		return nil, err
	}
	out := binary.BigEndian.AppendUint64(nil, first)
	out = binary.BigEndian.AppendUint32(out, uint32(len(snap)))
	out = append(out, snap...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(entries)))
	for _, e := range entries {
		if e == nil {
			out = binary.BigEndian.AppendUint32(out, 0xffffffff)
			continue
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(e)))
		out = append(out, e...)
	}
	return out, nil
}

// startMetadataFollower sets up a broker that does not vote: a transport
// to reach the voters, a controller that never becomes active (it only
// applies what the pull loop brings), and the pull loop.
func (n *Node) startMetadataFollower(clusterID string) error {
	cfg := n.cfg
	addr, err := n.controllerListenAddr()
	if err != nil {
		host := cfg.BrokerListener().Host
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		addr = net.JoinHostPort(host, "0")
	}
	if err := n.startTransport(addr, clusterID); err != nil {
		return err
	}
	n.controller, err = metadata.NewController(&raftJournal{}, cfg.NodeID, clusterID, n.metadataDefaults(), rand.Reader)
	if err != nil {
		return err
	}
	n.controller.Resign()
	n.followDone = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	n.stopFollow = cancel
	go n.followMetadata(ctx)
	return nil
}

// followMetadata pulls and applies the committed metadata log until ctx
// ends.
func (n *Node) followMetadata(ctx context.Context) {
	defer close(n.followDone)
	attempt := 0
	for ctx.Err() == nil {
		from := uint64(max(n.controller.Image().Offset+1, 1))
		target := n.controllerHint(attempt)
		reqCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := n.transport.Request(reqCtx, target, transport.KindMetadataFetch, binary.BigEndian.AppendUint64(nil, from))
		cancel()
		progressed := false
		if err == nil {
			progressed, err = n.applyMetadataFetch(from, resp)
		}
		if err != nil {
			attempt++
			if ctx.Err() == nil && attempt%10 == 0 {
				n.logger.Warn("following the metadata log", "from_voter", target, "err", err)
			}
		}
		if !progressed {
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// applyMetadataFetch applies one pull's answer.
func (n *Node) applyMetadataFetch(from uint64, b []byte) (bool, error) {
	bad := errors.New("malformed metadata fetch response")
	if len(b) < 12 {
		return false, bad
	}
	first := binary.BigEndian.Uint64(b)
	snapLen := int(binary.BigEndian.Uint32(b[8:]))
	b = b[12:]
	if snapLen > len(b) {
		return false, bad
	}
	progressed := false
	if snapLen > 0 {
		img, err := metadata.ImageFromSnapshot(b[:snapLen])
		if err != nil {
			return false, err
		}
		if err := n.controller.Restore(img); err != nil {
			return false, err
		}
		progressed = true
	}
	b = b[snapLen:]
	if len(b) < 4 {
		return false, bad
	}
	count := int(binary.BigEndian.Uint32(b))
	b = b[4:]
	for i := 0; i < count; i++ {
		if len(b) < 4 {
			return progressed, bad
		}
		l := binary.BigEndian.Uint32(b)
		b = b[4:]
		idx := int64(first) + int64(i)
		if l == 0xffffffff {
			continue
		}
		if int(l) > len(b) {
			return progressed, bad
		}
		recs, err := metadata.DecodeBatch(b[:l])
		if err != nil {
			return progressed, err
		}
		b = b[l:]
		if err := n.controller.Apply(idx, recs); err != nil {
			return progressed, err
		}
		progressed = true
	}
	_ = from
	return progressed, nil
}
