package cluster

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/metadata"
	"github.com/troupe-io/troupe/wire"
)

// The wire.Backend methods: the Kafka handlers reach the node through
// these.

func (n *Node) NodeID() int32          { return n.cfg.NodeID }
func (n *Node) Image() *metadata.Image { return n.controller.Image() }

func (n *Node) Limits() wire.Limits {
	return wire.Limits{
		SocketRequestMaxBytes: n.cfg.SocketRequestMaxBytes,
		AutoCreateTopics:      n.cfg.AutoCreateTopics,
		DeleteTopicEnable:     n.cfg.DeleteTopicEnable,
		MaxInflightPerConn:    64,
	}
}

func (n *Node) CreateTopics(_ context.Context, reqs []metadata.CreateTopic, validateOnly bool) []error {
	return n.controller.CreateTopics(reqs, validateOnly)
}

func (n *Node) DeleteTopics(_ context.Context, names []string) []error {
	return n.controller.DeleteTopics(names)
}

func (n *Node) CreatePartitions(_ context.Context, reqs []metadata.CreatePartitions, validateOnly bool) []error {
	return n.controller.CreatePartitions(reqs, validateOnly)
}

func (n *Node) TopicConfigs(topic string) ([]metadata.ConfigValue, error) {
	t := n.controller.Image().Topic(topic)
	if t == nil {
		return nil, fmt.Errorf("topic %q does not exist: %w", topic, kerr.UnknownTopicOrPartition)
	}
	return metadata.EffectiveTopicConfigs(t, n.cfg.TopicDefaults()), nil
}

func (n *Node) BrokerConfigs() []metadata.ConfigValue {
	var out []metadata.ConfigValue
	for _, e := range n.cfg.All() {
		src := metadata.SourceDefault
		if e.Set {
			src = metadata.SourceStaticBroker
		}
		out = append(out, metadata.ConfigValue{
			Name: e.Name, Value: e.Value, Source: src, ReadOnly: true,
			Type: metadata.ConfigType(e.Type), Doc: e.Doc,
		})
	}
	return out
}

func (n *Node) AlterTopicConfigs(_ context.Context, topic string, ops []metadata.ConfigOp, validateOnly bool) error {
	return n.controller.AlterTopicConfigs(topic, ops, validateOnly)
}

func (n *Node) AllocateProducerID(context.Context) (int64, error) {
	return n.controller.AllocateProducerID()
}

func (n *Node) Partition(topic string, partition int32) wire.Partition {
	p := n.host.Partition(topic, partition)
	if p == nil {
		// A typed nil would not compare equal to nil in the handlers.
		return nil
	}
	return p
}
