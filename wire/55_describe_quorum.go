package wire

import (
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/metadata"
)

func init() { register(55, 0, 2, handleDescribeQuorum) }

// The metadata log's name and partition, as KRaft names its own.
const (
	quorumTopic     = "__cluster_metadata"
	quorumPartition = 0
)

// Listener names of DescribeQuorum v2's nodes.
const (
	listenerController = "CONTROLLER"
	listenerBroker     = "PLAINTEXT"
)

// handleDescribeQuorum describes the metadata quorum (KIP-595/KIP-836):
// the raft leader and term, the commit index as high watermark, and the
// voters and observers with how far their logs reach.
//
// Like Kafka, it answers only for partition 0 of __cluster_metadata, and
// anything else in the request is UNKNOWN_TOPIC_OR_PARTITION on every
// requested partition. A Backend failure is the top-level error (with
// its message from v2). v2 lists the nodes' listeners as far as the
// metadata image knows them: the controller listener of a node that has
// one, and the Kafka listener of a registered broker.
func handleDescribeQuorum(s *Server, req *request) reply {
	kreq := req.kreq.(*kmsg.DescribeQuorumRequest)
	resp := kreq.ResponseKind().(*kmsg.DescribeQuorumResponse)

	if !describesMetadataLog(kreq) {
		for _, t := range kreq.Topics {
			rt := kmsg.NewDescribeQuorumResponseTopic()
			rt.Topic = t.Topic
			rt.Partitions = make([]kmsg.DescribeQuorumResponseTopicPartition, 0, len(t.Partitions))
			for _, p := range t.Partitions {
				rp := kmsg.NewDescribeQuorumResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				rp.ErrorMessage = stringPtr(fmt.Sprintf("only partition %d of %s describes the quorum", quorumPartition, quorumTopic))
				rp.LeaderID, rp.LeaderEpoch, rp.HighWatermark = -1, -1, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return respond(resp)
	}

	ctx, cancel := adminContext(req, 0)
	q, err := s.b.DescribeQuorum(ctx)
	cancel()
	if err != nil {
		resp.ErrorCode = errCode(err)
		resp.ErrorMessage = errMessage(err)
		return respond(resp)
	}

	rp := kmsg.NewDescribeQuorumResponseTopicPartition()
	rp.Partition = quorumPartition
	rp.LeaderID, rp.LeaderEpoch, rp.HighWatermark = q.LeaderID, q.LeaderEpoch, q.HighWatermark
	rp.CurrentVoters = quorumReplicas(q.Voters)
	rp.Observers = quorumReplicas(q.Observers)
	rt := kmsg.NewDescribeQuorumResponseTopic()
	rt.Topic = quorumTopic
	rt.Partitions = []kmsg.DescribeQuorumResponseTopicPartition{rp}
	resp.Topics = []kmsg.DescribeQuorumResponseTopic{rt}

	if req.version >= 2 {
		img := s.b.Image()
		seen := make(map[int32]bool, len(q.Voters)+len(q.Observers))
		for _, group := range [][]QuorumReplica{q.Voters, q.Observers} {
			for _, r := range group {
				if seen[r.ID] {
					continue
				}
				seen[r.ID] = true
				if n, ok := quorumNode(img, r.ID); ok {
					resp.Nodes = append(resp.Nodes, n)
				}
			}
		}
	}
	return respond(resp)
}

// describesMetadataLog reports whether the request asks for exactly
// partition 0 of __cluster_metadata, the only form Kafka answers.
func describesMetadataLog(kreq *kmsg.DescribeQuorumRequest) bool {
	return len(kreq.Topics) == 1 && kreq.Topics[0].Topic == quorumTopic &&
		len(kreq.Topics[0].Partitions) == 1 && kreq.Topics[0].Partitions[0].Partition == quorumPartition
}

func quorumReplicas(rs []QuorumReplica) []kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
	out := make([]kmsg.DescribeQuorumResponseTopicPartitionReplicaState, 0, len(rs))
	for _, r := range rs {
		st := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		st.ReplicaID = r.ID
		st.LogEndOffset = r.LogEndOffset
		st.LastFetchTimestamp = r.LastFetchTimestamp
		st.LastCaughtUpTimestamp = r.LastCaughtUpTimestamp
		out = append(out, st)
	}
	return out
}

// quorumNode is node id's entry in DescribeQuorum v2's node list, when
// the image knows any of its listeners. Like Kafka, a node without a
// known listener is left out.
func quorumNode(img *metadata.Image, id int32) (kmsg.DescribeQuorumResponseNode, bool) {
	b, ok := img.Broker(id)
	if !ok {
		return kmsg.DescribeQuorumResponseNode{}, false
	}
	n := kmsg.NewDescribeQuorumResponseNode()
	n.NodeID = id
	if host, port, ok := splitListener(b.ControllerAddr); ok {
		l := kmsg.NewDescribeQuorumResponseNodeListener()
		l.Name, l.Host, l.Port = listenerController, host, port
		n.Listeners = append(n.Listeners, l)
	}
	if b.Host != "" && b.Port > 0 && b.Port <= 65535 {
		l := kmsg.NewDescribeQuorumResponseNodeListener()
		l.Name, l.Host, l.Port = listenerBroker, b.Host, uint16(b.Port)
		n.Listeners = append(n.Listeners, l)
	}
	return n, len(n.Listeners) > 0
}

// splitListener splits a host:port address; false when it is empty or
// not one.
func splitListener(addr string) (string, uint16, bool) {
	if addr == "" {
		return "", 0, false
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return "", 0, false
	}
	return host, uint16(port), true
}
