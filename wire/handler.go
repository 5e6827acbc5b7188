package wire

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// request is one decoded Kafka request, as a handler sees it.
type request struct {
	key      int16
	version  int16
	corr     int32
	clientID string
	kreq     kmsg.Request // already ReadFrom the frame; byte fields alias the frame
	nowMs    int64        // wall clock when the request was read
	remote   string       // client address, for logs and DescribeGroups-style hosts
	// keepFrame is set by a handler (or its await) whose request's frame
	// may still be read after the reply is written — an acks=0 produce,
	// or one whose actor had not answered yet — so that the frame is not
	// recycled under it. See framepool.go.
	keepFrame bool
	// ctx is the connection's context: it is done once the connection is
	// force-closed (Shutdown past its deadline) or found dead (a write
	// failed). It is not done by a graceful Shutdown, which lets in-flight
	// requests finish. Backend calls and awaits derive their contexts
	// from it, so they stop when nobody is left to answer.
	ctx context.Context
}

// reply is a handler's answer to one request. Handlers run on the
// connection's reader goroutine in request order and must not block for
// long (they enqueue work to actors and return); anything that waits —
// acks after fsync, fetch long-polls — goes into await, which the
// connection's writer goroutine runs in request order. Exactly one of resp,
// await or fetch is set, or none when the client expects no response
// (produce with acks=0).
//
// Administrative handlers (CreateTopics, DeleteTopics, …) are the
// exception: they call the Backend synchronously on the reader goroutine,
// bounded by the request's timeout. Like Kafka, which processes one request
// per connection at a time, this makes a client's next request on the
// same connection see the effect of its previous admin request; the
// reader simply stops reading ahead meanwhile.
//
// await must return promptly once req.ctx is done: the writer always runs
// it, even on a dead connection, so that whatever it holds (fetched
// regions, say) is released.
type reply struct {
	resp  kmsg.Response
	await func() reply // may itself return a fetch reply
	fetch *fetchReply  // zero-copy fetch response, see fetchwrite.go
	// closeConn asks the server to close the connection after writing this
	// reply (or instead of it, when nothing is set), as Kafka does for
	// requests it cannot answer.
	closeConn bool
}

// handler answers one API key. A handler is registered for the versions
// it fully implements; the server answers other versions itself.
type handler func(s *Server, req *request) reply

// api is one row of the table the server advertises in ApiVersions.
type api struct {
	key        int16
	minVersion int16
	maxVersion int16
	handle     handler
}

// apis is filled by register calls in the per-API files (NN_name.go).
var apis = map[int16]api{}

// register adds an API to the advertised table. Called from init.
func register(key, minVersion, maxVersion int16, h handler) {
	apis[key] = api{key: key, minVersion: minVersion, maxVersion: maxVersion, handle: h}
}

// respond wraps a response. The writer sets the response's version to the
// request's before encoding, so handlers need not (but
// req.kreq.ResponseKind() already does).
func respond(resp kmsg.Response) reply { return reply{resp: resp} }
