package wire

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/metadata"
)

// FindCoordinator v0-v6: which broker coordinates a group (key type 0) or
// a transactional id (key type 1). v0-v3 ask for one key (v0 always a
// group); v4+ (KIP-699) ask for a batch, answered key by key. The Backend
// decides — including unknown key types (INVALID_REQUEST) and, on the
// first lookup, creating the offsets topic — so, like the administrative
// handlers, this one calls it synchronously, bounded by
// defaultAdminTimeout for the whole request.
//
// A key without a coordinator is answered with node -1, host "" and port
// -1, as Kafka does; a lookup cut short by the request's time is
// COORDINATOR_NOT_AVAILABLE, which clients retry.
func init() { register(10, 0, 6, handleFindCoordinator) }

func handleFindCoordinator(s *Server, req *request) reply {
	kreq, ok := req.kreq.(*kmsg.FindCoordinatorRequest)
	if !ok {
		return reply{closeConn: true}
	}
	resp := kreq.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keyType := kreq.CoordinatorType
	if req.version == 0 {
		keyType = 0 // v0 has no key type: groups only
	}
	batched := req.version >= 4
	keys := kreq.CoordinatorKeys
	if !batched {
		keys = []string{kreq.CoordinatorKey}
	}

	ctx, cancel := adminContext(req, 0)
	defer cancel()
	resp.Coordinators = make([]kmsg.FindCoordinatorResponseCoordinator, len(keys))
	for i, key := range keys {
		c := &resp.Coordinators[i]
		c.Default()
		c.Key = key
		err := ctx.Err()
		if err == nil {
			var b metadata.Broker
			b, err = s.b.FindCoordinator(ctx, keyType, key)
			c.NodeID, c.Host, c.Port = b.ID, b.Host, b.Port
		}
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				err = fmt.Errorf("looking up the coordinator: %v: %w", err, kerr.CoordinatorNotAvailable)
			}
			c.NodeID, c.Host, c.Port = -1, "", -1
			c.ErrorCode, c.ErrorMessage = errCode(err), errMessage(err)
			s.log.Debug("no coordinator", "key_type", keyType, "key", key, "client_id", req.clientID, "err", err)
		}
	}
	if !batched {
		c := resp.Coordinators[0]
		resp.Coordinators = nil
		resp.ErrorCode, resp.NodeID, resp.Host, resp.Port = c.ErrorCode, c.NodeID, c.Host, c.Port
		resp.ErrorMessage = c.ErrorMessage
	}
	return respond(resp)
}
