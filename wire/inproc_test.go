package wire

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// finishWithin finishes call, failing the test if Finish waits: by the
// time a test finishes a call, every answer it depends on has arrived.
func finishWithin(t *testing.T, call *Call) (kmsg.Response, error) {
	t.Helper()
	type result struct {
		resp kmsg.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := call.Finish()
		done <- result{resp, err}
	}()
	select {
	case r := <-done:
		return r.resp, r.err
	case <-time.After(5 * time.Second):
		t.Fatal("Finish blocked although every answer had arrived")
		return nil, nil
	}
}

var testCallInfo = CallInfo{ClientID: "sim-client", Remote: "10.0.0.7:40000", NowMs: 1_000_000}

func callProduce(version int16, acks int16, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = version
	req.Acks = acks
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = "t", dpTopicID("t")
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = 0, records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func callFetch(version int16, offset int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = version
	req.MaxWaitMillis = 0 // the simulator never parks a fetch
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = "t", dpTopicID("t")
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = 0, offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// TestCallProduceThenFetch produces through Call while the partition
// holds its answers, delivers them, finishes, and fetches the records
// back through the zero-copy rendering, at old and flexible versions.
func TestCallProduceThenFetch(t *testing.T) {
	for _, tc := range []struct {
		name             string
		produceV, fetchV int16
	}{
		{"oldest", 3, 4},
		{"pre-flexible", 8, 11},
		{"flexible", 9, 12},
		{"topic ids", 13, 13},
		{"newest", 13, 18},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newDPBackend(t, map[string]int{"t": 1})
			s := newDPServer(b)
			p := b.part("t", 0)
			ctx := context.Background()

			var want int64
			for i := range 3 {
				p.setHold(true)
				call := s.Call(ctx, testCallInfo, callProduce(tc.produceV, -1, testBatch(t, 2+i, 10, 1000)))
				p.setHold(false) // the answer arrives after the handler returned
				resp, err := finishWithin(t, call)
				if err != nil {
					t.Fatalf("produce %d: %v", i, err)
				}
				pr := resp.(*kmsg.ProduceResponse)
				if pr.Version != tc.produceV {
					t.Errorf("produce response v%d, want v%d", pr.Version, tc.produceV)
				}
				sp := pr.Topics[0].Partitions[0]
				if sp.ErrorCode != 0 || sp.BaseOffset != want {
					t.Fatalf("produce %d: error %d base offset %d, want 0 and %d", i, sp.ErrorCode, sp.BaseOffset, want)
				}
				want += int64(2 + i)
			}

			lo := kmsg.NewPtrListOffsetsRequest()
			lo.Version = 7
			lt := kmsg.NewListOffsetsRequestTopic()
			lt.Topic = "t"
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Partition, lp.Timestamp = 0, -1 // latest
			lt.Partitions = append(lt.Partitions, lp)
			lo.Topics = append(lo.Topics, lt)
			p.setHold(true)
			call := s.Call(ctx, testCallInfo, lo)
			p.setHold(false)
			resp, err := finishWithin(t, call)
			if err != nil {
				t.Fatalf("list offsets: %v", err)
			}
			if lp := resp.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]; lp.ErrorCode != 0 || lp.Offset != want {
				t.Fatalf("list offsets: error %d offset %d, want 0 and %d", lp.ErrorCode, lp.Offset, want)
			}

			p.setHold(true)
			call = s.Call(ctx, testCallInfo, callFetch(tc.fetchV, 0))
			p.setHold(false)
			resp, err = finishWithin(t, call)
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			fr := resp.(*kmsg.FetchResponse)
			if fr.Version != tc.fetchV || len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
				t.Fatalf("fetch response v%d with %+v", fr.Version, fr.Topics)
			}
			fp := fr.Topics[0].Partitions[0]
			if fp.ErrorCode != 0 || fp.HighWatermark != want {
				t.Fatalf("fetch: error %d high watermark %d, want 0 and %d", fp.ErrorCode, fp.HighWatermark, want)
			}
			if n := countRecords(t, fp.RecordBatches); int64(n) != want {
				t.Fatalf("fetched %d records, want %d", n, want)
			}
		})
	}
}

// TestCallMatchesConnection checks that requests a connection refuses
// are refused by Call, and that ApiVersions above our highest version
// gets the same KIP-511 answer from both.
func TestCallMatchesConnection(t *testing.T) {
	produce := func(v int16) kmsg.Request { return callProduce(v, 1, []byte{1}) }
	apiVersions := func(v int16) kmsg.Request {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "sim", "1"
		return req
	}
	for _, tc := range []struct {
		name string
		req  kmsg.Request
		// refused: the connection closes without answering; else the
		// response is compared.
		refused bool
	}{
		{"produce below our versions", produce(2), true},
		{"produce above our versions", produce(99), true},
		{"fetch below our versions", callFetch(3, 0), true},
		{"api versions above ours (KIP-511)", apiVersions(99), false},
		{"api versions", apiVersions(3), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			call := env.s.Call(context.Background(), testCallInfo, tc.req)
			got, err := finishWithin(t, call)

			c := env.dial()
			corr := c.send(tc.req)
			if tc.refused {
				c.expectClosed()
				if !errors.Is(err, ErrUnsupported) || !errors.Is(err, ErrConnectionClosed) || got != nil {
					t.Fatalf("Call: %v, %v; want ErrUnsupported and ErrConnectionClosed", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Call: %v", err)
			}
			// Decode the connection's answer at the version the server
			// answered in, which Call reports as the response's.
			as := kmsg.NewPtrApiVersionsRequest()
			as.Version = got.GetVersion()
			want := c.recv(as, corr)
			if !slices.Equal(got.AppendTo(nil), want.AppendTo(nil)) {
				t.Fatalf("Call answered %+v, the connection %+v", got, want)
			}
			if tc.req.GetVersion() == 99 {
				if r := got.(*kmsg.ApiVersionsResponse); r.Version != 0 || r.ErrorCode != kerr.UnsupportedVersion.Code {
					t.Fatalf("KIP-511 answer v%d error %d", r.Version, r.ErrorCode)
				}
			}
		})
	}
}

// TestCallMetadata lists the cluster, and auto-creates a topic: the admin
// part runs synchronously inside Call.
func TestCallMetadata(t *testing.T) {
	fb := newFakeBackend()
	fb.registerBroker("10.0.0.1", 9092)
	fb.setLimits(func(l *Limits) { l.AutoCreateTopics = true })
	s := NewServer(fb, Options{Logger: testLogger()})

	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("auto")
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = true
	call := s.Call(context.Background(), testCallInfo, req)
	if n := fb.called("CreateTopics"); n != 1 {
		t.Fatalf("CreateTopics called %d times within Call, want 1", n)
	}
	resp, err := finishWithin(t, call)
	if err != nil {
		t.Fatal(err)
	}
	mr := resp.(*kmsg.MetadataResponse)
	if len(mr.Brokers) != 1 || mr.Brokers[0].Host != "10.0.0.1" || mr.Brokers[0].Port != 9092 {
		t.Errorf("brokers %+v", mr.Brokers)
	}
	if len(mr.Topics) != 1 || mr.Topics[0].ErrorCode != 0 || len(mr.Topics[0].Partitions) != 1 {
		t.Fatalf("topics %+v", mr.Topics)
	}
}

// TestCallGroupRequest checks what a group actor receives from a Call
// (its time and client are the CallInfo's) and that an answer delivered
// after Call returned is what Finish returns.
func TestCallGroupRequest(t *testing.T) {
	fb := newFakeBackend()
	fb.registerBroker("10.0.0.1", 9092)
	s := NewServer(fb, Options{Logger: testLogger()})
	g := fb.group("g")
	g.setPark(true)

	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.Generation, req.MemberID = "g", -1, ""
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 42
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	call := s.Call(context.Background(), testCallInfo, req)
	parked := g.setPark(false)
	if len(parked) != 1 {
		t.Fatalf("%d requests reached the group, want 1", len(parked))
	}
	got := parked[0].Req
	if got.NowMs != testCallInfo.NowMs || got.ClientID != testCallInfo.ClientID || got.ClientHost != "/10.0.0.7" {
		t.Errorf("group saw now %d client %q host %q", got.NowMs, got.ClientID, got.ClientHost)
	}
	g.reply(parked[0], g.cannedGroupAnswer(got))
	resp, err := finishWithin(t, call)
	if err != nil {
		t.Fatal(err)
	}
	cr := resp.(*kmsg.OffsetCommitResponse)
	if len(cr.Topics) != 1 || len(cr.Topics[0].Partitions) != 1 || cr.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit answered %+v", cr.Topics)
	}
}

// TestCallAnswersWinOverDoneContext checks the determinism the simulator
// relies on: once every answer is in, the await uses them even when its
// timeout or the connection's end is also ready — a select choosing at
// random among them would fail some of these rounds.
func TestCallAnswersWinOverDoneContext(t *testing.T) {
	b := newDPBackend(t, map[string]int{"t": 1})
	s := newDPServer(b)
	p := b.part("t", 0)

	fb := newFakeBackend()
	fb.registerBroker("10.0.0.1", 9092)
	gs := NewServer(fb, Options{Logger: testLogger()})
	g := fb.group("g")

	for round := range 50 {
		ctx, cancel := context.WithCancel(context.Background())
		p.setHold(true)
		call := s.Call(ctx, testCallInfo, callProduce(9, -1, testBatch(t, 1, 10, 1000)))
		p.setHold(false)
		cancel()
		resp, err := finishWithin(t, call)
		if err != nil {
			t.Fatal(err)
		}
		if sp := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]; sp.ErrorCode != 0 || sp.BaseOffset != int64(round) {
			t.Fatalf("round %d: produce answered error %d offset %d", round, sp.ErrorCode, sp.BaseOffset)
		}

		ctx, cancel = context.WithCancel(context.Background())
		g.setPark(true)
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 7
		req.Group = "g"
		call = gs.Call(ctx, testCallInfo, req)
		for _, r := range g.setPark(false) {
			g.reply(r, g.cannedGroupAnswer(r.Req))
		}
		cancel()
		resp, err = finishWithin(t, call)
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.(*kmsg.OffsetFetchResponse).ErrorCode; code != 0 {
			t.Fatalf("round %d: offset fetch answered error %d", round, code)
		}
	}
}

// TestCallRefusals covers the other ways a connection would close.
func TestCallRefusals(t *testing.T) {
	t.Run("acks=0 produce answers nothing", func(t *testing.T) {
		b := newDPBackend(t, map[string]int{"t": 1})
		s := newDPServer(b)
		resp, err := finishWithin(t, s.Call(context.Background(), testCallInfo, callProduce(9, 0, testBatch(t, 1, 10, 1000))))
		if resp != nil || err != nil {
			t.Fatalf("acks=0: %v, %v; want no response", resp, err)
		}
		// A failed acks=0 produce closes the connection instead.
		resp, err = finishWithin(t, s.Call(context.Background(), testCallInfo, callProduce(9, 0, []byte{1, 2, 3})))
		if resp != nil || !errors.Is(err, ErrConnectionClosed) || errors.Is(err, ErrUnsupported) {
			t.Fatalf("failed acks=0: %v, %v; want ErrConnectionClosed", resp, err)
		}
	})
	t.Run("oversized request", func(t *testing.T) {
		fb := newFakeBackend()
		fb.setLimits(func(l *Limits) { l.SocketRequestMaxBytes = 64 })
		s := NewServer(fb, Options{Logger: testLogger()})
		_, err := s.Call(context.Background(), testCallInfo, callProduce(9, 1, make([]byte, 100))).Finish()
		if !errors.Is(err, ErrConnectionClosed) {
			t.Fatalf("oversized: %v; want ErrConnectionClosed", err)
		}
	})
	t.Run("finish twice", func(t *testing.T) {
		s := NewServer(newFakeBackend(), Options{Logger: testLogger()})
		call := s.Call(context.Background(), testCallInfo, kmsg.NewPtrApiVersionsRequest())
		if _, err := call.Finish(); err != nil {
			t.Fatal(err)
		}
		if _, err := call.Finish(); err == nil {
			t.Fatal("second Finish succeeded")
		}
	})
	t.Run("stopped server", func(t *testing.T) {
		s := NewServer(newFakeBackend(), Options{Logger: testLogger()})
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		_, err := s.Call(context.Background(), testCallInfo, kmsg.NewPtrApiVersionsRequest()).Finish()
		if !errors.Is(err, ErrServerClosed) {
			t.Fatalf("after Shutdown: %v; want ErrServerClosed", err)
		}
	})
	t.Run("panicking handler", func(t *testing.T) {
		s := NewServer(newFakeBackend(), Options{Logger: testLogger()})
		s.setHandler(apiVersionsKey, 0, 4, func(*Server, *request) reply { panic("boom") })
		_, err := s.Call(context.Background(), testCallInfo, kmsg.NewPtrApiVersionsRequest()).Finish()
		if !errors.Is(err, ErrHandlerPanicked) || !errors.Is(err, ErrConnectionClosed) {
			t.Fatalf("panic: %v; want ErrHandlerPanicked", err)
		}
		if s.Stats().Panics != 1 {
			t.Fatalf("%d panics counted, want 1", s.Stats().Panics)
		}
	})
}

// TestCallSeededFetchSessions checks that Options.Rand makes the fetch
// session ids a run hands out reproducible.
func TestCallSeededFetchSessions(t *testing.T) {
	ids := func() []int32 {
		b := newDPBackend(t, map[string]int{"t": 1})
		s := NewServer(b, Options{Rand: rand.New(rand.NewPCG(7, 8)), Clock: func() time.Time { return time.UnixMilli(testCallInfo.NowMs) }})
		var out []int32
		for range 3 {
			req := callFetch(12, 0)
			req.SessionEpoch = 0 // open a session
			resp, err := finishWithin(t, s.Call(context.Background(), testCallInfo, req))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, resp.(*kmsg.FetchResponse).SessionID)
		}
		return out
	}
	a, b := ids(), ids()
	if !slices.Equal(a, b) || slices.Contains(a, 0) {
		t.Fatalf("session ids %v then %v; want equal and nonzero", a, b)
	}
}
