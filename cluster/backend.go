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

// In cluster mode, the commands go to the active controller (here or
// forwarded over the controller transport, KIP-590 style) and come back
// once committed and applied on the controller; this node's image follows
// a moment later.

func (n *Node) CreateTopics(ctx context.Context, reqs []metadata.CreateTopic, validateOnly bool) []error {
	if !n.clustered {
		return n.controller.CreateTopics(reqs, validateOnly)
	}
	var res []*wireErr
	if err := n.callController(ctx, opCreateTopics, createTopicsArgs{Reqs: reqs, ValidateOnly: validateOnly}, &res); err != nil {
		return fillErr(len(reqs), err)
	}
	return fromWireErrs(res)
}

func (n *Node) DeleteTopics(ctx context.Context, names []string) []error {
	if !n.clustered {
		return n.controller.DeleteTopics(names)
	}
	var res []*wireErr
	if err := n.callController(ctx, opDeleteTopics, names, &res); err != nil {
		return fillErr(len(names), err)
	}
	return fromWireErrs(res)
}

func (n *Node) CreatePartitions(ctx context.Context, reqs []metadata.CreatePartitions, validateOnly bool) []error {
	if !n.clustered {
		return n.controller.CreatePartitions(reqs, validateOnly)
	}
	var res []*wireErr
	if err := n.callController(ctx, opCreatePartitions, createPartitionsArgs{Reqs: reqs, ValidateOnly: validateOnly}, &res); err != nil {
		return fillErr(len(reqs), err)
	}
	return fromWireErrs(res)
}

// fillErr answers every item of a request with err.
func fillErr(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
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

func (n *Node) AlterTopicConfigs(ctx context.Context, topic string, ops []metadata.ConfigOp, validateOnly bool) error {
	if !n.clustered {
		return n.controller.AlterTopicConfigs(topic, ops, validateOnly)
	}
	return n.callController(ctx, opAlterConfigs, alterConfigsArgs{Topic: topic, Ops: ops, ValidateOnly: validateOnly}, nil)
}

// AllocateProducerID hands out a producer id. In cluster mode the node
// takes blocks of ids from the controller, so most calls are local.
func (n *Node) AllocateProducerID(ctx context.Context) (int64, error) {
	if !n.clustered {
		return n.controller.AllocateProducerID()
	}
	n.pidMu.Lock()
	defer n.pidMu.Unlock()
	if n.pidNext >= n.pidEnd {
		var blk producerIDsResult
		if err := n.callController(ctx, opProducerIDs, n.cfg.NodeID, &blk); err != nil {
			return 0, err
		}
		n.pidNext, n.pidEnd = blk.First, blk.First+blk.Count
	}
	id := n.pidNext
	n.pidNext++
	return id, nil
}

func (n *Node) Partition(topic string, partition int32) wire.Partition {
	p := n.host.Partition(topic, partition)
	if p == nil {
		// A typed nil would not compare equal to nil in the handlers.
		return nil
	}
	return p
}
