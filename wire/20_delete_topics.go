package wire

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/metadata"
)

func init() { register(20, 0, 6, handleDeleteTopics) }

// handleDeleteTopics deletes topics by name (v0–v5) or by name or id
// (v6). With delete.topic.enable=false every topic fails with
// TOPIC_DELETION_DISABLED, or INVALID_REQUEST before v3, which did not
// know that code — as Kafka answers.
func handleDeleteTopics(s *Server, req *request) reply {
	kreq := req.kreq.(*kmsg.DeleteTopicsRequest)
	resp := kreq.ResponseKind().(*kmsg.DeleteTopicsResponse)
	img := s.b.Image()

	// One entry per requested topic, in request order.
	type entry struct {
		name *string          // as given (v6 may give only an id)
		id   metadata.TopicID // as given, or resolved from the name
		err  error
	}
	var entries []entry
	if req.version < 6 {
		entries = make([]entry, len(kreq.TopicNames))
		for i := range kreq.TopicNames {
			entries[i].name = &kreq.TopicNames[i]
		}
	} else {
		entries = make([]entry, len(kreq.Topics))
		for i, t := range kreq.Topics {
			entries[i].name, entries[i].id = t.Topic, t.TopicID
		}
	}

	var disabled error
	if !s.b.Limits().DeleteTopicEnable {
		code := kerr.TopicDeletionDisabled
		if req.version < 3 {
			code = kerr.InvalidRequest
		}
		disabled = fmt.Errorf("topic deletion is disabled (delete.topic.enable=false): %w", code)
	}

	names := make(map[string]int, len(entries))
	ids := make(map[metadata.TopicID]int, len(entries))
	for i := range entries {
		e := &entries[i]
		hasID := e.id != (metadata.TopicID{})
		switch {
		case disabled != nil:
			e.err = disabled
		case e.name != nil && hasID:
			e.err = fmt.Errorf("topic %q is given by both name and id; give one: %w", *e.name, kerr.InvalidRequest)
		case e.name == nil && !hasID:
			e.err = fmt.Errorf("topic given by neither name nor id: %w", kerr.InvalidRequest)
		case hasID:
			if t := img.TopicByID(e.id); t != nil {
				e.name = stringPtr(t.Name)
			} else {
				e.err = fmt.Errorf("no topic with id %x: %w", e.id[:], kerr.UnknownTopicID)
			}
			ids[e.id]++
		default:
			if t := img.Topic(*e.name); t != nil {
				e.id = t.ID
			}
		}
		if e.err == nil && e.name != nil {
			names[*e.name]++
		}
	}

	var (
		toDelete []string
		at       []int
	)
	for i := range entries {
		e := &entries[i]
		if e.err == nil && (names[*e.name] > 1 || (e.id != (metadata.TopicID{}) && ids[e.id] > 1)) {
			e.err = fmt.Errorf("topic %s appears more than once in the request: %w", describeTopicRef(e.name, e.id), kerr.InvalidRequest)
		}
		if e.err == nil {
			toDelete = append(toDelete, *e.name)
			at = append(at, i)
		}
	}
	if len(toDelete) > 0 {
		ctx, cancel := adminContext(req, kreq.TimeoutMillis)
		errs := s.b.DeleteTopics(ctx, toDelete)
		cancel()
		for j, i := range at {
			entries[i].err = errAt(errs, j)
		}
	}

	resp.Topics = make([]kmsg.DeleteTopicsResponseTopic, len(entries))
	for i, e := range entries {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic = e.name
		if req.version < 6 && rt.Topic == nil {
			rt.Topic = stringPtr("")
		}
		rt.TopicID = e.id
		rt.ErrorCode = errCode(e.err)
		rt.ErrorMessage = errMessage(e.err)
		resp.Topics[i] = rt
	}
	return respond(resp)
}
