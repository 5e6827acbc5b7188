// Package wire is Troupe's Kafka protocol server: it accepts client
// connections, decodes Kafka requests with franz-go's kmsg, answers them
// from a Backend (the node: metadata image, controller operations and
// partition actors), and writes the responses back in request order.
//
// Structure:
//
//   - server.go: Server (listeners, connection bound, graceful Shutdown,
//     Stats).
//   - conn.go, frame.go: one connection — framing, request headers, the
//     reader goroutine that decodes requests and runs handlers in order,
//     and the writer goroutine that finishes (awaits) and writes replies
//     in the same order. A bounded queue between them lets clients
//     pipeline requests and applies backpressure.
//   - handler.go: the contract between the connection and the per-API
//     handlers; NN_name.go: one file per API key, each registering the
//     versions it fully implements. ApiVersions advertises exactly the
//     registered table.
//   - errors.go: turning Backend errors (which wrap *kerr.Error) into
//     error codes and messages; admin.go: helpers of the administrative
//     handlers.
//   - inproc.go: Server.Call, a request handled without a socket,
//     goroutine or wait of its own — the deterministic simulator's way
//     into the very handlers clients reach.
//   - tagguard.go: walks flexible request bodies before kmsg decodes
//     them, so that a forged tagged-field count cannot make kmsg's
//     decoder spin for minutes.
//
// Invariants: no input makes the server panic (a recovered panic closes
// only its connection); a request frame's size is checked before its
// buffer is allocated; responses leave a connection in the order its
// requests arrived.
package wire
