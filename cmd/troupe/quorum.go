package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The metadata log, the one partition DescribeQuorum describes.
const (
	metadataLogTopic     = "__cluster_metadata"
	metadataLogPartition = 0
)

func newMetadataQuorumCmd(s *streams) *cobra.Command {
	var cf clientFlags
	c := newGroupCmd("metadata-quorum", "Describe the metadata quorum (like kafka-metadata-quorum.sh)",
		newQuorumDescribeCmd(s, &cf),
	)
	cf.register(c.PersistentFlags())
	return c
}

func newQuorumDescribeCmd(s *streams, cf *clientFlags) *cobra.Command {
	var status, replication bool
	c := &cobra.Command{
		Use:   "describe (--status | --replication)",
		Short: "Show the quorum's leader and lag (--status) or every replica of the metadata log (--replication)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if status == replication {
				return errors.New("describe quorum: give exactly one of --status and --replication")
			}
			return withClient(c.Context(), cf, func(ctx context.Context, cl *kgo.Client, adm *kadm.Client) error {
				q, err := describeQuorum(ctx, cl)
				if err != nil {
					return fmt.Errorf("describe quorum: %w", err)
				}
				if replication {
					writeQuorumReplication(s.out, q)
					return nil
				}
				meta, err := adm.BrokerMetadata(ctx)
				if err != nil {
					return fmt.Errorf("describe quorum: cluster id: %w", err)
				}
				writeQuorumStatus(s.out, meta.Cluster, q)
				return nil
			})
		},
	}
	c.Flags().BoolVar(&status, "status", false, "the leader, its epoch, the high watermark, the largest follower lag, voters and observers")
	c.Flags().BoolVar(&replication, "replication", false, "a table of the metadata log's replicas: offsets, lag, fetch times, role")
	return c
}

// quorum is what DescribeQuorum answered for the metadata log.
type quorum struct {
	kmsg.DescribeQuorumResponseTopicPartition
	Nodes []kmsg.DescribeQuorumResponseNode // v2+
}

// describeQuorum asks for the metadata log's quorum and checks the
// answer's error codes at every level.
func describeQuorum(ctx context.Context, cl *kgo.Client) (quorum, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = metadataLogTopic
	rp := kmsg.NewDescribeQuorumRequestTopicPartition()
	rp.Partition = metadataLogPartition
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return quorum{}, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return quorum{}, withBrokerMessage(err, derefString(resp.ErrorMessage))
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if t.Topic != metadataLogTopic || p.Partition != metadataLogPartition {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return quorum{}, withBrokerMessage(err, derefString(p.ErrorMessage))
			}
			return quorum{p, resp.Nodes}, nil
		}
	}
	return quorum{}, fmt.Errorf("the answer does not describe partition %d of %s", metadataLogPartition, metadataLogTopic)
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type replicaState = kmsg.DescribeQuorumResponseTopicPartitionReplicaState

// leader returns the leader's replica state, if it is among the voters.
func (q quorum) leader() (replicaState, bool) {
	for _, v := range q.CurrentVoters {
		if v.ReplicaID == q.LeaderID {
			return v, true
		}
	}
	return replicaState{}, false
}

// writeQuorumStatus prints kafka-metadata-quorum.sh's --status. The
// largest follower lag is the leader's log end offset minus the smallest
// voter's; its time, the difference of their last caught-up times (0
// when the leader is that voter, -1 when a time is unknown).
func writeQuorumStatus(w io.Writer, clusterID string, q quorum) {
	maxLag, maxLagMs := int64(-1), int64(-1)
	if leader, ok := q.leader(); ok {
		laggard := leader
		for _, v := range q.CurrentVoters {
			if v.LogEndOffset < laggard.LogEndOffset {
				laggard = v
			}
		}
		maxLag = leader.LogEndOffset - laggard.LogEndOffset
		switch {
		case laggard.ReplicaID == leader.ReplicaID:
			maxLagMs = 0
		case leader.LastCaughtUpTimestamp >= 0 && laggard.LastCaughtUpTimestamp >= 0:
			maxLagMs = leader.LastCaughtUpTimestamp - laggard.LastCaughtUpTimestamp
		}
	}
	fmt.Fprintf(w, "ClusterId:              %s\n", clusterID)
	fmt.Fprintf(w, "LeaderId:               %d\n", q.LeaderID)
	fmt.Fprintf(w, "LeaderEpoch:            %d\n", q.LeaderEpoch)
	fmt.Fprintf(w, "HighWatermark:          %d\n", q.HighWatermark)
	fmt.Fprintf(w, "MaxFollowerLag:         %d\n", maxLag)
	fmt.Fprintf(w, "MaxFollowerLagTimeMs:   %d\n", maxLagMs)
	fmt.Fprintf(w, "CurrentVoters:          [%s]\n", replicaIDs(q.CurrentVoters))
	fmt.Fprintf(w, "CurrentObservers:       [%s]\n", replicaIDs(q.Observers))
}

func replicaIDs(rs []replicaState) string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = strconv.Itoa(int(r.ReplicaID))
	}
	return strings.Join(ids, ",")
}

// writeQuorumReplication prints kafka-metadata-quorum.sh's --replication:
// the leader, the other voters, then the observers, each with its lag
// behind the leader's log end offset.
func writeQuorumReplication(w io.Writer, q quorum) {
	leader, hasLeader := q.leader()
	tw := newTable(w)
	fmt.Fprintln(tw, "NodeId\tLogEndOffset\tLag\tLastFetchTimestamp\tLastCaughtUpTimestamp\tStatus")
	row := func(r replicaState, status string) {
		lag := "-1"
		if hasLeader && r.LogEndOffset >= 0 {
			lag = strconv.FormatInt(leader.LogEndOffset-r.LogEndOffset, 10)
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%d\t%s\n", r.ReplicaID, r.LogEndOffset, lag, r.LastFetchTimestamp, r.LastCaughtUpTimestamp, status)
	}
	if hasLeader {
		row(leader, "Leader")
	}
	for _, v := range q.CurrentVoters {
		if !hasLeader || v.ReplicaID != leader.ReplicaID {
			row(v, "Follower")
		}
	}
	for _, o := range q.Observers {
		row(o, "Observer")
	}
	tw.Flush()
}
