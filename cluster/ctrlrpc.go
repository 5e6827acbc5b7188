package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/troupe-io/troupe/cluster/transport"
	"github.com/troupe-io/troupe/metadata"
	"github.com/troupe-io/troupe/wire"
)

// The controller RPC: what brokers ask of the active controller (KRaft's
// BrokerRegistration, BrokerHeartbeat, AlterPartition, and the admin
// requests a broker forwards, KIP-590). Requests travel as JSON over the
// controller transport (transport.KindController); they are rare and
// small next to the data path, and readable payloads help debugging.
// Errors keep their Kafka error code across the hop.

// ctrlOp names a controller RPC.
type ctrlOp string

const (
	opRegister           ctrlOp = "register"
	opHeartbeat          ctrlOp = "heartbeat"
	opReportDead         ctrlOp = "reportDead"
	opAlterPartition     ctrlOp = "alterPartition"
	opCreateTopics       ctrlOp = "createTopics"
	opDeleteTopics       ctrlOp = "deleteTopics"
	opCreatePartitions   ctrlOp = "createPartitions"
	opAlterConfigs       ctrlOp = "alterConfigs"
	opProducerIDs        ctrlOp = "producerIds"
	opElectLeaders       ctrlOp = "electLeaders"
	opAlterReassignments ctrlOp = "alterReassignments"
	opListReassignments  ctrlOp = "listReassignments"
	opDescribeQuorum     ctrlOp = "describeQuorum"
)

type ctrlRequest struct {
	Op   ctrlOp          `json:"op"`
	Args json.RawMessage `json:"args,omitempty"`
}

type ctrlResponse struct {
	Err    *wireErr        `json:"err,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// wireErr is an error with its Kafka code, as it crosses the RPC.
type wireErr struct {
	Code int16  `json:"code"`
	Msg  string `json:"msg"`
}

func toWireErr(err error) *wireErr {
	if err == nil {
		return nil
	}
	code := kerr.UnknownServerError.Code
	var ke *kerr.Error
	if errors.As(err, &ke) {
		code = ke.Code
	}
	return &wireErr{Code: code, Msg: err.Error()}
}

func (e *wireErr) err() error {
	if e == nil {
		return nil
	}
	ke := kerr.ErrorForCode(e.Code)
	if ke == nil {
		ke = kerr.UnknownServerError
	}
	return &remoteErr{msg: e.Msg, kerr: ke}
}

// remoteErr keeps the controller's message and its Kafka error code.
type remoteErr struct {
	msg  string
	kerr error
}

func (e *remoteErr) Error() string { return e.msg }
func (e *remoteErr) Unwrap() error { return e.kerr }

func toWireErrs(errs []error) []*wireErr {
	out := make([]*wireErr, len(errs))
	for i, err := range errs {
		out[i] = toWireErr(err)
	}
	return out
}

func fromWireErrs(ws []*wireErr) []error {
	out := make([]error, len(ws))
	for i, w := range ws {
		out[i] = w.err()
	}
	return out
}

// RPC argument and result shapes.
type (
	heartbeatArgs struct {
		ID          int32                  `json:"id"`
		Incarnation metadata.IncarnationID `json:"incarnation"`
		Applied     int64                  `json:"applied"`
		WantFence   bool                   `json:"wantFence,omitempty"`
	}
	heartbeatResult struct {
		Fenced bool `json:"fenced"`
	}
	alterPartitionArgs struct {
		Topic          string  `json:"topic"`
		Partition      int32   `json:"partition"`
		Leader         int32   `json:"leader"`
		LeaderEpoch    int32   `json:"leaderEpoch"`
		PartitionEpoch int32   `json:"partitionEpoch"`
		ISR            []int32 `json:"isr"`
	}
	createTopicsArgs struct {
		Reqs         []metadata.CreateTopic `json:"reqs"`
		ValidateOnly bool                   `json:"validateOnly,omitempty"`
	}
	createPartitionsArgs struct {
		Reqs         []metadata.CreatePartitions `json:"reqs"`
		ValidateOnly bool                        `json:"validateOnly,omitempty"`
	}
	alterConfigsArgs struct {
		Topic        string              `json:"topic"`
		Ops          []metadata.ConfigOp `json:"ops"`
		ValidateOnly bool                `json:"validateOnly,omitempty"`
	}
	producerIDsResult struct {
		First int64 `json:"first"`
		Count int64 `json:"count"`
	}
	electLeadersArgs struct {
		Type  metadata.ElectionType     `json:"type"`
		Parts []metadata.TopicPartition `json:"parts"`
	}
	electionResult struct {
		Topic     string   `json:"topic"`
		Partition int32    `json:"partition"`
		Err       *wireErr `json:"err,omitempty"`
	}
)

// handleControllerRequest serves one controller RPC on this node. It is
// the transport's handler for KindController, and the local path when
// this node is itself the active controller.
func (n *Node) handleControllerRequest(from int32, payload []byte) ([]byte, error) {
	var req ctrlRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, fmt.Errorf("controller request from %d: %w", from, err)
	}
	result, err := n.serveControllerOp(req.Op, req.Args)
	resp := ctrlResponse{Err: toWireErr(err)}
	if err == nil && result != nil {
		b, merr := json.Marshal(result)
		if merr != nil {
			return nil, merr
		}
		resp.Result = b
	}
	return json.Marshal(resp)
}

func (n *Node) serveControllerOp(op ctrlOp, args json.RawMessage) (any, error) {
	c := n.controller
	if !c.Active() {
		return nil, fmt.Errorf("node %d is not the active controller: %w", n.cfg.NodeID, kerr.NotController)
	}
	nowMs := time.Now().UnixMilli()
	decode := func(v any) error {
		if err := json.Unmarshal(args, v); err != nil {
			return fmt.Errorf("controller request %s: %v: %w", op, err, kerr.InvalidRequest)
		}
		return nil
	}
	switch op {
	case opRegister:
		var a metadata.BrokerRegistration
		if err := decode(&a); err != nil {
			return nil, err
		}
		return c.RegisterBrokerIncarnation(a, nowMs)
	case opHeartbeat:
		var a heartbeatArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		fenced, err := c.BrokerHeartbeat(a.ID, a.Incarnation, a.Applied, a.WantFence, nowMs)
		return heartbeatResult{Fenced: fenced}, err
	case opReportDead:
		var id int32
		if err := decode(&id); err != nil {
			return nil, err
		}
		return nil, c.ReportDead(id, nowMs)
	case opAlterPartition:
		var a alterPartitionArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return c.AlterPartition(a.Topic, a.Partition, a.Leader, a.LeaderEpoch, a.PartitionEpoch, a.ISR)
	case opCreateTopics:
		var a createTopicsArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return toWireErrs(c.CreateTopics(a.Reqs, a.ValidateOnly)), nil
	case opDeleteTopics:
		var names []string
		if err := decode(&names); err != nil {
			return nil, err
		}
		return toWireErrs(c.DeleteTopics(names)), nil
	case opCreatePartitions:
		var a createPartitionsArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return toWireErrs(c.CreatePartitions(a.Reqs, a.ValidateOnly)), nil
	case opAlterConfigs:
		var a alterConfigsArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		return nil, c.AlterTopicConfigs(a.Topic, a.Ops, a.ValidateOnly)
	case opProducerIDs:
		var id int32
		if err := decode(&id); err != nil {
			return nil, err
		}
		first, count, err := c.AllocateProducerIDBlock(id)
		return producerIDsResult{First: first, Count: count}, err
	case opElectLeaders:
		var a electLeadersArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		res := c.ElectLeaders(a.Type, a.Parts)
		out := make([]electionResult, len(res))
		for i, r := range res {
			out[i] = electionResult{Topic: r.Topic, Partition: r.Partition, Err: toWireErr(r.Err)}
		}
		return out, nil
	case opAlterReassignments:
		var reqs []metadata.Reassignment
		if err := decode(&reqs); err != nil {
			return nil, err
		}
		return toWireErrs(c.AlterPartitionReassignments(reqs)), nil
	case opListReassignments:
		return c.ListPartitionReassignments(), nil
	case opDescribeQuorum:
		return n.localQuorumInfo(), nil
	}
	return nil, fmt.Errorf("unknown controller request %q: %w", op, kerr.InvalidRequest)
}

// callController runs op on the active controller — here if this node is
// it, else over the transport — retrying while the quorum has no leader
// or the leader changes, until ctx ends. result (a pointer) receives the
// answer.
func (n *Node) callController(ctx context.Context, op ctrlOp, args, result any) error {
	payload, err := json.Marshal(ctrlRequest{Op: op, Args: mustJSON(args)})
	if err != nil {
		return err
	}
	backoff := 20 * time.Millisecond
	attempt := 0
	for {
		var (
			respBytes []byte
			callErr   error
		)
		leader := n.controllerHint(attempt)
		attempt++
		switch {
		case leader < 0:
			callErr = fmt.Errorf("the metadata quorum has no leader: %w", kerr.NotController)
		case leader == n.cfg.NodeID:
			respBytes, callErr = n.localControllerCall(ctx, payload)
		default:
			respBytes, callErr = n.transport.Request(ctx, leader, transport.KindController, payload)
		}
		if callErr == nil {
			var resp ctrlResponse
			if err := json.Unmarshal(respBytes, &resp); err != nil {
				return fmt.Errorf("controller answer to %s: %v: %w", op, err, kerr.UnknownServerError)
			}
			if err := resp.Err.err(); err != nil {
				if !errors.Is(err, kerr.NotController) {
					return err
				}
				callErr = err // the leader just changed; retry
			} else {
				if result != nil && len(resp.Result) > 0 {
					if err := json.Unmarshal(resp.Result, result); err != nil {
						return fmt.Errorf("controller answer to %s: %v: %w", op, err, kerr.UnknownServerError)
					}
				}
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(callErr, kerr.NotController) {
				return fmt.Errorf("%s: no active controller answered: %w", op, kerr.NotController)
			}
			return fmt.Errorf("%s: %v: %w", op, callErr, kerr.RequestTimedOut)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 500*time.Millisecond)
	}
}

func mustJSON(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode controller request: %v", err)) // only our own static types reach here
	}
	return b
}

// localQuorumInfo is this node's view of the metadata quorum (complete on
// the leader).
func (n *Node) localQuorumInfo() wire.QuorumInfo {
	st := n.quorum.Status()
	info := wire.QuorumInfo{LeaderID: st.Leader, LeaderEpoch: int32(st.Term), HighWatermark: int64(st.Commit)}
	voters := map[int32]bool{}
	for _, v := range st.Voters {
		voters[v.ID] = true
		last := int64(-1)
		if !v.LastContact.IsZero() {
			last = v.LastContact.UnixMilli()
		}
		info.Voters = append(info.Voters, wire.QuorumReplica{ID: v.ID, LogEndOffset: int64(v.Match),
			LastFetchTimestamp: last, LastCaughtUpTimestamp: last})
	}
	for _, b := range n.controller.Image().Brokers {
		if !voters[b.ID] && !b.Fenced {
			info.Observers = append(info.Observers, wire.QuorumReplica{ID: b.ID, LogEndOffset: n.controller.Image().Offset,
				LastFetchTimestamp: -1, LastCaughtUpTimestamp: -1})
		}
	}
	return info
}

// controllerHint is the node to send controller requests to: the raft
// leader as this voter sees it; on a broker that does not vote, the
// controller the metadata names, else each voter in turn.
func (n *Node) controllerHint(attempt int) int32 {
	if n.quorum != nil {
		return n.quorum.Leader()
	}
	if id := n.controller.Image().ControllerID; id >= 0 && attempt%2 == 0 {
		return id
	}
	vs := n.cfg.ControllerQuorumVoters
	return vs[attempt%len(vs)].ID
}

// localControllerCall serves a controller request on this node, as the
// transport would for another, but returns when ctx ends: the controller
// itself takes no context, and a proposal to a quorum that lost its
// majority waits until the proposal times out or the node stops.
func (n *Node) localControllerCall(ctx context.Context, payload []byte) ([]byte, error) {
	type answer struct {
		b   []byte
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		b, err := n.handleControllerRequest(n.cfg.NodeID, payload)
		ch <- answer{b, err}
	}()
	select {
	case a := <-ch:
		return a.b, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
