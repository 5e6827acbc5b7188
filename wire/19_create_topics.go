package wire

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/metadata"
)

func init() { register(19, 0, 7, handleCreateTopics) }

// handleCreateTopics creates (or, with ValidateOnly, checks) topics. The
// request is checked here for what Kafka rejects before its controller
// sees it — duplicate names, bad names, partition counts or replication
// factors given together with a manual assignment, assignments with gaps,
// null config values — and the rest goes to the Backend in one call. From
// v5 a successful topic is answered with its partition count, replication
// factor and effective configs (v7: its id).
func handleCreateTopics(s *Server, req *request) reply {
	kreq := req.kreq.(*kmsg.CreateTopicsRequest)
	resp := kreq.ResponseKind().(*kmsg.CreateTopicsResponse)

	counts := make(map[string]int, len(kreq.Topics))
	for _, t := range kreq.Topics {
		counts[t.Topic]++
	}
	resp.Topics = make([]kmsg.CreateTopicsResponseTopic, len(kreq.Topics))
	var (
		creates []metadata.CreateTopic
		at      []int // index in resp.Topics of each create
	)
	for i, t := range kreq.Topics {
		rt := &resp.Topics[i]
		*rt = kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = t.Topic
		var (
			ct  metadata.CreateTopic
			err error
		)
		if counts[t.Topic] > 1 {
			err = fmt.Errorf("topic %q appears more than once in the request: %w", t.Topic, kerr.InvalidRequest)
		} else {
			ct, err = createTopicFromRequest(t)
		}
		if err != nil {
			setCreateTopicError(rt, err)
			continue
		}
		creates = append(creates, ct)
		at = append(at, i)
	}
	if len(creates) == 0 {
		return respond(resp)
	}

	ctx, cancel := adminContext(req, kreq.TimeoutMillis)
	errs := s.b.CreateTopics(ctx, creates, kreq.ValidateOnly)
	cancel()

	var (
		img       *metadata.Image
		brokerCfg []metadata.ConfigValue
	)
	for j, i := range at {
		rt := &resp.Topics[i]
		if err := errAt(errs, j); err != nil {
			setCreateTopicError(rt, err)
			continue
		}
		if req.version < 5 {
			continue
		}
		// v5+: describe the topic as created (or as it would be).
		if img == nil {
			img = s.b.Image()
			brokerCfg = s.b.BrokerConfigs()
		}
		ct := creates[j]
		if t := img.Topic(ct.Name); t != nil && !kreq.ValidateOnly {
			rt.TopicID = t.ID
			rt.NumPartitions = int32(len(t.Partitions))
			rt.ReplicationFactor = -1
			if len(t.Partitions) > 0 {
				rt.ReplicationFactor = int16(len(t.Partitions[0].Replicas))
			}
			cfgs, err := s.b.TopicConfigs(ct.Name)
			if err != nil {
				rt.ConfigErrorCode = errCode(err)
				continue
			}
			rt.Configs = createTopicConfigs(cfgs)
			continue
		}
		// Validate-only (or not yet in this node's image): what the
		// topic would get, from the request and the broker's defaults.
		rt.NumPartitions, rt.ReplicationFactor = ct.NumPartitions, ct.ReplicationFactor
		if len(ct.Assignment) > 0 {
			rt.NumPartitions, rt.ReplicationFactor = int32(len(ct.Assignment)), int16(len(ct.Assignment[0]))
		}
		if rt.NumPartitions == -1 {
			rt.NumPartitions = int32(brokerConfigInt(brokerCfg, "num.partitions", -1))
		}
		if rt.ReplicationFactor == -1 {
			rt.ReplicationFactor = int16(brokerConfigInt(brokerCfg, "default.replication.factor", -1))
		}
		overrides := make(map[string]string, len(ct.Configs))
		for k, v := range ct.Configs {
			overrides[k] = *v // non-nil: checked by createTopicFromRequest
		}
		rt.Configs = createTopicConfigs(metadata.EffectiveTopicConfigs(&metadata.Topic{Configs: overrides}, staticBrokerConfig(brokerCfg)))
	}
	return respond(resp)
}

// createTopicFromRequest checks one requested topic and converts it.
func createTopicFromRequest(t kmsg.CreateTopicsRequestTopic) (metadata.CreateTopic, error) {
	ct := metadata.CreateTopic{Name: t.Topic, NumPartitions: t.NumPartitions, ReplicationFactor: t.ReplicationFactor}
	if err := metadata.ValidTopicName(t.Topic); err != nil {
		return ct, err
	}
	if len(t.ReplicaAssignment) > 0 {
		if t.NumPartitions != -1 || t.ReplicationFactor != -1 {
			return ct, fmt.Errorf("both a partition count or replication factor and a replica assignment were given; use either: %w", kerr.InvalidRequest)
		}
		ct.Assignment = make([][]int32, len(t.ReplicaAssignment))
		for _, a := range t.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= len(t.ReplicaAssignment) || ct.Assignment[a.Partition] != nil {
				return ct, fmt.Errorf("replica assignment partitions must be 0 to %d, each once; got partition %d: %w",
					len(t.ReplicaAssignment)-1, a.Partition, kerr.InvalidReplicaAssignment)
			}
			if len(a.Replicas) == 0 {
				return ct, fmt.Errorf("replica assignment of partition %d is empty: %w", a.Partition, kerr.InvalidReplicaAssignment)
			}
			ct.Assignment[a.Partition] = slices.Clone(a.Replicas)
		}
	} else {
		if t.NumPartitions == 0 || t.NumPartitions < -1 {
			return ct, fmt.Errorf("number of partitions must be larger than 0, or -1 for the broker default; got %d: %w", t.NumPartitions, kerr.InvalidPartitions)
		}
		if t.ReplicationFactor == 0 || t.ReplicationFactor < -1 {
			return ct, fmt.Errorf("replication factor must be larger than 0, or -1 for the broker default; got %d: %w", t.ReplicationFactor, kerr.InvalidReplicationFactor)
		}
	}
	if len(t.Configs) > 0 {
		ct.Configs = make(map[string]*string, len(t.Configs))
		for _, c := range t.Configs {
			if c.Value == nil {
				return ct, fmt.Errorf("null value for topic config %q is not supported: %w", c.Name, kerr.InvalidConfig)
			}
			if _, dup := ct.Configs[c.Name]; dup {
				return ct, fmt.Errorf("topic config %q is given more than once: %w", c.Name, kerr.InvalidConfig)
			}
			ct.Configs[c.Name] = c.Value
		}
	}
	return ct, nil
}

func setCreateTopicError(rt *kmsg.CreateTopicsResponseTopic, err error) {
	rt.ErrorCode = errCode(err)
	rt.ErrorMessage = errMessage(err)
}

// createTopicConfigs converts effective configs for the v5+ response.
func createTopicConfigs(cfgs []metadata.ConfigValue) []kmsg.CreateTopicsResponseTopicConfig {
	out := make([]kmsg.CreateTopicsResponseTopicConfig, 0, len(cfgs))
	for _, c := range cfgs {
		rc := kmsg.NewCreateTopicsResponseTopicConfig()
		rc.Name = c.Name
		if !c.Sensitive {
			rc.Value = stringPtr(c.Value)
		}
		rc.ReadOnly = c.ReadOnly
		rc.Source = int8(c.Source)
		rc.IsSensitive = c.Sensitive
		out = append(out, rc)
	}
	return out
}

// brokerConfigInt is the integer value of a broker config, or def when it
// is absent or not an integer.
func brokerConfigInt(cfgs []metadata.ConfigValue, name string, def int64) int64 {
	for _, c := range cfgs {
		if c.Name == name {
			if n, err := strconv.ParseInt(c.Value, 10, 64); err == nil {
				return n
			}
			break
		}
	}
	return def
}
