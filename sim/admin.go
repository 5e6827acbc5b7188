package sim

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/sim/sched"
)

// startAdmin runs administrative operations during the safety phase:
// preferred leader elections, partition reassignments and topic
// creations, through the ElectLeaders, AlterPartitionReassignments and
// CreateTopics handlers.
func (w *World) startAdmin(c *client) {
	var next func()
	next = func() {
		if w.adminStopped {
			return
		}
		w.s.After(sched.Second+w.s.Jitter(2*sched.Second), next)
		switch w.s.Rand().IntN(3) {
		case 0:
			req := kmsg.NewPtrElectLeadersRequest()
			req.Version = 1
			req.ElectionType = 0 // preferred
			req.TimeoutMillis = 5000
			t := kmsg.NewElectLeadersRequestTopic()
			t.Topic = topicName
			t.Partitions = []int32{w.s.Rand().Int32N(w.cfg.Partitions)}
			req.Topics = []kmsg.ElectLeadersRequestTopic{t}
			w.s.Tracef("admin elect leaders %v", t.Partitions)
			c.request(c.anyNode(), req, func(kmsg.Response, responder, error) {})
		case 2:
			w.extraTopics++
			req := kmsg.NewPtrCreateTopicsRequest()
			req.Version = 5
			req.TimeoutMillis = 5000
			t := kmsg.NewCreateTopicsRequestTopic()
			t.Topic = fmt.Sprintf("extra-%d", w.extraTopics)
			t.NumPartitions, t.ReplicationFactor = 1+w.s.Rand().Int32N(3), int16(min(3, len(w.nodes)))
			req.Topics = []kmsg.CreateTopicsRequestTopic{t}
			w.s.Tracef("admin create topic %s", t.Topic)
			c.request(c.anyNode(), req, func(kmsg.Response, responder, error) {})
		case 1:
			if len(w.nodes) < 4 {
				// With three nodes and RF 3 a reassignment can only
				// reorder the replicas, which moves the preferred leader.
				req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
				req.TimeoutMillis = 5000
				t := kmsg.NewAlterPartitionAssignmentsRequestTopic()
				t.Topic = topicName
				p := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
				p.Partition = w.s.Rand().Int32N(w.cfg.Partitions)
				perm := w.s.Rand().Perm(len(w.nodes))
				for _, i := range perm {
					p.Replicas = append(p.Replicas, int32(i+1))
				}
				t.Partitions = []kmsg.AlterPartitionAssignmentsRequestTopicPartition{p}
				req.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{t}
				w.s.Tracef("admin reassign %d to %v", p.Partition, p.Replicas)
				c.request(c.anyNode(), req, func(kmsg.Response, responder, error) {})
			}
		}
	}
	w.s.After(sched.Second, next)
}
