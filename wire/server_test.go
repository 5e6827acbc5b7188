package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ourAPIs are the APIs this file's handlers register, with their ranges;
// the data-path APIs register alongside.
var ourAPIs = map[int16][2]int16{
	3:  {0, 13}, // Metadata
	18: {0, 4},  // ApiVersions
	19: {0, 7},  // CreateTopics
	20: {0, 6},  // DeleteTopics
	22: {0, 5},  // InitProducerId
	32: {0, 4},  // DescribeConfigs
	37: {0, 3},  // CreatePartitions
	43: {0, 2},  // ElectLeaders
	44: {0, 1},  // IncrementalAlterConfigs
	45: {0, 0},  // AlterPartitionReassignments
	46: {0, 0},  // ListPartitionReassignments
	55: {0, 2},  // DescribeQuorum
	60: {0, 2},  // DescribeCluster
}

func checkAdvertised(t *testing.T, keys []kmsg.ApiVersionsResponseApiKey) {
	t.Helper()
	if !slices.IsSortedFunc(keys, func(a, b kmsg.ApiVersionsResponseApiKey) int { return int(a.ApiKey) - int(b.ApiKey) }) {
		t.Errorf("api keys not sorted: %v", keys)
	}
	got := map[int16][2]int16{}
	for _, k := range keys {
		got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
		if _, ok := apis[k.ApiKey]; !ok {
			t.Errorf("advertised key %d has no registered handler", k.ApiKey)
		}
	}
	for key, want := range ourAPIs {
		if got[key] != want {
			t.Errorf("key %d (%s): advertised %v, want %v", key, kmsg.NameForKey(key), got[key], want)
		}
	}
	// Group APIs are advertised only once handlers exist for them.
	for _, key := range []int16{8, 9, 10, 11, 12, 13, 14} {
		if _, ok := got[key]; ok && apis[key].handle == nil {
			t.Errorf("group API %d advertised without a handler", key)
		}
	}
}

func TestApiVersions(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "wire-test", "1.0.0"
		resp := c.roundTrip(req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: error %d", v, resp.ErrorCode)
		}
		checkAdvertised(t, resp.ApiKeys)
		if v >= 3 && (len(resp.SupportedFeatures) != 0 || len(resp.FinalizedFeatures) != 0) {
			t.Errorf("v%d: features advertised: %+v", v, resp)
		}
	}
}

// TestApiVersionsUnsupportedVersion checks KIP-511: a version above ours is
// answered in the v0 format with UNSUPPORTED_VERSION and the table, and
// the connection stays usable for the retry.
func TestApiVersionsUnsupportedVersion(t *testing.T) {
	for _, v := range []int16{5, 99, 32767} {
		env := newTestEnv(t)
		c := env.dial()
		// A body we cannot know the shape of: the server must not parse it.
		frame := binary.BigEndian.AppendUint16(nil, apiVersionsKey)
		frame = binary.BigEndian.AppendUint16(frame, uint16(v))
		frame = binary.BigEndian.AppendUint32(frame, 7)
		frame = append(frame, 0xff, 0xff) // null client id
		frame = append(frame, 0xde, 0xad, 0xbe, 0xef)
		c.write(sizePrefixed(frame))

		v0 := kmsg.NewPtrApiVersionsRequest() // decode as v0
		resp := c.recv(v0, 7).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Fatalf("v%d: error code %d, want UNSUPPORTED_VERSION", v, resp.ErrorCode)
		}
		checkAdvertised(t, resp.ApiKeys)

		retry := kmsg.NewPtrApiVersionsRequest()
		retry.Version = 4
		retry.ClientSoftwareName, retry.ClientSoftwareVersion = "kgo", "v1.22.2"
		if r := c.roundTrip(retry).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
			t.Fatalf("retry at v4 after v%d: error %d", v, r.ErrorCode)
		}
	}
}

func TestApiVersionsInvalidSoftwareName(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	for _, tc := range []struct {
		name, version string
		want          int16
	}{
		{"librdkafka", "2.3.0", 0},
		{"a", "1", 0},
		{"", "1.0", kerr.InvalidRequest.Code},
		{"bad name", "1.0", kerr.InvalidRequest.Code},
		{"kgo", "-1.0", kerr.InvalidRequest.Code},
		{"kgo", "1.0.", kerr.InvalidRequest.Code},
	} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 3
		req.ClientSoftwareName, req.ClientSoftwareVersion = tc.name, tc.version
		resp := c.roundTrip(req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != tc.want {
			t.Errorf("software %q %q: error %d, want %d", tc.name, tc.version, resp.ErrorCode, tc.want)
		}
	}
}

// awaitingDescribeCluster replaces DescribeCluster with a handler whose
// reply to correlation id 0 waits for release; started is closed when
// that await begins.
func awaitingDescribeCluster(release <-chan struct{}, started chan<- struct{}) func(*Server) {
	return func(s *Server) {
		s.setHandler(60, 0, 2, func(s *Server, req *request) reply {
			if req.corr != 0 {
				return handleDescribeCluster(s, req)
			}
			return reply{await: func() reply {
				if started != nil {
					close(started)
				}
				select {
				case <-release:
				case <-req.ctx.Done():
				}
				return handleDescribeCluster(s, req)
			}}
		})
	}
}

// TestPipelining sends 50 requests back to back on one connection; the
// first one's reply waits. Nothing may come back until it is released,
// and then every reply comes back in request order.
func TestPipelining(t *testing.T) {
	release := make(chan struct{})
	env := newTestEnv(t, awaitingDescribeCluster(release, nil))
	c := env.dial()

	var reqs []kmsg.Request
	var all []byte
	for i := range 50 {
		var req kmsg.Request
		switch i % 4 {
		case 0:
			r := kmsg.NewPtrDescribeClusterRequest()
			r.Version = 1
			req = r
		case 1:
			r := kmsg.NewPtrApiVersionsRequest()
			r.Version = 3
			r.ClientSoftwareName, r.ClientSoftwareVersion = "t", "1"
			req = r
		case 2:
			r := kmsg.NewPtrMetadataRequest()
			r.Version = 12
			req = r
		case 3:
			r := kmsg.NewPtrMetadataRequest()
			r.Version = 1
			req = r
		}
		reqs = append(reqs, req)
		all = append(all, sizePrefixed(requestFrame(req, int32(i), &testClientID, nil))...)
	}
	c.write(all)

	c.c.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	var one [1]byte
	if n, err := c.c.Read(one[:]); n != 0 || err == nil {
		t.Fatalf("got a reply (%d bytes, err %v) while the first request's reply was still waiting", n, err)
	}
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	close(release)
	for i, req := range reqs {
		c.recv(req, int32(i))
	}
	st := env.s.Stats()
	if st.Requests[60] != 13 || st.Requests[18] != 13 || st.Requests[3] != 24 {
		t.Errorf("request counters: %v", st.Requests)
	}
}

// TestBackpressure fills a connection's reply queue behind a waiting
// reply: the reader must stop reading (not queue without bound), and
// resume once the reply is released.
func TestBackpressure(t *testing.T) {
	release := make(chan struct{})
	fb := newFakeBackend()
	fb.setLimits(func(l *Limits) { l.MaxInflightPerConn = 4 })
	env := newTestEnvWith(t, fb, Options{}, awaitingDescribeCluster(release, nil))
	c := env.dial()

	req := kmsg.NewPtrDescribeClusterRequest()
	const n = 20
	var all []byte
	for i := range n {
		all = append(all, sizePrefixed(requestFrame(req, int32(i), &testClientID, nil))...)
	}
	c.write(all)
	// The reader handles the waiting request, fills the queue (4), and
	// then holds one more request it cannot push: 6 at most.
	time.Sleep(100 * time.Millisecond)
	if got := env.s.Stats().Requests[60]; got > 6 {
		t.Fatalf("reader handled %d requests with a queue of 4 blocked", got)
	}
	close(release)
	for i := range n {
		c.recv(req, int32(i))
	}
}

func TestFrameSizeLimits(t *testing.T) {
	fb := newFakeBackend()
	fb.setLimits(func(l *Limits) { l.SocketRequestMaxBytes = 1 << 16 })
	env := newTestEnvWith(t, fb, Options{})
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"negative", []byte{0xff, 0xff, 0xff, 0xff}},
		{"2 GiB", []byte{0x80, 0, 0, 0}},
		{"just under 2 GiB", []byte{0x7f, 0xff, 0xff, 0xff}},
		{"one over socket.request.max.bytes", binary.BigEndian.AppendUint32(nil, 1<<16+1)},
		{"zero", []byte{0, 0, 0, 0}},
		{"below the header", append([]byte{0, 0, 0, 7}, 0, 18, 0, 0, 0, 0, 1)},
		{"http", []byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")},
		{"tls hello", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := env.s.Stats().ProtocolErrors
			c := env.dial()
			c.write(tc.data)
			c.expectClosed()
			if got := env.s.Stats().ProtocolErrors; got != before+1 {
				t.Errorf("protocol errors %d, want %d", got, before+1)
			}
			// The server keeps serving others.
			other := env.dial()
			other.roundTrip(kmsg.NewPtrApiVersionsRequest())
		})
	}
	// A frame of exactly the maximum size is read (then rejected only as
	// a request: its body is garbage).
	c := env.dial()
	frame := make([]byte, 1<<16)
	binary.BigEndian.PutUint16(frame, 3) // Metadata
	binary.BigEndian.PutUint16(frame[2:], 1)
	binary.BigEndian.PutUint16(frame[8:], 0)  // empty client id
	binary.BigEndian.PutUint32(frame[10:], 0) // zero topics
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 1
	c.write(sizePrefixed(frame))
	resp := c.recv(req, 0).(*kmsg.MetadataResponse)
	if len(resp.Brokers) != 1 {
		t.Fatalf("max-size frame: %+v", resp)
	}
}

// TestReadFrameChecksBeforeAllocating proves a hostile size prefix costs
// no allocation.
func TestReadFrameChecksBeforeAllocating(t *testing.T) {
	for _, prefix := range []uint32{0xffffffff, 0x80000000, 0x7fffffff, 1<<20 + 1, 0, 7} {
		data := binary.BigEndian.AppendUint32(nil, prefix)
		r := bytes.NewReader(data)
		var hdr [4]byte
		allocs := testing.AllocsPerRun(100, func() {
			r.Reset(data)
			if _, _, err := readFrame(r, &hdr, 1<<20, nil); !errors.Is(err, errFrameSize) {
				t.Fatalf("prefix %#x: err %v", prefix, err)
			}
		})
		if allocs != 0 {
			t.Errorf("prefix %#x: %v allocations", prefix, allocs)
		}
	}
}

func TestUnsupportedRequestsCloseTheConnection(t *testing.T) {
	env := newTestEnv(t)
	header := func(key, version int16) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, 1)
		return append(b, 0, 1, 'x') // client id "x"
	}
	metadataV1 := kmsg.NewPtrMetadataRequest()
	metadataV1.Version = 1
	metadataV1.Topics = []kmsg.MetadataRequestTopic{{Topic: ptrTo("some-topic")}}
	truncated := requestFrame(metadataV1, 1, &testClientID, nil)
	truncated = truncated[:len(truncated)-3]

	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"key unknown to kmsg", header(999, 0)},
		{"negative key", header(-1, 0)},
		{"known key without handler", header(4, 0)}, // LeaderAndIsr
		{"metadata above max", append(header(3, 14), 0, 0, 0, 0)},
		{"negative version", append(header(3, -1), 0, 0, 0, 0)},
		{"api versions negative version", header(apiVersionsKey, -1)},
		{"truncated client id", append(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 0x00030001), 1), 0, 50, 'a')},
		{"truncated body", truncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := env.dial()
			c.write(sizePrefixed(tc.frame))
			c.expectClosed()
			env.dial().roundTrip(kmsg.NewPtrApiVersionsRequest())
		})
	}
}

// TestPipelinedRepliesBeforeProtocolErrorAreWritten: requests before a bad
// one are answered; then the connection closes.
func TestPipelinedRepliesBeforeProtocolErrorAreWritten(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	req := kmsg.NewPtrApiVersionsRequest()
	var all []byte
	for i := range 3 {
		all = append(all, sizePrefixed(requestFrame(req, int32(i), &testClientID, nil))...)
	}
	all = append(all, 0xff, 0xff, 0xff, 0xff)
	c.write(all)
	for i := range 3 {
		c.recv(req, int32(i))
	}
	c.expectClosed()
}

func TestFlexibleHeaderTaggedFields(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()

	// Two unknown header tags, one with a payload, on a flexible request.
	tags := []byte{2, 0, 3, 'a', 'b', 'c', 5, 0}
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	c.write(sizePrefixed(requestFrame(req, 41, &testClientID, tags)))
	resp := c.recv(req, 41).(*kmsg.MetadataResponse)
	if len(resp.Brokers) != 1 || resp.ClusterID == nil || *resp.ClusterID != "fake-cluster" {
		t.Fatalf("metadata with header tags: %+v", resp)
	}

	// ApiVersions v3 has a flexible request header but a v0 response
	// header; recv checks the latter by decoding.
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "t", "1"
	c.write(sizePrefixed(requestFrame(av, 42, nil, tags)))
	checkAdvertised(t, c.recv(av, 42).(*kmsg.ApiVersionsResponse).ApiKeys)

	// A tag whose size runs past the frame closes the connection.
	bad := env.dial()
	bad.write(sizePrefixed(requestFrame(req, 1, &testClientID, []byte{1, 0, 100, 'x'})))
	bad.expectClosed()
}

func TestShutdownWaitsForAwaitingReply(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{})
	env := newTestEnv(t, awaitingDescribeCluster(release, started))
	c := env.dial()
	req := kmsg.NewPtrDescribeClusterRequest()
	c.send(req)
	<-started

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- env.s.Shutdown(ctx)
	}()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a reply was waiting", err)
	case <-time.After(100 * time.Millisecond):
	}
	// No new connections.
	eventually(t, "listener to close", func() bool {
		nc, err := net.DialTimeout("tcp", env.addr, time.Second)
		if err != nil {
			return true
		}
		nc.Close()
		return false
	})
	// A request sent now is not read: the reply after the waiting one
	// is the connection's end.
	c.write(sizePrefixed(requestFrame(req, 1, &testClientID, nil)))

	close(release)
	resp := c.recv(req, 0).(*kmsg.DescribeClusterResponse)
	if resp.ErrorCode != 0 || len(resp.Brokers) != 1 {
		t.Fatalf("awaited reply: %+v", resp)
	}
	c.expectClosed()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-env.serveErr; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v, want ErrServerClosed", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("Serve after Shutdown left its listener open")
	}
}

func TestShutdownForcesAfterDeadline(t *testing.T) {
	never, started := make(chan struct{}), make(chan struct{})
	var ctxDone = make(chan struct{})
	env := newTestEnv(t, func(s *Server) {
		s.setHandler(60, 0, 2, func(s *Server, req *request) reply {
			return reply{await: func() reply {
				close(started)
				select {
				case <-never:
				case <-req.ctx.Done():
					close(ctxDone)
				}
				return handleDescribeCluster(s, req)
			}}
		})
	})
	c := env.dial()
	c.send(kmsg.NewPtrDescribeClusterRequest())
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := env.s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want deadline exceeded", err)
	}
	select {
	case <-ctxDone:
	case <-time.After(5 * time.Second):
		t.Fatal("request context not cancelled by forced shutdown")
	}
	// The await returns once its context is cancelled; the writer may
	// get its reply out before the forced close reaches the socket.
	c.expectClosedAfterAny()
}

func TestMaxConnections(t *testing.T) {
	env := newTestEnvWith(t, newFakeBackend(), Options{MaxConnections: 2})
	a, b := env.dial(), env.dial()
	a.roundTrip(kmsg.NewPtrApiVersionsRequest())
	b.roundTrip(kmsg.NewPtrApiVersionsRequest())
	extra := env.dial()
	extra.expectClosed()
	if st := env.s.Stats(); st.ConnsRejected != 1 || st.ConnsOpen != 2 {
		t.Fatalf("stats: %+v", st)
	}
	a.c.Close()
	eventually(t, "a's slot to free", func() bool { return env.s.Stats().ConnsOpen == 1 })
	env.dial().roundTrip(kmsg.NewPtrApiVersionsRequest())
}

func TestHandlerPanicClosesOnlyItsConnection(t *testing.T) {
	env := newTestEnv(t, func(s *Server) {
		s.setHandler(60, 0, 2, func(s *Server, req *request) reply {
			if req.corr == 13 {
				panic("boom in handler")
			}
			return reply{await: func() reply { panic("boom in await") }}
		})
	})
	for _, corr := range []int32{13, 14} {
		c := env.dial()
		c.corr = corr
		c.send(kmsg.NewPtrDescribeClusterRequest())
		c.expectClosed()
	}
	env.dial().roundTrip(kmsg.NewPtrApiVersionsRequest())
	if p := env.s.Stats().Panics; p != 2 {
		t.Fatalf("panics %d, want 2", p)
	}
}

// TestEmptyReplyWritesNothing: a reply with nothing set (produce with
// acks=0) takes its turn but writes nothing.
func TestEmptyReplyWritesNothing(t *testing.T) {
	env := newTestEnv(t, func(s *Server) {
		s.setHandler(60, 0, 2, func(s *Server, req *request) reply {
			if req.corr%2 == 0 {
				return reply{}
			}
			return handleDescribeCluster(s, req)
		})
	})
	c := env.dial()
	req := kmsg.NewPtrDescribeClusterRequest()
	var all []byte
	for i := range 6 {
		all = append(all, sizePrefixed(requestFrame(req, int32(i), &testClientID, nil))...)
	}
	c.write(all)
	for _, corr := range []int32{1, 3, 5} {
		c.recv(req, corr)
	}
	// A reply encoded just before an empty one, with nothing after,
	// still goes out.
	c.write(append(sizePrefixed(requestFrame(req, 7, &testClientID, nil)), sizePrefixed(requestFrame(req, 8, &testClientID, nil))...))
	c.recv(req, 7)
}

func TestStats(t *testing.T) {
	env := newTestEnv(t)
	c := env.dial()
	c.roundTrip(kmsg.NewPtrApiVersionsRequest())
	c.roundTrip(kmsg.NewPtrMetadataRequest())
	st := env.s.Stats()
	if st.Requests[18] != 1 || st.Requests[3] != 1 {
		t.Errorf("requests: %v", st.Requests)
	}
	if st.BytesIn == 0 || st.BytesOut == 0 || st.ConnsAccepted != 1 || st.ConnsOpen != 1 {
		t.Errorf("stats: %+v", st)
	}
	if env.s.Addr() == nil || env.s.Addr().String() != env.addr {
		t.Errorf("Addr %v, want %s", env.s.Addr(), env.addr)
	}
}

func TestListenAndServe(t *testing.T) {
	fb := newFakeBackend()
	fb.registerBroker("127.0.0.1", 9092)
	s := NewServer(fb, Options{Addr: "127.0.0.1:0", Logger: testLogger()})
	served := make(chan error, 1)
	go func() { served <- s.ListenAndServe() }()
	eventually(t, "the listener", func() bool { return s.Addr() != nil })
	c := (&testEnv{t: t, addr: s.Addr().String()}).dial()
	c.roundTrip(kmsg.NewPtrApiVersionsRequest())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.c.Close()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("ListenAndServe: %v", err)
	}
}
