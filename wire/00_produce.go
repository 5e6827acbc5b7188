package wire

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors"
	"github.com/troupe-io/troupe/batch"
	"github.com/troupe-io/troupe/metadata"
)

// Produce v3-v13. v3 is the first version carrying v2 record batches (the
// only format Troupe stores); v13 names topics by id (KIP-516). No version
// in between changes what the broker must do: v4-v7 add error codes and
// zstd, v8 per-record errors and an error message, v9 flexible encoding,
// v10 leader hints on NOT_LEADER_OR_FOLLOWER (KIP-951), v11-v12 only
// signal client capabilities.
func init() { register(0, 3, 13, handleProduce) }

// adminClientID may write to internal topics, as in Kafka.
const adminClientID = "__admin_client"

// produceWaitFloor is the least time the writer waits for partition
// actors before answering REQUEST_TIMED_OUT. Kafka appends to the local
// log before its timeout starts (the timeout only bounds replication),
// so a tiny TimeoutMillis must not fail an append that is merely
// waiting for its fsync. A variable for tests.
var produceWaitFloor = 5 * time.Second

func handleProduce(s *Server, req *request) reply {
	kreq, ok := req.kreq.(*kmsg.ProduceRequest)
	if !ok {
		return reply{closeConn: true}
	}
	img := s.b.Image()
	resp := kreq.ResponseKind().(*kmsg.ProduceResponse)

	// One backing array for every partition of the response: a request's
	// partitions are answered in place, and the actors' tags index it.
	n := 0
	for i := range kreq.Topics {
		n += len(kreq.Topics[i].Partitions)
	}
	parts := make([]kmsg.ProduceResponseTopicPartition, n)
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(kreq.Topics))

	validAcks := kreq.Acks == -1 || kreq.Acks == 0 || kreq.Acks == 1
	var (
		results  chan actors.ProduceResult // made on the first send, sized for all
		sent     int
		anyError bool
		k        int // index into parts
	)
	for ti := range kreq.Topics {
		rt := &kreq.Topics[ti]
		st := &resp.Topics[ti]
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		st.Partitions = parts[k : k+len(rt.Partitions) : k+len(rt.Partitions)]

		topicCode := int16(0)
		var topic *metadata.Topic
		if kreq.Version >= 13 {
			if topic = img.TopicByID(rt.TopicID); topic == nil {
				topicCode = kerr.UnknownTopicID.Code
			}
		} else if topic = img.Topic(rt.Topic); topic == nil {
			topicCode = kerr.UnknownTopicOrPartition.Code
		}
		if topicCode == 0 && topic.Internal && req.clientID != adminClientID {
			topicCode = kerr.InvalidTopicException.Code
		}

		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			sp := &parts[k]
			tag := k
			k++
			sp.Default()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1 // Kafka's answer for a failed partition
			switch {
			case !validAcks:
				sp.ErrorCode = kerr.InvalidRequiredAcks.Code
				continue
			case topicCode != 0:
				sp.ErrorCode = topicCode
				continue
			}
			p, code := lookupPartition(s.b, topic, rp.Partition)
			if p == nil {
				sp.ErrorCode = code
				continue
			}
			sum, code, msg := validateProduce(rp.Records, kreq.Version, p.BatchOptions())
			if code != 0 {
				sp.ErrorCode = code
				if kreq.Version >= 8 {
					sp.ErrorMessage = &msg
				}
				continue
			}
			if results == nil {
				results = make(chan actors.ProduceResult, n)
			}
			p.Produce(actors.ProduceRequest{
				Records:    rp.Records,
				Summary:    actorSummary(&sum),
				Acks:       kreq.Acks,
				DeadlineMs: produceDeadlineMs(kreq, req.nowMs),
				Tag:        tag,
				Reply:      results,
			})
			sp.BaseOffset = produceUnanswered
			sent++
		}
	}
	for i := range parts {
		anyError = anyError || parts[i].ErrorCode != 0
	}

	if kreq.Acks == 0 && validAcks {
		// The actors may append after this reply is "written": keep the
		// frame out of the pool.
		req.keepFrame = sent > 0
		// No response. Kafka closes the connection instead when a
		// partition failed, so the producer refreshes its metadata.
		return reply{closeConn: anyError}
	}
	if sent == 0 {
		addProduceLeaderHints(resp, img)
		return reply{resp: resp}
	}
	wait := time.Duration(kreq.TimeoutMillis) * time.Millisecond
	wait = max(wait, produceWaitFloor)
	done := ctxDone(req.ctx)
	return reply{await: func() reply {
		if !collectProduce(resp, parts, results, sent, wait, done) {
			// An actor still holds records aliasing the frame.
			req.keepFrame = true
		}
		// The actor may have lost leadership meanwhile: hint from the
		// newest image.
		addProduceLeaderHints(resp, s.b.Image())
		return reply{resp: resp}
	}}
}

// collectProduce fills parts with the actors' answers, waiting at most
// wait; partitions still unanswered then get REQUEST_TIMED_OUT (their
// appends may still happen, as with Kafka's timeout). Sent partitions
// carry BaseOffset produceUnanswered until answered. done (the
// connection's end) stops the wait early: nobody will read the answer.
//
// It reports whether every sent partition was answered.
//
// An answer already there is taken before done or the timer is looked
// at, so that once every answer is in the outcome does not depend on the
// clock or on select's random choice (the simulator relies on it, see
// inproc.go).
func collectProduce(resp *kmsg.ProduceResponse, parts []kmsg.ProduceResponseTopicPartition, results <-chan actors.ProduceResult, sent int, wait time.Duration, done <-chan struct{}) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for answered := 0; answered < sent; {
		var r actors.ProduceResult
		select {
		case r = <-results:
			answered++
			collectProduceResult(resp, parts, r)
			continue
		default:
		}
		select {
		case r = <-results:
			answered++
		case <-done:
			done = nil
			timer.Reset(0) // give up now, below
			continue
		case <-timer.C:
			for i := range parts {
				if parts[i].BaseOffset == produceUnanswered {
					parts[i].ErrorCode = kerr.RequestTimedOut.Code
					parts[i].BaseOffset = -1
				}
			}
			return false
		}
		collectProduceResult(resp, parts, r)
	}
	return true
}

// collectProduceResult fills the partition r answers.
func collectProduceResult(resp *kmsg.ProduceResponse, parts []kmsg.ProduceResponseTopicPartition, r actors.ProduceResult) {
	if r.Tag < 0 || r.Tag >= len(parts) || parts[r.Tag].BaseOffset != produceUnanswered {
		return // not a pending tag of ours; a well-behaved actor never sends one
	}
	sp := &parts[r.Tag]
	sp.ErrorCode = r.ErrorCode
	sp.BaseOffset = r.BaseOffset
	sp.LogAppendTime = r.LogAppendTime
	sp.LogStartOffset = r.LogStartOffset
	if r.ErrorCode != 0 && r.ErrorMessage != "" && resp.Version >= 8 {
		msg := r.ErrorMessage
		sp.ErrorMessage = &msg
	}
}

// produceDeadlineMs is when an acks=-1 produce stops waiting for the ISR:
// the request's timeout from its arrival (0: no deadline).
func produceDeadlineMs(kreq *kmsg.ProduceRequest, nowMs int64) int64 {
	if kreq.Acks != -1 || kreq.TimeoutMillis <= 0 {
		return 0
	}
	return nowMs + int64(kreq.TimeoutMillis)
}

// produceUnanswered marks, in BaseOffset, a partition sent to an actor
// whose answer has not arrived; no append has this base offset.
const produceUnanswered = -2

// validateProduce checks one partition's records as Kafka does before an
// append (ProduceRequest.validateRecords and LogValidator), and summarises
// them for the actor. It returns a nonzero error code and message on
// failure.
func validateProduce(records []byte, version int16, opts batch.Options) (batch.Summary, int16, string) {
	if len(records) == 0 {
		return batch.Summary{}, kerr.InvalidRecord.Code,
			"Produce requests with version " + strconv.Itoa(int(version)) + " must have at least one record batch per partition"
	}
	sum, err := batch.Validate(records, opts)
	if err != nil {
		return sum, batchErrorCode(err), err.Error()
	}
	if sum.NumBatches != 1 {
		return sum, kerr.InvalidRecord.Code,
			"Produce requests with version " + strconv.Itoa(int(version)) + " are only allowed to contain exactly one record batch per partition"
	}
	if version < 7 && sum.Codec == batch.CodecZstd {
		return sum, kerr.UnsupportedCompressionType.Code,
			"Produce requests with version " + strconv.Itoa(int(version)) + " are not allowed to use ZStandard compression"
	}
	return sum, 0, ""
}

// batchErrorCode maps a batch.Validate failure to its Kafka error code.
func batchErrorCode(err error) int16 {
	switch {
	case errors.Is(err, batch.ErrTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, batch.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	default: // batch.ErrCorrupt, and anything unexpected
		return kerr.CorruptMessage.Code
	}
}

func actorSummary(s *batch.Summary) actors.BatchSummary {
	return actors.BatchSummary{
		NumBatches:    s.NumBatches,
		NumRecords:    s.NumRecords,
		OffsetCount:   s.OffsetCount,
		MaxTimestamp:  s.MaxTimestamp,
		ProducerID:    s.ProducerID,
		ProducerEpoch: s.ProducerEpoch,
		BaseSequence:  s.BaseSequence,
		LastSequence:  s.LastSequence,
		Transactional: s.Transactional,
	}
}

// addProduceLeaderHints fills, for v10+ (KIP-951), the current leader of
// every partition answered NOT_LEADER_OR_FOLLOWER and that leader's
// endpoint, so the producer can retry without a metadata round trip.
func addProduceLeaderHints(resp *kmsg.ProduceResponse, img *metadata.Image) {
	if resp.Version < 10 {
		return
	}
	for ti := range resp.Topics {
		st := &resp.Topics[ti]
		var topic *metadata.Topic
		for pi := range st.Partitions {
			sp := &st.Partitions[pi]
			if sp.ErrorCode != kerr.NotLeaderForPartition.Code {
				continue
			}
			if topic == nil {
				if resp.Version >= 13 {
					topic = img.TopicByID(st.TopicID)
				} else {
					topic = img.Topic(st.Topic)
				}
				if topic == nil {
					break
				}
			}
			leader, epoch, b, ok := leaderOf(img, topic, sp.Partition)
			if !ok {
				continue
			}
			sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = leader, epoch
			if !slices.ContainsFunc(resp.Brokers, func(x kmsg.ProduceResponseBroker) bool { return x.NodeID == leader }) {
				resp.Brokers = append(resp.Brokers, kmsg.ProduceResponseBroker{
					NodeID: b.ID, Host: b.Host, Port: b.Port, Rack: rackPtr(b.Rack),
				})
			}
		}
	}
}

// The helpers below are shared by the data-path handlers (produce, fetch,
// list offsets, delete records, offset for leader epoch).

// imagePartition returns the metadata of partition p of topic, or nil.
func imagePartition(topic *metadata.Topic, p int32) *metadata.Partition {
	if topic == nil || p < 0 || int(p) >= len(topic.Partitions) {
		return nil
	}
	return &topic.Partitions[p]
}

// lookupPartition returns the local actor of partition p of topic (which
// must be non-nil), or the error code for its absence: a partition the
// topic does not have is UNKNOWN_TOPIC_OR_PARTITION, one that exists but is
// led elsewhere (or not yet opened here) is NOT_LEADER_OR_FOLLOWER, which
// makes clients refresh metadata and retry.
func lookupPartition(b Backend, topic *metadata.Topic, p int32) (Partition, int16) {
	if imagePartition(topic, p) == nil {
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	if part := b.Partition(topic.Name, p); part != nil {
		return part, 0
	}
	return nil, kerr.NotLeaderForPartition.Code
}

// checkLeaderEpoch is KIP-320's fencing of a request's CurrentLeaderEpoch
// against the partition's: -1 skips the check, an older epoch is
// FENCED_LEADER_EPOCH (the client's metadata is stale), a newer one
// UNKNOWN_LEADER_EPOCH (ours is).
func checkLeaderEpoch(mp *metadata.Partition, requested int32) int16 {
	switch {
	case requested < 0 || mp == nil:
		return 0
	case requested < mp.LeaderEpoch:
		return kerr.FencedLeaderEpoch.Code
	case requested > mp.LeaderEpoch:
		return kerr.UnknownLeaderEpoch.Code
	}
	return 0
}

// leaderOf returns the leader of partition p of topic, its epoch and its
// broker registration, when the image knows them.
func leaderOf(img *metadata.Image, topic *metadata.Topic, p int32) (int32, int32, metadata.Broker, bool) {
	mp := imagePartition(topic, p)
	if mp == nil || mp.Leader < 0 {
		return 0, 0, metadata.Broker{}, false
	}
	b, ok := img.Broker(mp.Leader)
	return mp.Leader, mp.LeaderEpoch, b, ok
}

// ctxDone is ctx.Done(), or nil (never ready) without a context.
func ctxDone(ctx context.Context) <-chan struct{} {
	if ctx == nil {
		return nil
	}
	return ctx.Done()
}

func rackPtr(rack string) *string {
	if rack == "" {
		return nil
	}
	return &rack
}
