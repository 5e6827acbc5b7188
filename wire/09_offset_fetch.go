package wire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors/group"
	"github.com/troupe-io/troupe/metadata"
)

// OffsetFetch v0-v10: a group's committed offsets, of some partitions or
// (v2+, topics null) of all. The group's coordinator actor answers one
// group in the v8+ per-group shape (a kmsg.OffsetFetchResponseGroup);
// this handler adapts the versions around it:
//
//   - v0-v7 ask for one group. Its answer is folded into the old shape:
//     v2+ carry a group-level error code; v0-v1 have none, so a group
//     error goes into every requested partition (offset -1, metadata ""),
//     as Kafka answers them. v7 adds RequireStable.
//   - v8+ ask for many groups: one actor request per group, all at once,
//     assembled in request order; a group coordinated elsewhere gets its
//     error in its own entry. v9 adds the KIP-848 member id and epoch,
//     which the actor checks.
//   - v10 names topics by id. Ids are resolved to names from the
//     metadata image before the actor sees them (it works by name); an
//     unknown id is answered UNKNOWN_TOPIC_ID in its partitions without
//     asking. Answers get their ids back from the image; when all topics
//     were asked for, a committed topic that no longer exists (and so has
//     no id) is left out, since a v10 client could not name it.
func init() { register(9, 0, 10, handleOffsetFetch) }

func handleOffsetFetch(s *Server, req *request) reply {
	kreq, ok := req.kreq.(*kmsg.OffsetFetchRequest)
	if !ok {
		return reply{closeConn: true}
	}
	if req.version < 8 {
		return s.offsetFetchOneGroup(req, kreq)
	}
	return s.offsetFetchGroups(req, kreq)
}

// offsetFetchOneGroup answers v0-v7.
func (s *Server) offsetFetchOneGroup(req *request, kreq *kmsg.OffsetFetchRequest) reply {
	v := req.version
	fo := &group.FetchOffsets{Version: v, RequireStable: v >= 7 && kreq.RequireStable, MemberEpoch: -1}
	// Before v2 the topic list cannot be null: empty means none.
	if kreq.Topics != nil || v < 2 {
		fo.Topics = make([]kmsg.OffsetFetchRequestGroupTopic, len(kreq.Topics))
		for i, t := range kreq.Topics {
			fo.Topics[i] = kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions}
		}
	}
	g, err := s.b.Group(kreq.Group)
	if err != nil {
		return respond(offsetFetchError(kreq, errCode(err)))
	}
	ch := make(chan group.Reply, 1)
	g.Send(groupRequest(req, 0, fo, ch))
	return reply{await: func() reply {
		r, code := s.awaitGroup(req, ch, waitBounded)
		if code != 0 {
			return respond(offsetFetchError(kreq, code))
		}
		gr, ok := r.Resp.(*kmsg.OffsetFetchResponseGroup)
		if !ok || gr == nil {
			s.log.Error("group coordinator answered with the wrong type", "api", "OffsetFetch", "got", typeName(r.Resp))
			return respond(offsetFetchError(kreq, kerr.UnknownServerError.Code))
		}
		if gr.ErrorCode != 0 {
			return respond(offsetFetchError(kreq, gr.ErrorCode))
		}
		resp := kreq.ResponseKind().(*kmsg.OffsetFetchResponse)
		resp.Topics = make([]kmsg.OffsetFetchResponseTopic, len(gr.Topics))
		for i := range gr.Topics {
			gt := &gr.Topics[i]
			st := &resp.Topics[i]
			st.Default()
			st.Topic = gt.Topic
			st.Partitions = make([]kmsg.OffsetFetchResponseTopicPartition, len(gt.Partitions))
			for j := range gt.Partitions {
				gp := &gt.Partitions[j]
				st.Partitions[j] = kmsg.OffsetFetchResponseTopicPartition{
					Partition:   gp.Partition,
					Offset:      gp.Offset,
					LeaderEpoch: gp.LeaderEpoch,
					Metadata:    gp.Metadata,
					ErrorCode:   gp.ErrorCode,
				}
			}
		}
		return respond(resp)
	}}
}

// offsetFetchError is a v0-v7 answer that failed as a whole with code.
func offsetFetchError(kreq *kmsg.OffsetFetchRequest, code int16) *kmsg.OffsetFetchResponse {
	resp := kreq.ResponseKind().(*kmsg.OffsetFetchResponse)
	if kreq.Version >= 2 {
		resp.ErrorCode = code
		return resp
	}
	// No group-level error before v2: each requested partition says it.
	resp.Topics = make([]kmsg.OffsetFetchResponseTopic, len(kreq.Topics))
	for i := range kreq.Topics {
		rt := &kreq.Topics[i]
		st := &resp.Topics[i]
		st.Default()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetFetchResponseTopicPartition, len(rt.Partitions))
		for j, p := range rt.Partitions {
			sp := &st.Partitions[j]
			sp.Default()
			sp.Partition, sp.Offset, sp.Metadata, sp.ErrorCode = p, -1, stringPtr(""), code
		}
	}
	return resp
}

// offsetFetchGroups answers v8+.
func (s *Server) offsetFetchGroups(req *request, kreq *kmsg.OffsetFetchRequest) reply {
	v := req.version
	resp := kreq.ResponseKind().(*kmsg.OffsetFetchResponse)
	n := len(kreq.Groups)
	resp.Groups = make([]kmsg.OffsetFetchResponseGroup, n)
	ids := make([]string, n)
	for i := range kreq.Groups {
		ids[i] = kreq.Groups[i].Group
		resp.Groups[i].Default()
		resp.Groups[i].Group = ids[i]
	}
	fail := func(i int, code int16) {
		g := &resp.Groups[i]
		g.Default()
		g.Group, g.ErrorCode = ids[i], code
	}
	// unknownIDs[i] are group i's topics whose ids are not in the image
	// (v10), answered here; set while sending, read once all answered.
	var unknownIDs [][]kmsg.OffsetFetchResponseGroupTopic
	img := s.b.Image()
	f := s.fanOutGroups(req, ids, func(i int) any {
		rg := &kreq.Groups[i]
		fo := &group.FetchOffsets{Version: v, Topics: rg.Topics, RequireStable: kreq.RequireStable, MemberEpoch: -1}
		if v >= 9 {
			fo.MemberID, fo.MemberEpoch = rg.MemberID, rg.MemberEpoch
		}
		if v >= 10 && rg.Topics != nil {
			var unknown []kmsg.OffsetFetchResponseGroupTopic
			fo.Topics, unknown = resolveOffsetFetchTopicIDs(img, rg.Topics)
			if unknown != nil {
				if unknownIDs == nil {
					unknownIDs = make([][]kmsg.OffsetFetchResponseGroupTopic, n)
				}
				unknownIDs[i] = unknown
			}
		}
		return fo
	}, func(i int, err error) { fail(i, errCode(err)) })
	if f.sent == 0 {
		return respond(resp)
	}
	return reply{await: func() reply {
		var img *metadata.Image
		f.collect(s, req, func(i int, r any) {
			gr, ok := r.(*kmsg.OffsetFetchResponseGroup)
			if !ok || gr == nil {
				s.log.Error("group coordinator answered with the wrong type", "api", "OffsetFetch", "got", typeName(r))
				fail(i, kerr.UnknownServerError.Code)
				return
			}
			out := &resp.Groups[i]
			*out = *gr
			out.Group = ids[i]
			if v < 10 || out.ErrorCode != 0 {
				return
			}
			if img == nil {
				img = s.b.Image()
			}
			out.Topics = fillOffsetFetchTopicIDs(img, out.Topics, kreq.Groups[i].Topics == nil)
			if unknownIDs != nil {
				out.Topics = append(out.Topics, unknownIDs[i]...)
			}
		}, func(i int, code int16) { fail(i, code) })
		return respond(resp)
	}}
}

// resolveOffsetFetchTopicIDs names a v10 group's topics from their ids.
// known are the topics found in img, with their names set; unknown are
// the answers for the others (UNKNOWN_TOPIC_ID in every partition).
func resolveOffsetFetchTopicIDs(img *metadata.Image, topics []kmsg.OffsetFetchRequestGroupTopic) (known []kmsg.OffsetFetchRequestGroupTopic, unknown []kmsg.OffsetFetchResponseGroupTopic) {
	known = make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(topics))
	for _, t := range topics {
		if mt := img.TopicByID(t.TopicID); mt != nil {
			t.Topic = mt.Name
			known = append(known, t)
			continue
		}
		st := kmsg.NewOffsetFetchResponseGroupTopic()
		st.TopicID = t.TopicID
		st.Partitions = make([]kmsg.OffsetFetchResponseGroupTopicPartition, len(t.Partitions))
		for j, p := range t.Partitions {
			sp := &st.Partitions[j]
			sp.Default()
			sp.Partition, sp.Offset, sp.ErrorCode = p, -1, kerr.UnknownTopicID.Code
		}
		unknown = append(unknown, st)
	}
	return known, unknown
}

// fillOffsetFetchTopicIDs gives an actor's v10 answer the ids of its
// topics. all says every committed topic was asked for: then a topic
// with no id (deleted since its commit) is dropped.
func fillOffsetFetchTopicIDs(img *metadata.Image, topics []kmsg.OffsetFetchResponseGroupTopic, all bool) []kmsg.OffsetFetchResponseGroupTopic {
	kept := topics[:0]
	for _, t := range topics {
		if t.TopicID == (metadata.TopicID{}) {
			if mt := img.Topic(t.Topic); mt != nil {
				t.TopicID = mt.ID
			} else if all {
				continue
			}
		}
		kept = append(kept, t)
	}
	return kept
}
