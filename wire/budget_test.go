package wire

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestQueuedRequestBytesAreBounded: with a budget that holds one request,
// a second connection's request is not even read until the first one's
// reply is written.
func TestQueuedRequestBytesAreBounded(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	req := kmsg.NewPtrDescribeClusterRequest()
	req.Version = 0
	// Room for exactly the first request.
	size := int32(len(requestFrame(req, 0, &testClientID, nil)))
	fb := newFakeBackend()
	fb.limits.SocketRequestMaxBytes = size
	fb.limits.QueuedMaxRequestBytes = int64(size)
	env := newTestEnvWith(t, fb, Options{}, awaitingDescribeCluster(release, started))

	first := env.dial()
	first.send(req) // correlation id 0: its reply waits for release
	<-started

	second := env.dial()
	other := kmsg.NewPtrDescribeClusterRequest()
	other.Version = 0
	got := make(chan struct{})
	second.corr = 5 // not 0: only correlation id 0 waits
	go func() {
		second.send(other)
		second.recv(other, 5)
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("second connection served while the budget was spent")
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	first.recv(kmsg.NewPtrDescribeClusterRequest(), 0)
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("second connection never served after the budget came back")
	}
}
