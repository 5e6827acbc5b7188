package cluster

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/actors"
	"github.com/troupe-io/troupe/actors/partition"
	"github.com/troupe-io/troupe/cluster/fetcher"
	"github.com/troupe-io/troupe/metadata"
	"github.com/troupe-io/troupe/partlog"
)

// Partition replication in cluster mode. Every partition this node is a
// replica of runs here, as its leader or as a follower, exactly as the
// metadata image says (Kafka's ReplicaManager on a KRaft broker):
//
//   - reconcileReplicas starts the replicas, hands each its role on every
//     change of leader epoch, ISR or replica set (actors.Partition.SetRole),
//     points the replica fetcher at each follower's leader, and deletes
//     the replicas the image no longer places here;
//   - a leader's ISR changes go to the active controller (AlterPartition,
//     alterISR), and the controller's answer goes back to the partition;
//   - nothing is started until the image has caught up with this node's
//     own registration (the controller unfenced it): until then the image
//     is a restored snapshot that may name this node leader of epochs
//     long gone;
//   - on shutdown the node asks to be fenced, so that the controller moves
//     its leaderships first, and then resigns what it still leads.

// alterISRTimeout bounds one AlterPartition call; past it the partition
// hears REQUEST_TIMED_OUT and proposes again.
const alterISRTimeout = 5 * time.Second

// controlledShutdownWait bounds how long a stopping node waits for the
// controller to move its leaderships away (and at most half of what is
// left of the shutdown's own deadline).
const controlledShutdownWait = 3 * time.Second

// startReplication readies the host and the replica fetcher (cluster
// mode), before the first reconcile.
func (n *Node) startReplication() {
	n.replCtx, n.replCancel = context.WithCancel(context.Background())
	n.replicas = map[partlog.LogID]actors.ReplicaRole{}
	n.host.EnableReplication(n.cfg.NodeID, n.alterISR)
	n.fetcher = fetcher.New(fetcher.Config{
		NodeID:            n.cfg.NodeID,
		Addr:              n.brokerAddr,
		MaxWait:           time.Duration(n.cfg.ReplicaFetchWaitMaxMs) * time.Millisecond,
		PartitionMaxBytes: n.cfg.ReplicaFetchMaxBytes,
		ResponseMaxBytes:  n.cfg.ReplicaFetchResponseMaxBytes,
		Logger:            n.logger.With("component", "fetcher"),
	})
}

// brokerAddr is a broker's Kafka listener as the image has it.
func (n *Node) brokerAddr(id int32) (string, bool) {
	b, ok := n.controller.Image().Broker(id)
	if !ok || b.Host == "" {
		return "", false
	}
	return net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))), true
}

// alterISR is the partitions' way to the controller (actors.AlterISRFunc).
// At most one change per partition is in flight (the core's rule), so
// these goroutines are bounded by the partitions led here.
func (n *Node) alterISR(id partlog.LogID, change partition.AlterISR, answer func(partition.AlterISRResult)) {
	n.replMu.Lock()
	if n.replStopped {
		// Shutting down: the change stays pending with the partition.
		n.replMu.Unlock()
		return
	}
	n.replWG.Add(1)
	n.replMu.Unlock()
	go func() {
		defer n.replWG.Done()
		ctx, cancel := context.WithTimeout(n.replCtx, alterISRTimeout)
		defer cancel()
		var p metadata.Partition
		err := n.callController(ctx, opAlterPartition, alterPartitionArgs{
			Topic: id.Topic, Partition: id.Partition, Leader: n.cfg.NodeID,
			LeaderEpoch: change.LeaderEpoch, PartitionEpoch: change.PartitionEpoch, ISR: change.ISR,
		}, &p)
		res := partition.AlterISRResult{Seq: change.Seq}
		if err != nil {
			res.ErrorCode = kafkaCode(err)
			n.logger.Debug("ISR change refused", "topic", id.Topic, "partition", id.Partition, "isr", change.ISR, "err", err)
		} else {
			res.LeaderEpoch, res.PartitionEpoch, res.ISR = p.LeaderEpoch, p.PartitionEpoch, p.ISR
			n.logger.Info("ISR changed", "topic", id.Topic, "partition", id.Partition, "isr", p.ISR,
				"leader_epoch", p.LeaderEpoch, "partition_epoch", p.PartitionEpoch)
		}
		answer(res)
	}()
}

// kafkaCode is the Kafka error code err wraps; a lost call (the context
// ended) is REQUEST_TIMED_OUT, anything else UNKNOWN_SERVER_ERROR.
func kafkaCode(err error) int16 {
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return ke.Code
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return kerr.RequestTimedOut.Code
	}
	return kerr.UnknownServerError.Code
}

// metadataCaughtUp reports whether img has caught up with this node's
// registration: it shows this very process registered and unfenced, which
// the controller allows only once the node applied the metadata up to its
// registration. From then on images are current, and stay so.
func (n *Node) metadataCaughtUp(img *metadata.Image) bool {
	if n.caughtUp {
		return true
	}
	b, ok := img.Broker(n.cfg.NodeID)
	if !ok || b.Incarnation != n.incarnation || b.Fenced {
		return false
	}
	n.caughtUp = true
	n.logger.Info("metadata caught up; starting the partition replicas", "metadata_offset", img.Offset)
	// Logs of topics deleted, or replicas moved away, while this node was
	// down: only now does the image tell.
	n.removeStrayLogs(img)
	return true
}

// reconcileReplicas makes the running replicas match img (cluster mode;
// n.mu is held). prev is the image last reconciled, or nil: topics it
// shares with img (images are copy-on-write, so the same pointer) have
// nothing new and are skipped, which keeps this O(changed topics).
func (n *Node) reconcileReplicas(img, prev *metadata.Image) error {
	var errs []error
	self := n.cfg.NodeID
	// A topic deleted, or deleted and re-created under its name: its
	// replicas go with their data.
	for name, tid := range n.topicIDs {
		if t := img.Topic(name); t == nil || t.ID != tid {
			for id := range n.replicas {
				if id.Topic == name {
					errs = append(errs, n.dropReplica(id))
				}
			}
			delete(n.topicIDs, name)
			n.logger.Info("topic deleted", "topic", name)
		}
	}
	unchanged := func(name string) bool { return prev != nil && prev.Topic(name) == img.Topic(name) }
	here := map[partlog.LogID]bool{}
	for _, name := range img.TopicNames() {
		if unchanged(name) {
			continue
		}
		t := img.Topic(name)
		pc := n.partitionConfig(t)
		for i := range t.Partitions {
			mp := &t.Partitions[i]
			if !slices.Contains(mp.Replicas, self) {
				continue
			}
			id := partlog.LogID{Topic: name, Partition: mp.Index}
			here[id] = true
			if err := n.applyReplica(id, mp, pc); err != nil {
				errs = append(errs, err)
			}
		}
		n.topicIDs[name] = t.ID
	}
	for id := range n.replicas {
		if !here[id] && !unchanged(id.Topic) && img.Topic(id.Topic) != nil {
			// Reassigned away: the new replicas have the data.
			n.logger.Info("replica moved away; deleting it", "topic", id.Topic, "partition", id.Partition)
			errs = append(errs, n.dropReplica(id))
		}
	}
	return errors.Join(errs...)
}

// applyReplica starts a replica, or gives a running one its new state,
// and points the fetcher at its leader.
func (n *Node) applyReplica(id partlog.LogID, mp *metadata.Partition, pc actors.PartitionConfig) error {
	self := n.cfg.NodeID
	role := actors.ReplicaRole{Leader: mp.Leader, LeaderEpoch: mp.LeaderEpoch, PartitionEpoch: mp.PartitionEpoch,
		Replicas: slices.Clone(mp.Replicas), ISR: slices.Clone(mp.ISR)}
	prev, running := n.replicas[id]
	if running && sameRole(prev, role) {
		// Nothing new for this partition; its topic's configs may be.
		if p := n.host.Partition(id.Topic, id.Partition); p != nil {
			p.Reconfigure(pc)
		}
		return nil
	}
	if err := n.host.StartReplica(id, pc, role); err != nil {
		return err
	}
	n.replicas[id] = role
	switch {
	case mp.Leader == self || mp.Leader < 0:
		n.fetcher.Unfollow(id)
	case !running || prev.Leader != mp.Leader || prev.LeaderEpoch != mp.LeaderEpoch:
		// After SetRole (just sent): the fetcher asks the partition
		// where to start, which the actor answers in order, as a
		// follower of this leader.
		n.fetcher.Follow(id, mp.Leader, n.host.Partition(id.Topic, id.Partition))
	}
	return nil
}

// dropReplica stops a replica and deletes its data.
func (n *Node) dropReplica(id partlog.LogID) error {
	n.fetcher.Unfollow(id)
	delete(n.replicas, id)
	return n.host.Delete(id)
}

// sameRole reports whether two image states of a partition are equal.
func sameRole(a, b actors.ReplicaRole) bool {
	return a.Leader == b.Leader && a.LeaderEpoch == b.LeaderEpoch && a.PartitionEpoch == b.PartitionEpoch &&
		slices.Equal(a.Replicas, b.Replicas) && slices.Equal(a.ISR, b.ISR)
}

// stopReplication runs first in a cluster node's shutdown, while the
// metadata quorum still runs: a controlled shutdown (the node asks to be
// fenced, so the controller elects other leaders from the ISR and the
// producers move there), then the fetcher stops and the partitions still
// led here resign, answering what waits for the ISR at once rather than
// at its timeout.
func (n *Node) stopReplication(ctx context.Context) {
	if n.fetcher == nil {
		return
	}
	n.mu.Lock()
	caughtUp := n.caughtUp
	n.mu.Unlock()
	if caughtUp {
		n.controlledShutdown(ctx)
	}
	n.fetcher.Close()
	n.host.Resign()
	n.replMu.Lock()
	n.replStopped = true
	n.replMu.Unlock()
	n.replCancel()
	n.replWG.Wait()
}

// controlledShutdown asks the controller to fence this node and waits,
// bounded, until the image shows it fenced (the same batch moves its
// leaderships).
func (n *Node) controlledShutdown(ctx context.Context) {
	img := n.controller.Image()
	others := false
	for _, b := range img.Brokers {
		others = others || b.ID != n.cfg.NodeID && !b.Fenced
	}
	if !others {
		return // nobody to hand leaderships to, and likely no quorum either
	}
	wait := controlledShutdownWait
	if deadline, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(deadline)/2)
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var res heartbeatResult
	err := n.callController(ctx, opHeartbeat, heartbeatArgs{ID: n.cfg.NodeID, Incarnation: n.incarnation,
		Applied: n.controller.Image().Offset, WantFence: true}, &res)
	if err != nil {
		n.logger.Warn("controlled shutdown: the controller did not fence this node; its leaderships move when its session expires", "err", err)
		return
	}
	for {
		if b, ok := n.controller.Image().Broker(n.cfg.NodeID); !ok || b.Fenced {
			n.logger.Info("controlled shutdown: fenced; leaderships moved")
			return
		}
		select {
		case <-ctx.Done():
			n.logger.Warn("controlled shutdown: the fence did not reach this node in time")
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}
