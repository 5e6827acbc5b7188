package wire

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/metadata"
)

func init() { register(3, 0, 13, handleMetadata) }

// handleMetadata describes the live brokers and the requested topics
// from the current metadata image.
//
// Topic selection by version: v0 lists every topic when the list is empty;
// v1+ lists every topic when it is null and none when it is empty. v10+
// entries carry a topic id, which may be used (instead of the name) from
// v12. A missing topic is UNKNOWN_TOPIC_OR_PARTITION unless auto-creation
// is allowed (always before v4, AllowAutoTopicCreation from v4) and
// enabled on the broker; topic creation is synchronous here, so an
// auto-created topic is answered with its partitions at once rather than
// Kafka's LEADER_NOT_AVAILABLE-until-ready.
func handleMetadata(s *Server, req *request) reply {
	kreq := req.kreq.(*kmsg.MetadataRequest)
	resp := kreq.ResponseKind().(*kmsg.MetadataResponse)
	v := req.version
	img := s.b.Image()

	for _, b := range img.Brokers {
		if b.Fenced {
			continue
		}
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port = b.ID, b.Host, b.Port
		if b.Rack != "" {
			mb.Rack = stringPtr(b.Rack)
		}
		resp.Brokers = append(resp.Brokers, mb)
	}
	resp.ClusterID = stringPtr(img.ClusterID)
	resp.ControllerID = s.controllerID(img)
	if v >= 8 && v <= 10 && kreq.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = clusterAuthorizedOps
	}
	withOps := v >= 8 && kreq.IncludeTopicAuthorizedOperations

	if kreq.Topics == nil || (v == 0 && len(kreq.Topics) == 0) {
		for _, name := range img.TopicNames() {
			resp.Topics = append(resp.Topics, metadataTopic(img, img.Topic(name), v, withOps))
		}
		return respond(resp)
	}

	// Before v12 a topic must be named; Kafka rejects the whole request
	// with INVALID_REQUEST on every topic otherwise.
	if v < 12 {
		for _, t := range kreq.Topics {
			if t.Topic == nil || t.TopicID != (metadata.TopicID{}) {
				for _, t := range kreq.Topics {
					mt := kmsg.NewMetadataResponseTopic()
					mt.Topic = stringPtr(derefOr(t.Topic, ""))
					mt.TopicID = t.TopicID
					mt.ErrorCode = kerr.InvalidRequest.Code
					resp.Topics = append(resp.Topics, mt)
				}
				return respond(resp)
			}
		}
	}

	autoCreate := (v < 4 || kreq.AllowAutoTopicCreation) && s.b.Limits().AutoCreateTopics
	var (
		seenNames = make(map[string]bool, len(kreq.Topics))
		seenIDs   map[metadata.TopicID]bool
		create    []metadata.CreateTopic
		createAt  []int // index in resp.Topics of each create
	)
	for _, t := range kreq.Topics {
		if t.TopicID != (metadata.TopicID{}) {
			// Looked up by id (v12+): never auto-created.
			if seenIDs[t.TopicID] {
				continue
			}
			if seenIDs == nil {
				seenIDs = map[metadata.TopicID]bool{}
			}
			seenIDs[t.TopicID] = true
			if topic := img.TopicByID(t.TopicID); topic != nil {
				resp.Topics = append(resp.Topics, metadataTopic(img, topic, v, withOps))
				continue
			}
			mt := kmsg.NewMetadataResponseTopic()
			mt.TopicID = t.TopicID
			mt.ErrorCode = kerr.UnknownTopicID.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		if t.Topic == nil { // neither name nor id
			mt := kmsg.NewMetadataResponseTopic()
			mt.ErrorCode = kerr.InvalidRequest.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		name := *t.Topic
		if seenNames[name] {
			continue // Kafka answers each topic once
		}
		seenNames[name] = true
		if topic := img.Topic(name); topic != nil {
			resp.Topics = append(resp.Topics, metadataTopic(img, topic, v, withOps))
			continue
		}
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic = stringPtr(name)
		switch {
		case metadata.ValidTopicName(name) != nil:
			mt.ErrorCode = kerr.InvalidTopicException.Code
		case autoCreate:
			create = append(create, metadata.CreateTopic{Name: name, NumPartitions: -1, ReplicationFactor: -1})
			createAt = append(createAt, len(resp.Topics))
		default:
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		}
		resp.Topics = append(resp.Topics, mt)
	}

	if len(create) > 0 {
		ctx, cancel := adminContext(req, 0)
		errs := s.b.CreateTopics(ctx, create, false)
		cancel()
		img = s.b.Image()
		for j, i := range createAt {
			err := errAt(errs, j)
			if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
				s.log.Debug("auto-creating topic failed", "topic", create[j].Name, "client_id", req.clientID, "err", err)
				resp.Topics[i].ErrorCode = errCode(err)
				continue
			}
			if topic := img.Topic(create[j].Name); topic != nil {
				resp.Topics[i] = metadataTopic(img, topic, v, withOps)
				continue
			}
			// Created, but not yet in this node's image: the client
			// retries on LEADER_NOT_AVAILABLE, as with Kafka.
			resp.Topics[i].ErrorCode = kerr.LeaderNotAvailable.Code
		}
	}
	return respond(resp)
}

// metadataTopic describes one existing topic.
func metadataTopic(img *metadata.Image, t *metadata.Topic, v int16, withOps bool) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = stringPtr(t.Name)
	mt.TopicID = t.ID
	mt.IsInternal = t.Internal
	if withOps {
		mt.AuthorizedOperations = topicAuthorizedOps
	}
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, len(t.Partitions))
	for _, p := range t.Partitions {
		mt.Partitions = append(mt.Partitions, metadataPartition(img, p, v))
	}
	return mt
}

// metadataPartition describes one partition. The replica lists alias the
// image, which is immutable, and are only read by the encoder.
func metadataPartition(img *metadata.Image, p metadata.Partition, v int16) kmsg.MetadataResponseTopicPartition {
	mp := kmsg.NewMetadataResponseTopicPartition()
	mp.Partition = p.Index
	mp.Leader = p.Leader
	mp.LeaderEpoch = p.LeaderEpoch
	mp.Replicas = p.Replicas
	mp.ISR = p.ISR
	if p.Leader < 0 || !liveBroker(img, p.Leader) {
		// No leader, or one clients cannot reach: they retry.
		mp.ErrorCode = kerr.LeaderNotAvailable.Code
		mp.Leader = -1
	}
	var offline []int32
	for _, r := range p.Replicas {
		if !liveBroker(img, r) {
			offline = append(offline, r)
		}
	}
	mp.OfflineReplicas = offline
	if v == 0 && len(offline) > 0 {
		// v0 lists only available replicas and flags the others, as
		// Kafka does.
		mp.Replicas = liveOnly(img, p.Replicas)
		mp.ISR = liveOnly(img, p.ISR)
		if mp.ErrorCode == 0 {
			mp.ErrorCode = kerr.ReplicaNotAvailable.Code
		}
	}
	return mp
}

func liveOnly(img *metadata.Image, ids []int32) []int32 {
	out := make([]int32, 0, len(ids))
	for _, id := range ids {
		if liveBroker(img, id) {
			out = append(out, id)
		}
	}
	return out
}

func derefOr(s *string, def string) string {
	if s == nil {
		return def
	}
	return *s
}

// describeTopicRef names a topic for messages: its name, or its id.
func describeTopicRef(name *string, id metadata.TopicID) string {
	if name != nil {
		return fmt.Sprintf("%q", *name)
	}
	return fmt.Sprintf("id %x", id[:])
}
