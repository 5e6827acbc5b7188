package cluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/troupe-io/troupe/actors"
	"github.com/troupe-io/troupe/actors/partition"
	"github.com/troupe-io/troupe/batch"
	"github.com/troupe-io/troupe/cluster/config"
	"github.com/troupe-io/troupe/cluster/fetcher"
	"github.com/troupe-io/troupe/cluster/membership"
	"github.com/troupe-io/troupe/cluster/transport"
	"github.com/troupe-io/troupe/metadata"
	"github.com/troupe-io/troupe/metadata/quorum"
	"github.com/troupe-io/troupe/partlog"
	"github.com/troupe-io/troupe/raftlog"
	"github.com/troupe-io/troupe/wire"
)

// Node is one running Troupe broker: storage, metadata, partition actors
// and the Kafka listener. It implements wire.Backend.
type Node struct {
	cfg        *config.Config
	logger     *slog.Logger
	store      *partlog.Store
	journal    *metadata.FileJournal // single-node mode
	controller *metadata.Controller

	// Cluster mode (see clustermode.go); nil in single-node mode. quorum
	// is nil on a broker that does not vote (process.roles=broker).
	clustered    bool
	clusterID    string
	incarnation  metadata.IncarnationID
	ctrlListener net.Listener
	transport    *transport.TCP
	raftStore    *raftlog.Storage
	quorum       *quorum.Node
	members      *membership.Membership
	loopCtx      context.Context // the background loops' context
	// stopProposals fails metadata proposals still waiting for a commit.
	stopProposals context.CancelFunc
	stopLoops     context.CancelFunc
	stopFollow    context.CancelFunc // non-voting brokers' metadata pull
	followDone    chan struct{}
	brokerDone    chan struct{}
	tickDone      chan struct{}
	membersDone   chan struct{}
	// producer ids handed out by the controller in blocks (cluster mode)
	pidMu           sync.Mutex
	pidNext, pidEnd int64
	host            *actors.Host
	groups          *actors.Groups
	server          *wire.Server
	listener        net.Listener
	metrics         *metricsServer

	// topicIDs remembers which incarnation of each topic name runs here,
	// so a topic deleted and re-created under the same name is noticed.
	mu       sync.Mutex
	topicIDs map[string]metadata.TopicID
	// reconcileCh wakes the reconciler (cluster mode); it is never closed,
	// since the quorum's apply goroutine may still send on it while the
	// node stops. Closing reconcileStop stops the reconciler, which then
	// closes reconcileDone.
	reconcileCh   chan struct{}
	reconcileStop chan struct{}
	reconcileDone chan struct{}
	// reconciled is the image the last successful reconcile acted on.
	reconciled *metadata.Image
	// leaderEpochs are the partitions this node leads, at which epoch
	// (single-node mode).
	leaderEpochs map[partlog.LogID]int32
	// Replication (cluster mode; see replication.go). replicas are the
	// partition replicas running here with their image state as last
	// applied; caughtUp latches once the image has caught up with this
	// node's registration. Both are guarded by mu.
	fetcher    *fetcher.Fetcher
	replicas   map[partlog.LogID]actors.ReplicaRole
	caughtUp   bool
	replCtx    context.Context
	replCancel context.CancelFunc
	// replWG counts the AlterPartition calls in flight; replStopped
	// (under replMu) refuses new ones once shutdown waits for them.
	replMu      sync.Mutex
	replStopped bool
	replWG      sync.WaitGroup
	// ctrlReady publishes the cluster metadata start-up to the transport's
	// handlers (HandleMessage, HandleRequest), which run from the moment
	// the transport exists.
	ctrlReady atomic.Bool
	// serving is true from the moment the listener serves until Close.
	serving  atomic.Bool
	serveErr chan error
}

// Start opens the node's data directory, recovers it, and starts serving
// Kafka clients. Close stops it.
func Start(cfg *config.Config, logger *slog.Logger) (*Node, error) {
	started := time.Now()
	if logger == nil {
		logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", cfg.LogDir, err)
	}
	newID := ""
	if clusterMode(cfg) {
		newID = derivedClusterID(cfg.ControllerQuorumVoters)
	}
	clusterID, err := loadOrCreateMeta(cfg.LogDir, cfg.NodeID, newID)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, logger: logger, topicIDs: map[string]metadata.TopicID{}, leaderEpochs: map[partlog.LogID]int32{}, serveErr: make(chan error, 1), clusterID: clusterID}
	ok := false
	defer func() {
		if !ok {
			n.closeStorage()
		}
	}()

	n.store, err = partlog.Open(partlog.Options{Dir: cfg.LogDir, Logger: logger.With("component", "partlog")})
	if err != nil {
		return nil, fmt.Errorf("open partition storage: %w", err)
	}
	if clusterMode(cfg) {
		n.clustered = true
		if err := n.startClusterMetadata(clusterID); err != nil {
			return nil, err
		}
		// The transport may already have delivered messages; from here on
		// its handlers may read what start-up set (the quorum, the
		// controller).
		n.ctrlReady.Store(true)
	} else {
		n.journal, err = metadata.OpenFileJournal(filepath.Join(cfg.LogDir, "__metadata", "journal"))
		if err != nil {
			return nil, err
		}
		n.controller, err = metadata.NewController(n.journal, cfg.NodeID, clusterID, n.metadataDefaults(), rand.Reader)
		if err != nil {
			return nil, err
		}
	}
	n.host = actors.NewHost(n.store, logger.With("component", "actors"), time.Now)
	if clusterMode(cfg) {
		n.startReplication()
	}
	n.startGroups(n.controller.Image())

	// Listen before registering so that the advertised port is known when
	// the config asks for port 0 (tests).
	lc := cfg.BrokerListener()
	n.listener, err = net.Listen("tcp", lc.Addr())
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", lc.Addr(), err)
	}
	adv := cfg.AdvertisedBrokerListener()
	port := adv.Port
	if port == 0 {
		port = n.listener.Addr().(*net.TCPAddr).Port
	}
	if !clusterMode(cfg) {
		if err := n.controller.RegisterBroker(metadata.BrokerRecord{ID: cfg.NodeID, Host: adv.Host, Port: int32(port), Rack: cfg.Rack}); err != nil {
			return nil, fmt.Errorf("register broker: %w", err)
		}
	}

	// Bring up every partition this node leads (in cluster mode: is a
	// replica of, once the metadata has caught up), then keep following
	// the metadata: in single-node mode the watcher runs inside each
	// controller commit, so when CreateTopics returns the partitions are
	// already serving.
	if err := n.reconcile(n.controller.Image()); err != nil {
		return nil, err
	}
	if !clusterMode(cfg) {
		// In cluster mode the image is only trusted to name strays once
		// it has caught up (metadataCaughtUp).
		n.removeStrayLogs(n.controller.Image())
	}
	if clusterMode(cfg) {
		// The watcher runs on the quorum's apply goroutine; opening
		// partition logs there would hold up raft. A reconciler goroutine
		// acts on the latest image instead (intermediate ones coalesce).
		n.reconcileCh = make(chan struct{}, 1)
		n.reconcileStop = make(chan struct{})
		n.reconcileDone = make(chan struct{})
		go n.reconcileLoop()
		n.controller.Watch(func(_, _ *metadata.Image) {
			select {
			case n.reconcileCh <- struct{}{}:
			default:
			}
		})
	} else {
		n.controller.Watch(func(_, img *metadata.Image) {
			if err := n.reconcile(img); err != nil {
				n.logger.Error("apply metadata change", "err", err)
			}
		})
	}

	n.server = wire.NewServer(n, wire.Options{Logger: logger.With("component", "wire")})
	// After the server exists, so the metrics handlers may read it.
	if cfg.MetricsListener != "" {
		if n.metrics, err = startMetrics(n, cfg.MetricsListener); err != nil {
			n.listener.Close() // the server never served it, so closeStorage would not
			return nil, err
		}
	}
	go func() { n.serveErr <- n.server.Serve(n.listener) }()
	if clusterMode(cfg) {
		loopCtx, cancel := context.WithCancel(context.Background())
		n.loopCtx, n.stopLoops = loopCtx, cancel
		n.brokerDone, n.tickDone, n.membersDone = make(chan struct{}), make(chan struct{}), make(chan struct{})
		if !n.isBroker() {
			close(n.membersDone)
			close(n.brokerDone)
		} else {
			if err := n.startMembership(loopCtx); err != nil {
				close(n.membersDone)
				n.logger.Warn("gossip failure detection is off", "err", err)
			}
			go n.brokerLoop(loopCtx)
		}
		go n.controllerTickLoop(loopCtx)
	}
	n.serving.Store(true)
	ok = true
	logger.Info("broker started", "node_id", cfg.NodeID, "cluster_id", clusterID, "listener", n.listener.Addr().String(),
		"advertised", fmt.Sprintf("%s:%d", adv.Host, port), "log_dir", cfg.LogDir, "topics", n.controller.Image().NumTopics(),
		"startup", time.Since(started).Round(time.Microsecond).String())
	return n, nil
}

// Addr is the address the Kafka listener is bound to.
func (n *Node) Addr() net.Addr { return n.listener.Addr() }

// Close shuts the node down gracefully: stop accepting, finish in-flight
// requests (within ctx), stop the partition actors (each fsyncs and
// closes its log), close the metadata journal and the index.
func (n *Node) Close(ctx context.Context) error {
	n.serving.Store(false)
	var errs []error
	if n.stopLoops != nil {
		n.stopLoops()
	}
	// The controlled shutdown (hand leaderships over) still proposes to
	// the quorum; after it, proposals still waiting — for a quorum that
	// may be gone, from the broker loop or another node's request — are
	// failed, or they would hold the shutdown up to their timeout.
	n.stopReplication(ctx)
	if n.stopProposals != nil {
		n.stopProposals()
	}
	if n.stopLoops != nil {
		<-n.brokerDone
		<-n.tickDone
		if n.members != nil {
			errs = append(errs, n.members.Close())
		}
		<-n.membersDone
	}
	if n.metrics != nil {
		errs = append(errs, n.metrics.close(ctx))
	}
	if n.groups != nil {
		// First, so that requests parked in group actors (a JoinGroup
		// waiting for a rebalance) are answered NOT_COORDINATOR and do not
		// hold up the graceful shutdown of their connections.
		n.groups.Close()
	}
	if n.server != nil {
		if err := n.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown listener: %w", err))
		}
	}
	errs = append(errs, n.closeStorage())
	return errors.Join(errs...)
}

func (n *Node) closeStorage() error {
	var errs []error
	if n.reconcileStop != nil {
		close(n.reconcileStop)
		<-n.reconcileDone
		n.reconcileStop = nil
	}
	if n.groups != nil {
		n.groups.Close()
	}
	if n.host != nil {
		errs = append(errs, n.host.Close())
	}
	if n.journal != nil {
		errs = append(errs, n.journal.Close())
	}
	if n.stopFollow != nil {
		n.stopFollow()
		<-n.followDone
	}
	if n.quorum != nil {
		if err := n.quorum.Close(); err != nil && !errors.Is(err, quorum.ErrStopped) {
			errs = append(errs, err)
		}
	}
	if n.transport != nil {
		errs = append(errs, n.transport.Close())
	}
	if n.raftStore != nil {
		errs = append(errs, n.raftStore.Close())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	if n.listener != nil && n.server == nil {
		n.listener.Close()
	}
	return errors.Join(errs...)
}

// reconcile makes the running partitions match img: start what this node
// leads (single-node mode) or is a replica of (cluster mode, see
// reconcileReplicas), reconfigure on config changes, delete what is gone.
func (n *Node) reconcile(img *metadata.Image) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fetcher != nil {
		if !n.metadataCaughtUp(img) {
			return nil
		}
		err := n.reconcileReplicas(img, n.reconciled)
		n.reconcileGroups(img)
		// After a failure, the next reconcile looks at every topic again.
		n.reconciled = img
		if err != nil {
			n.reconciled = nil
		}
		return err
	}
	var errs []error
	for name, id := range n.topicIDs {
		if t := img.Topic(name); t == nil || t.ID != id {
			for _, pid := range n.host.Partitions() {
				if pid.Topic == name {
					if err := n.host.Delete(pid); err != nil {
						errs = append(errs, err)
					}
					delete(n.leaderEpochs, pid)
				}
			}
			delete(n.topicIDs, name)
			n.logger.Info("topic deleted", "topic", name)
		}
	}
	led := map[partlog.LogID]bool{}
	prev := n.reconciled
	for _, name := range img.TopicNames() {
		t := img.Topic(name)
		// Images are copy-on-write: a topic nothing changed is the same
		// pointer as in the image reconciled last, and needs no work —
		// which keeps reconciling O(changed topics), not O(all topics).
		if prev != nil && prev.Topic(name) == t {
			for _, p := range t.Partitions {
				if p.Leader == n.cfg.NodeID {
					led[partlog.LogID{Topic: name, Partition: p.Index}] = true
				}
			}
			continue
		}
		pc := n.partitionConfig(t)
		for _, p := range t.Partitions {
			if p.Leader != n.cfg.NodeID {
				continue
			}
			id := partlog.LogID{Topic: name, Partition: p.Index}
			led[id] = true
			if epoch, running := n.leaderEpochs[id]; running && epoch != p.LeaderEpoch {
				// Leadership came back at a new epoch: restart the actor so
				// that it stamps the new epoch.
				if err := n.host.Stop(id); err != nil {
					errs = append(errs, err)
				}
				delete(n.leaderEpochs, id)
			}
			if err := n.host.Start(id, pc, p.LeaderEpoch); err != nil {
				errs = append(errs, err)
				continue
			}
			n.leaderEpochs[id] = p.LeaderEpoch
		}
		n.topicIDs[name] = t.ID
	}
	// Partitions whose leadership moved away stop here (their data stays).
	for id := range n.leaderEpochs {
		if !led[id] {
			if err := n.host.Stop(id); err != nil {
				errs = append(errs, err)
			}
			delete(n.leaderEpochs, id)
			n.logger.Info("partition leadership moved away", "topic", id.Topic, "partition", id.Partition)
		}
	}
	n.reconcileGroups(img)
	// After a failure, the next reconcile looks at every topic again.
	n.reconciled = img
	if len(errs) > 0 {
		n.reconciled = nil
	}
	return errors.Join(errs...)
}

// reconcileLoop reconciles with the latest image whenever the metadata
// changes (cluster mode).
func (n *Node) reconcileLoop() {
	defer close(n.reconcileDone)
	for {
		select {
		case <-n.reconcileStop:
			return
		case <-n.reconcileCh:
		}
		if err := n.reconcile(n.controller.Image()); err != nil {
			n.logger.Error("apply metadata change; retrying in a second", "err", err)
			// A quiet cluster may bring no other change to retry on.
			time.AfterFunc(time.Second, func() {
				select {
				case n.reconcileCh <- struct{}{}:
				default:
				}
			})
		}
	}
}

// removeStrayLogs deletes partition logs on disk that img no longer
// places here: a topic or partition it does not know (a crash between
// deleting a topic and its files, a topic deleted while the node was
// down), or, in cluster mode, a partition whose replicas no longer
// include this node. img must be current: a stale one would name live
// logs strays. Running partitions are left alone.
func (n *Node) removeStrayLogs(img *metadata.Image) {
	ids, err := n.store.ListLogs()
	if err != nil {
		n.logger.Warn("list partition logs", "err", err)
		return
	}
	for _, id := range ids {
		if n.host.Partition(id.Topic, id.Partition) != nil {
			continue
		}
		t := img.Topic(id.Topic)
		if t != nil && int(id.Partition) < len(t.Partitions) &&
			(n.fetcher == nil || slices.Contains(t.Partitions[id.Partition].Replicas, n.cfg.NodeID)) {
			continue
		}
		n.logger.Warn("removing stray partition log not in the metadata", "topic", id.Topic, "partition", id.Partition)
		if err := n.store.DeleteLog(id); err != nil {
			n.logger.Error("remove stray partition log", "topic", id.Topic, "partition", id.Partition, "err", err)
		}
	}
}

// producerSnapshotIntervalMs is how often a partition with new idempotent
// writes snapshots its producer table, bounding the log a restart replays
// to about this much time of batches.
const producerSnapshotIntervalMs = 60_000

// partitionConfig derives a partition's settings from its topic's
// effective configs.
func (n *Node) partitionConfig(t *metadata.Topic) actors.PartitionConfig {
	v := map[string]string{}
	for _, cv := range metadata.EffectiveTopicConfigs(t, n.cfg.TopicDefaults()) {
		v[cv.Name] = cv.Value
	}
	num := func(name string, def int64) int64 {
		x, err := strconv.ParseInt(v[name], 10, 64)
		if err != nil {
			return def
		}
		return x
	}
	flushMessages, flushMs := num("flush.messages", 0), num("flush.ms", 0)
	flushMsSet := v["flush.ms"] != ""
	pc := actors.PartitionConfig{
		Log: partlog.LogConfig{
			SegmentBytes:   num("segment.bytes", 1<<30),
			SegmentMs:      num("segment.ms", 7*24*3600*1000),
			RetentionMs:    num("retention.ms", 7*24*3600*1000),
			RetentionBytes: num("retention.bytes", -1),
		},
		Core: partition.Settings{
			// The durability stance: unless the operator relaxed flushing,
			// acknowledge only what is fsynced.
			AckAfterSync:         (flushMessages == 0 && !flushMsSet) || flushMessages == 1,
			FlushMessages:        flushMessages,
			FlushMs:              flushMs,
			LogAppendTime:        v["message.timestamp.type"] == "LogAppendTime",
			RetentionCheckMs:     n.cfg.RetentionCheckIntervalMs,
			ProducerExpirationMs: n.cfg.ProducerIDExpirationMs,
			SnapshotIntervalMs:   producerSnapshotIntervalMs,
		},
		Validate: batch.Options{
			MaxBatchBytes: int32(num("max.message.bytes", 1048588)),
			RequireKeys:   strings.Contains(v["cleanup.policy"], "compact"),
		},
	}
	if !strings.Contains(v["cleanup.policy"], "delete") {
		// A compact-only topic keeps its records until the cleaner
		// replaces them, never by age or size (Kafka's rule). Troupe has
		// no cleaner yet, so such a topic keeps everything.
		pc.Log.RetentionMs, pc.Log.RetentionBytes = -1, -1
	}
	if flushMsSet && flushMs == 0 {
		// flush.ms=0: fsync as soon as possible, acknowledging first.
		pc.Core.FlushMessages = 1
	}
	if n.fetcher != nil {
		// Replicated partitions (cluster mode): acks=-1 needs
		// min.insync.replicas in the ISR, and followers that have not
		// caught up for replica.lag.time.max.ms leave it. A single-node
		// partition is its own whole ISR, as it always was.
		pc.Core.MinInsyncReplicas = int32(num("min.insync.replicas", 1))
		pc.Core.ReplicaLagTimeMaxMs = n.cfg.ReplicaLagTimeMaxMs
	}
	return pc
}

// loadOrCreateMeta reads meta.properties (cluster.id, node.id) from the
// data directory, writing it on first start as Kafka does, and refuses a
// directory that belongs to another node.
func loadOrCreateMeta(dir string, nodeID int32, newID string) (string, error) {
	path := filepath.Join(dir, "meta.properties")
	b, err := os.ReadFile(path)
	if err == nil {
		props := map[string]string{}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
				props[k] = v
			}
		}
		if got := props["node.id"]; got != fmt.Sprint(nodeID) {
			return "", fmt.Errorf("data directory %s belongs to node.id %s, but this node is node.id %d", dir, got, nodeID)
		}
		if props["cluster.id"] == "" {
			return "", fmt.Errorf("%s has no cluster.id", path)
		}
		return props["cluster.id"], nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	clusterID := newID
	if clusterID == "" {
		var id [16]byte
		if _, err := rand.Read(id[:]); err != nil {
			return "", err
		}
		clusterID = base64.RawURLEncoding.EncodeToString(id[:])
	}
	content := fmt.Sprintf("#Written by troupe at first start\nversion=1\ncluster.id=%s\nnode.id=%d\n", clusterID, nodeID)
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, []byte(content)); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return clusterID, syncDir(dir)
}

func writeFileSync(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
