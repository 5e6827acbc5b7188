package cluster

// cutOff isolates the node from the other nodes without stopping its
// process, as a network partition would (fault-injection tests): the
// controller transport drops everything both ways, gossip stops (the
// others declare the node dead), its replica fetcher pauses and other
// brokers' fetches from it fail. Kafka clients still reach it. cutOff(false)
// reconnects it: gossip starts again under the same incarnation, and the
// node's heartbeats, fetches and raft traffic resume.
func (n *Node) cutOff(cut bool) error {
	n.transport.SetBlocked(cut)
	n.server.BlockReplicaTraffic(cut)
	if n.fetcher != nil {
		n.fetcher.Pause(cut)
	}
	if n.members == nil {
		return nil
	}
	if cut {
		n.members.Halt()
		<-n.membersDone
		return nil
	}
	n.membersDone = make(chan struct{})
	return n.startMembership(n.loopCtx)
}
