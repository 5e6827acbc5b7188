package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/actors"
	"github.com/troupe-io/troupe/actors/group"
	"github.com/troupe-io/troupe/metadata"
	"github.com/troupe-io/troupe/wire"
)

// OffsetsTopic is Kafka's internal topic of committed offsets and group
// metadata.
const OffsetsTopic = wire.OffsetsTopic

// groupSettings maps the broker config to the group cores' settings.
func (n *Node) groupSettings() group.Settings {
	g := n.cfg.Groups
	return group.Settings{
		MinSessionTimeoutMs:         g.MinSessionTimeoutMs,
		MaxSessionTimeoutMs:         g.MaxSessionTimeoutMs,
		InitialRebalanceDelayMs:     g.InitialRebalanceDelayMs,
		MaxSize:                     g.MaxSize,
		OffsetsRetentionMs:          g.OffsetsRetentionMs,
		OffsetsRetentionCheckMs:     g.OffsetsRetentionCheckMs,
		OffsetMetadataMaxBytes:      g.OffsetMetadataMaxBytes,
		ConsumerSessionTimeoutMs:    g.ConsumerSessionTimeoutMs,
		ConsumerHeartbeatIntervalMs: g.ConsumerHeartbeatIntervalMs,
		ConsumerAssignors:           g.ConsumerAssignors,
		ConsumerMaxSize:             g.ConsumerMaxSize,
	}
}

// startGroups creates the node's group coordinators. The offsets topic's
// partition count is fixed once the topic exists; until then it is the
// configured one the topic will be created with.
func (n *Node) startGroups(img *metadata.Image) {
	parts := n.cfg.Groups.OffsetsTopicPartitions
	if t := img.Topic(OffsetsTopic); t != nil {
		parts = int32(len(t.Partitions))
	}
	n.groups = actors.NewGroups(n.host, actors.GroupsConfig{
		Settings:   n.groupSettings(),
		Partitions: parts,
		OffsetsPartition: func(p int32) *actors.Partition {
			return n.host.Partition(OffsetsTopic, p)
		},
		Topics: func() group.TopicView { return n.controller.Image().TopicIndex() },
		Logger: n.logger.With("component", "groups"),
	})
}

// reconcileGroups loads the groups of the offsets partitions this node
// leads and unloads the others. Called by reconcile, after the partition
// actors are up.
func (n *Node) reconcileGroups(img *metadata.Image) {
	t := img.Topic(OffsetsTopic)
	for p := int32(0); p < n.cfg.Groups.OffsetsTopicPartitions || (t != nil && p < int32(len(t.Partitions))); p++ {
		if t != nil && p < int32(len(t.Partitions)) && t.Partitions[p].Leader == n.cfg.NodeID {
			n.groups.Load(p, t.Partitions[p].LeaderEpoch)
		} else {
			n.groups.Unload(p)
		}
	}
}

// FindCoordinator implements wire.Backend: the leader of the offsets
// partition the group id hashes to, creating the offsets topic first.
func (n *Node) FindCoordinator(ctx context.Context, keyType int8, key string) (metadata.Broker, error) {
	switch keyType {
	case 0:
	case 1:
		return metadata.Broker{}, fmt.Errorf("transactions are not supported: %w", kerr.TransactionalIDAuthorizationFailed)
	default:
		return metadata.Broker{}, fmt.Errorf("unknown coordinator key type %d: %w", keyType, kerr.InvalidRequest)
	}
	img := n.controller.Image()
	if img.Topic(OffsetsTopic) == nil {
		if err := n.createOffsetsTopic(ctx, img); err != nil {
			return metadata.Broker{}, err
		}
		img = n.controller.Image()
	}
	return wire.GroupCoordinator(img, key)
}

// createOffsetsTopic creates __consumer_offsets as Kafka does on the first
// FindCoordinator: offsets.topic.num.partitions partitions, replication
// min(offsets.topic.replication.factor, brokers), compacted.
func (n *Node) createOffsetsTopic(ctx context.Context, img *metadata.Image) error {
	rf := n.cfg.Groups.OffsetsTopicReplication
	live := 0
	for _, b := range img.Brokers {
		if !b.Fenced {
			live++
		}
	}
	rf = int16(min(int(rf), max(live, 1)))
	policy, segment := "compact", strconv.FormatInt(n.cfg.Groups.OffsetsTopicSegmentBytes, 10)
	errs := n.CreateTopics(ctx, []metadata.CreateTopic{{
		Name: OffsetsTopic, NumPartitions: n.cfg.Groups.OffsetsTopicPartitions, ReplicationFactor: rf,
		Configs: map[string]*string{"cleanup.policy": &policy, "segment.bytes": &segment},
	}}, false)
	if err := errs[0]; err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create the offsets topic: %w", err)
	}
	n.logger.Info("created the offsets topic", "topic", OffsetsTopic, "partitions", n.cfg.Groups.OffsetsTopicPartitions, "replication_factor", rf)
	return nil
}

// Group implements wire.Backend.
func (n *Node) Group(id string) (wire.Group, error) {
	h, err := n.groups.Group(id)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// ListGroups implements wire.Backend.
func (n *Node) ListGroups() []group.Summary { return n.groups.List() }
