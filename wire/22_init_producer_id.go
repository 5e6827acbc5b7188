package wire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(22, 0, 5, handleInitProducerID) }

// handleInitProducerID hands idempotent producers a fresh producer id
// with epoch 0.
//
// Transactions are not supported yet: a transactional id is answered
// with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which franz-go, librdkafka
// and the Java client all treat as fatal, so the application fails at
// once with an error naming transactions instead of retrying forever (as
// it would on COORDINATOR_NOT_AVAILABLE and the like). The response has
// no message field; the broker logs why.
//
// An idempotent producer that bumps its epoch after an error (KIP-360,
// v3+) sends its current id and epoch; Kafka hands such a producer a new
// id, and so do we — with no state kept per producer id, a new id is
// always safe.
func handleInitProducerID(s *Server, req *request) reply {
	kreq := req.kreq.(*kmsg.InitProducerIDRequest)
	resp := kreq.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1

	if kreq.TransactionalID != nil {
		if *kreq.TransactionalID == "" {
			resp.ErrorCode = kerr.InvalidRequest.Code
			return respond(resp)
		}
		s.log.Info("refusing transactional producer: transactions are not supported",
			"client_id", req.clientID, "remote", req.remote, "transactional_id", *kreq.TransactionalID)
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return respond(resp)
	}
	if req.version >= 3 && (kreq.ProducerID == -1) != (kreq.ProducerEpoch == -1) {
		// An id without an epoch or the reverse: Kafka rejects it.
		resp.ErrorCode = kerr.InvalidRequest.Code
		return respond(resp)
	}

	ctx, cancel := adminContext(req, 0)
	id, err := s.b.AllocateProducerID(ctx)
	cancel()
	if err != nil {
		resp.ErrorCode = errCode(err)
		s.log.Debug("allocating producer id failed", "client_id", req.clientID, "err", err)
		return respond(resp)
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return respond(resp)
}
