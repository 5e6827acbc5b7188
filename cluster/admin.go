package cluster

import (
	"context"

	"github.com/troupe-io/troupe/metadata"
	"github.com/troupe-io/troupe/wire"
)

// ElectLeaders implements wire.Backend.
func (n *Node) ElectLeaders(ctx context.Context, typ metadata.ElectionType, parts []metadata.TopicPartition) ([]metadata.ElectionResult, error) {
	if !n.clustered {
		return n.controller.ElectLeaders(typ, parts), nil
	}
	var res []electionResult
	if err := n.callController(ctx, opElectLeaders, electLeadersArgs{Type: typ, Parts: parts}, &res); err != nil {
		return nil, err
	}
	out := make([]metadata.ElectionResult, len(res))
	for i, r := range res {
		out[i] = metadata.ElectionResult{TopicPartition: metadata.TopicPartition{Topic: r.Topic, Partition: r.Partition}, Err: r.Err.err()}
	}
	return out, nil
}

// AlterPartitionReassignments implements wire.Backend.
func (n *Node) AlterPartitionReassignments(ctx context.Context, reqs []metadata.Reassignment) ([]error, error) {
	if !n.clustered {
		return n.controller.AlterPartitionReassignments(reqs), nil
	}
	var res []*wireErr
	if err := n.callController(ctx, opAlterReassignments, reqs, &res); err != nil {
		return nil, err
	}
	return fromWireErrs(res), nil
}

// ListPartitionReassignments implements wire.Backend.
func (n *Node) ListPartitionReassignments(ctx context.Context) ([]metadata.PartitionReassignment, error) {
	if !n.clustered {
		return n.controller.ListPartitionReassignments(), nil
	}
	var res []metadata.PartitionReassignment
	err := n.callController(ctx, opListReassignments, nil, &res)
	return res, err
}

// DescribeQuorum implements wire.Backend. A single node is its own
// one-voter quorum over its metadata journal; in cluster mode the quorum
// leader (the active controller) answers, since only it knows every
// voter's progress.
func (n *Node) DescribeQuorum(ctx context.Context) (wire.QuorumInfo, error) {
	if !n.clustered {
		img := n.controller.Image()
		return wire.QuorumInfo{
			LeaderID: n.cfg.NodeID, LeaderEpoch: 1, HighWatermark: img.Offset + 1,
			Voters: []wire.QuorumReplica{{ID: n.cfg.NodeID, LogEndOffset: img.Offset + 1, LastFetchTimestamp: -1, LastCaughtUpTimestamp: -1}},
		}, nil
	}
	var info wire.QuorumInfo
	err := n.callController(ctx, opDescribeQuorum, nil, &info)
	return info, err
}
