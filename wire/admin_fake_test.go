package wire

import (
	"context"
	"slices"

	"github.com/troupe-io/troupe/metadata"
)

// The cluster-administration Backend methods of the test fakes.
// fakeBackend runs elections and reassignments through its real
// metadata.Controller, so the handlers meet the node's validation;
// adminErrs fail a whole call, and DescribeQuorum answers the canned
// quorum. dpBackend does not administer anything.

// setAdminErr makes the admin method named method fail as a whole with
// err (nil: succeed again).
func (fb *fakeBackend) setAdminErr(method string, err error) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if fb.adminErrs == nil {
		fb.adminErrs = map[string]error{}
	}
	fb.adminErrs[method] = err
}

func (fb *fakeBackend) adminErr(method string) error {
	fb.count(method)
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return fb.adminErrs[method]
}

// setQuorum sets what DescribeQuorum answers.
func (fb *fakeBackend) setQuorum(q QuorumInfo) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	fb.quorum = q
}

func (fb *fakeBackend) ElectLeaders(ctx context.Context, typ metadata.ElectionType, parts []metadata.TopicPartition) ([]metadata.ElectionResult, error) {
	if err := fb.adminErr("ElectLeaders"); err != nil {
		return nil, err
	}
	return fb.ctrl.ElectLeaders(typ, parts), nil
}

func (fb *fakeBackend) AlterPartitionReassignments(ctx context.Context, reqs []metadata.Reassignment) ([]error, error) {
	if err := fb.adminErr("AlterPartitionReassignments"); err != nil {
		return nil, err
	}
	return fb.ctrl.AlterPartitionReassignments(reqs), nil
}

func (fb *fakeBackend) ListPartitionReassignments(ctx context.Context) ([]metadata.PartitionReassignment, error) {
	if err := fb.adminErr("ListPartitionReassignments"); err != nil {
		return nil, err
	}
	return fb.ctrl.ListPartitionReassignments(), nil
}

func (fb *fakeBackend) DescribeQuorum(ctx context.Context) (QuorumInfo, error) {
	if err := fb.adminErr("DescribeQuorum"); err != nil {
		return QuorumInfo{}, err
	}
	fb.mu.Lock()
	defer fb.mu.Unlock()
	q := fb.quorum
	q.Voters, q.Observers = slices.Clone(q.Voters), slices.Clone(q.Observers)
	return q, nil
}

func (b *dpBackend) ElectLeaders(context.Context, metadata.ElectionType, []metadata.TopicPartition) ([]metadata.ElectionResult, error) {
	return nil, errDPUnsupported
}

func (b *dpBackend) AlterPartitionReassignments(context.Context, []metadata.Reassignment) ([]error, error) {
	return nil, errDPUnsupported
}

func (b *dpBackend) ListPartitionReassignments(context.Context) ([]metadata.PartitionReassignment, error) {
	return nil, errDPUnsupported
}

func (b *dpBackend) DescribeQuorum(context.Context) (QuorumInfo, error) {
	return QuorumInfo{}, errDPUnsupported
}

// addBroker registers another broker exactly as given (fenced or not).
func (e *testEnv) addBroker(b metadata.BrokerRecord) {
	e.t.Helper()
	if err := e.fb.ctrl.RegisterBroker(b); err != nil {
		e.t.Fatalf("register broker %d: %v", b.ID, err)
	}
}

// createAssigned creates a topic with a manual replica assignment: each
// partition led by its first replica, with every replica in the ISR.
func (e *testEnv) createAssigned(name string, assignment ...[]int32) {
	e.t.Helper()
	errs := e.fb.CreateTopics(context.Background(), []metadata.CreateTopic{{Name: name, NumPartitions: -1, ReplicationFactor: -1, Assignment: assignment}}, false)
	if errs[0] != nil {
		e.t.Fatalf("create %s: %v", name, errs[0])
	}
}

// partition returns a partition of the fake's current image.
func (e *testEnv) partition(topic string, p int32) metadata.Partition {
	e.t.Helper()
	part, ok := e.fb.Image().Partition(topic, p)
	if !ok {
		e.t.Fatalf("no partition %s/%d", topic, p)
	}
	return *part
}
