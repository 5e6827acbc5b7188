package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newClusterCmd(s *streams) *cobra.Command {
	var cf clientFlags
	c := newGroupCmd("cluster", "Inspect the cluster's nodes",
		newClusterStatusCmd(s, &cf),
	)
	cf.register(c.PersistentFlags())
	return c
}

func newClusterStatusCmd(s *streams, cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "List the nodes with their roles, addresses and liveness, and the metadata quorum's state",
		Long: `List the nodes with their roles, addresses and liveness, and the metadata quorum's state.

ROLES: broker (serves clients and hosts replicas), controller (votes in the
metadata quorum). STATUS: alive, or fenced (registered but not serving,
e.g. down or still catching up). CONTROLLER: * marks the active
controller, the quorum's leader. The last line counts the voters whose
metadata log has reached the high watermark.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return withClient(c.Context(), cf, func(ctx context.Context, cl *kgo.Client, _ *kadm.Client) error {
				dc, err := describeClusterWithFenced(ctx, cl)
				if err != nil {
					return fmt.Errorf("cluster status: %w", err)
				}
				q, err := describeQuorum(ctx, cl)
				if err != nil {
					return fmt.Errorf("cluster status: describe quorum: %w", err)
				}
				writeClusterStatus(s.out, dc, q)
				return nil
			})
		},
	}
}

// describeClusterWithFenced lists the brokers, fenced ones included
// (DescribeCluster v2; older brokers list only the unfenced).
func describeClusterWithFenced(ctx context.Context, cl *kgo.Client) (*kmsg.DescribeClusterResponse, error) {
	req := kmsg.NewPtrDescribeClusterRequest()
	req.IncludeFencedBrokers = true
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, withBrokerMessage(err, derefString(resp.ErrorMessage))
	}
	return resp, nil
}

// clusterNode is one row of the status table.
type clusterNode struct {
	id         int32
	broker     bool // registered as a broker
	fenced     bool
	voter      bool
	addr       string // Kafka listener, or the controller listener of a node that is no broker
	controller bool
}

// writeClusterStatus prints the node table and the quorum summary line.
// Nodes are the brokers DescribeCluster lists and the quorum's voters
// and observers, by id. A voter that is no broker shows the listener
// DescribeQuorum v2 knows for it.
func writeClusterStatus(w io.Writer, dc *kmsg.DescribeClusterResponse, q quorum) {
	nodes := map[int32]*clusterNode{}
	node := func(id int32) *clusterNode {
		n := nodes[id]
		if n == nil {
			n = &clusterNode{id: id}
			nodes[id] = n
		}
		return n
	}
	for _, b := range dc.Brokers {
		n := node(b.NodeID)
		n.broker, n.fenced = true, b.IsFenced
		n.addr = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	for _, v := range q.CurrentVoters {
		node(v.ReplicaID).voter = true
	}
	for _, o := range q.Observers {
		node(o.ReplicaID)
	}
	for _, qn := range q.Nodes {
		n, ok := nodes[qn.NodeID]
		if !ok || n.addr != "" || len(qn.Listeners) == 0 {
			continue
		}
		l := qn.Listeners[0]
		n.addr = net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port)))
	}
	active := q.LeaderID
	if active < 0 {
		active = dc.ControllerID // no quorum leader known: what the brokers say
	}
	if n, ok := nodes[active]; ok {
		n.controller = true
	}

	ids := make([]int32, 0, len(nodes))
	for id := range nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	// The table goes through a buffer to drop the padding tabwriter
	// leaves before an empty last column.
	var table bytes.Buffer
	tw := newTable(&table)
	fmt.Fprintln(tw, "NODE\tROLES\tHOST:PORT\tSTATUS\tCONTROLLER")
	for _, id := range ids {
		n := nodes[id]
		var roles []string
		if n.broker || !n.voter {
			roles = append(roles, "broker") // observers are brokers
		}
		if n.voter {
			roles = append(roles, "controller")
		}
		status := "-" // a controller that is no broker: nothing says
		switch {
		case n.broker && n.fenced:
			status = "fenced"
		case n.broker:
			status = "alive"
		}
		mark := ""
		if n.controller {
			mark = "*"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", n.id, strings.Join(roles, ","), dash(n.addr), status, mark)
	}
	tw.Flush()
	for line := range strings.Lines(table.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}

	caughtUp := 0
	for _, v := range q.CurrentVoters {
		if v.LogEndOffset >= 0 && v.LogEndOffset >= q.HighWatermark {
			caughtUp++
		}
	}
	fmt.Fprintf(w, "controller: %d, quorum leader epoch %d, %d/%d voters caught up\n", active, q.LeaderEpoch, caughtUp, len(q.CurrentVoters))
}
