package fetcher

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors"
	"github.com/troupe-io/troupe/partlog"
)

// fakeLeader is a Kafka listener on 127.0.0.1 that answers Fetch requests
// with what answer returns (nil: never answer).
type fakeLeader struct {
	t      *testing.T
	ln     net.Listener
	answer func(*kmsg.FetchRequest) *kmsg.FetchResponse

	mu    sync.Mutex
	reqs  []*kmsg.FetchRequest
	conns int
}

func newFakeLeader(t *testing.T, answer func(*kmsg.FetchRequest) *kmsg.FetchResponse) *fakeLeader {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &fakeLeader{t: t, ln: ln, answer: answer}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.mu.Lock()
			l.conns++
			l.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				l.serve(c)
			}()
		}
	}()
	return l
}

func (l *fakeLeader) addr() string { return l.ln.Addr().String() }

func (l *fakeLeader) serve(c net.Conn) {
	for {
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		b := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		r := kbin.Reader{Src: b}
		key, version, corr := r.Int16(), r.Int16(), r.Int32()
		r.NullableString()
		if key != 1 {
			l.t.Errorf("request key %d, want Fetch", key)
			return
		}
		req := kmsg.NewPtrFetchRequest()
		req.Version = version
		if req.IsFlexible() {
			for n := r.Uvarint(); n > 0; n-- {
				r.Uvarint()
				r.Span(int(r.Uvarint()))
			}
		}
		if err := req.ReadFrom(r.Src); err != nil {
			l.t.Errorf("decode fetch: %v", err)
			return
		}
		l.mu.Lock()
		l.reqs = append(l.reqs, req)
		l.mu.Unlock()
		resp := l.answer(req)
		if resp == nil {
			// Park: the client gives up on its own.
			if _, err := io.Copy(io.Discard, c); err != nil {
				return
			}
			return
		}
		resp.Version = version
		out := binary.BigEndian.AppendUint32(nil, 0)
		out = binary.BigEndian.AppendUint32(out, uint32(corr))
		out = append(out, 0) // no header tags (flexible)
		out = resp.AppendTo(out)
		binary.BigEndian.PutUint32(out, uint32(len(out)-4))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

func (l *fakeLeader) requests() []*kmsg.FetchRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*kmsg.FetchRequest(nil), l.reqs...)
}

// fakePartition is a follower partition: it answers FollowerState with
// its state and takes each fetched answer by moving its fetch offset by
// the number of record bytes (a stand-in for records).
type fakePartition struct {
	mu      sync.Mutex
	st      actors.FollowerState
	fetched []actors.FollowerFetchedRequest // Records copied
	asked   int
}

func (p *fakePartition) FollowerState(r actors.FollowerStateRequest) {
	p.mu.Lock()
	p.asked++
	st := p.st
	p.mu.Unlock()
	st.Tag = r.Tag
	r.Reply <- st
}

func (p *fakePartition) FollowerFetched(r actors.FollowerFetchedRequest) {
	p.mu.Lock()
	c := r
	c.Records = append([]byte(nil), r.Records...)
	c.Reply = nil
	p.fetched = append(p.fetched, c)
	p.st.FetchOffset += int64(len(r.Records))
	st := p.st
	p.mu.Unlock()
	st.Tag = r.Tag
	r.Reply <- st
}

func (p *fakePartition) snapshot() (actors.FollowerState, []actors.FollowerFetchedRequest, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st, append([]actors.FollowerFetchedRequest(nil), p.fetched...), p.asked
}

// fetchAnswer answers every partition of req with records and a high
// watermark, or with code.
func fetchAnswer(req *kmsg.FetchRequest, code int16, records []byte, diverging *kmsg.FetchResponseTopicPartitionDivergingEpoch) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition, sp.ErrorCode, sp.HighWatermark, sp.LogStartOffset = rp.Partition, code, 100, 0
			if code == 0 {
				sp.RecordBatches = records
			}
			if diverging != nil {
				sp.DivergingEpoch = *diverging
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func newTestFetcher(t *testing.T, leaders map[int32]string) *Fetcher {
	f := New(Config{
		NodeID: 5, MaxWait: 50 * time.Millisecond, Backoff: 20 * time.Millisecond, RequestTimeout: 2 * time.Second,
		PartitionMaxBytes: 1000, ResponseMaxBytes: 5000,
		Addr:   func(id int32) (string, bool) { a, ok := leaders[id]; return a, ok },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	t.Cleanup(f.Close)
	return f
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var pid = partlog.LogID{Topic: "t", Partition: 3}

// TestFetcherFetchesAndAdvances: each fetch carries the replica id, the
// limits and the partition's position and epochs; answers reach the
// partition with the epoch and offset they were fetched at, and the next
// fetch starts where the partition says.
func TestFetcherFetchesAndAdvances(t *testing.T) {
	leader := newFakeLeader(t, func(req *kmsg.FetchRequest) *kmsg.FetchResponse {
		return fetchAnswer(req, 0, []byte("abcde"), nil)
	})
	f := newTestFetcher(t, map[int32]string{7: leader.addr()})
	p := &fakePartition{st: actors.FollowerState{Following: true, Leader: 7, LeaderEpoch: 3, FetchOffset: 10, LastFetchedEpoch: 2}}
	f.Follow(pid, 7, p)
	waitFor(t, "three fetches", func() bool { _, fetched, _ := p.snapshot(); return len(fetched) >= 3 })

	reqs := leader.requests()
	for i, req := range reqs[:3] {
		rp := req.Topics[0].Partitions[0]
		if req.Version != fetchVersion || req.ReplicaID != 5 || req.MaxWaitMillis != 50 || req.MaxBytes != 5000 ||
			req.SessionEpoch != -1 || req.Topics[0].Topic != "t" || rp.Partition != 3 || rp.PartitionMaxBytes != 1000 ||
			rp.CurrentLeaderEpoch != 3 || rp.FetchOffset != int64(10+5*i) {
			t.Fatalf("fetch %d: %+v partition %+v", i, req, rp)
		}
	}
	if rp := reqs[0].Topics[0].Partitions[0]; rp.LastFetchedEpoch != 2 {
		t.Fatalf("first fetch's last fetched epoch %d, want 2", rp.LastFetchedEpoch)
	}
	_, fetched, _ := p.snapshot()
	for i, r := range fetched[:3] {
		if string(r.Records) != "abcde" || r.LeaderEpoch != 3 || r.FetchOffset != int64(10+5*i) || r.HighWatermark != 100 || r.Diverging {
			t.Fatalf("delivery %d: %+v", i, r)
		}
	}
}

// TestFetcherHandsOverDivergenceAndOutOfRange: a DivergingEpoch and
// OFFSET_OUT_OF_RANGE go to the partition (it truncates); other errors
// do not, and make the fetcher ask the partition afresh after a pause.
func TestFetcherHandsOverDivergenceAndOutOfRange(t *testing.T) {
	var mu sync.Mutex
	answers := []func(*kmsg.FetchRequest) *kmsg.FetchResponse{
		func(r *kmsg.FetchRequest) *kmsg.FetchResponse {
			return fetchAnswer(r, 0, nil, &kmsg.FetchResponseTopicPartitionDivergingEpoch{Epoch: 1, EndOffset: 4})
		},
		func(r *kmsg.FetchRequest) *kmsg.FetchResponse {
			return fetchAnswer(r, kerr.OffsetOutOfRange.Code, nil, nil)
		},
		func(r *kmsg.FetchRequest) *kmsg.FetchResponse {
			return fetchAnswer(r, kerr.NotLeaderForPartition.Code, nil, nil)
		},
	}
	leader := newFakeLeader(t, func(req *kmsg.FetchRequest) *kmsg.FetchResponse {
		mu.Lock()
		defer mu.Unlock()
		a := answers[0]
		if len(answers) > 1 {
			answers = answers[1:]
		}
		return a(req)
	})
	f := newTestFetcher(t, map[int32]string{7: leader.addr()})
	p := &fakePartition{st: actors.FollowerState{Following: true, Leader: 7, LeaderEpoch: 3, FetchOffset: 10}}
	f.Follow(pid, 7, p)
	waitFor(t, "the refused partition asked again", func() bool { _, fetched, asked := p.snapshot(); return len(fetched) == 2 && asked >= 2 })
	_, fetched, _ := p.snapshot()
	if d := fetched[0]; !d.Diverging || d.DivergingEpoch != 1 || d.DivergingEndOffset != 4 || d.ErrorCode != 0 {
		t.Fatalf("diverging answer delivered as %+v", d)
	}
	if o := fetched[1]; o.ErrorCode != kerr.OffsetOutOfRange.Code || o.Diverging || o.LogStartOffset != 0 || o.HighWatermark != 100 {
		t.Fatalf("out of range answer delivered as %+v", o)
	}
}

// TestFetcherFollowUnfollowPauseClose: a partition moves between leaders,
// stops being fetched when unfollowed or paused, and Close ends a fetch
// parked on a leader that never answers.
func TestFetcherFollowUnfollowPauseClose(t *testing.T) {
	answering := newFakeLeader(t, func(req *kmsg.FetchRequest) *kmsg.FetchResponse { return fetchAnswer(req, 0, []byte("x"), nil) })
	silent := newFakeLeader(t, func(*kmsg.FetchRequest) *kmsg.FetchResponse { return nil })
	f := newTestFetcher(t, map[int32]string{1: answering.addr(), 2: silent.addr()})
	p := &fakePartition{st: actors.FollowerState{Following: true, Leader: 1, LeaderEpoch: 1}}
	f.Follow(pid, 1, p)
	waitFor(t, "fetching from 1", func() bool { _, fetched, _ := p.snapshot(); return len(fetched) > 0 })

	f.Pause(true)
	_, before, _ := p.snapshot()
	time.Sleep(150 * time.Millisecond)
	if _, after, _ := p.snapshot(); len(after) != len(before) {
		t.Fatalf("paused, yet %d more answers were delivered", len(after)-len(before))
	}
	f.Pause(false)
	waitFor(t, "fetching again", func() bool { _, after, _ := p.snapshot(); return len(after) > len(before) })

	// Leadership moves to 2, which never answers: nothing more arrives.
	p.mu.Lock()
	p.st.Leader, p.st.LeaderEpoch = 2, 2
	p.mu.Unlock()
	f.Follow(pid, 2, p)
	if l, ok := f.Leader(pid); !ok || l != 2 {
		t.Fatalf("following %d %v, want 2", l, ok)
	}
	waitFor(t, "a fetch parked on 2", func() bool { return len(silent.requests()) > 0 })
	if rp := silent.requests()[0].Topics[0].Partitions[0]; rp.CurrentLeaderEpoch != 2 {
		t.Fatalf("fetch from the new leader at epoch %d", rp.CurrentLeaderEpoch)
	}
	f.Unfollow(pid)
	if _, ok := f.Leader(pid); ok {
		t.Fatal("still following after Unfollow")
	}
	f.Follow(pid, 2, p)
	start := time.Now()
	f.Close()
	if el := time.Since(start); el > time.Second {
		t.Fatalf("Close took %v with a fetch parked", el)
	}
}

// TestConnRefusesOversizedFrames: a response larger than the frame limit
// fails before anything is allocated for it.
func TestConnRefusesOversizedFrames(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	go func() {
		var size [4]byte
		if _, err := io.ReadFull(server, size[:]); err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, server, int64(binary.BigEndian.Uint32(size[:]))); err != nil {
			return
		}
		_, _ = server.Write(binary.BigEndian.AppendUint32(nil, 1<<30))
	}()
	c := newConn(client, "test", 1<<20, 1<<20)
	err := c.roundTrip(kmsg.NewPtrFetchRequest(), kmsg.NewPtrFetchResponse(), time.Now().Add(2*time.Second))
	if err == nil || cap(c.rbuf) != 0 {
		t.Fatalf("got %v with a %d-byte buffer, want errFrameTooLarge and no buffer", err, cap(c.rbuf))
	}
}

// blackhole is a partition whose actor is gone: it never answers.
type blackhole struct{ fakePartition }

func (*blackhole) FollowerFetched(actors.FollowerFetchedRequest) {}

// TestFetcherDoesNotWaitForUnfollowed: a partition unfollowed while the
// fetcher waits for its answer (its actor stopped) no longer holds up
// the other partitions fetched from the same leader.
func TestFetcherDoesNotWaitForUnfollowed(t *testing.T) {
	leader := newFakeLeader(t, func(req *kmsg.FetchRequest) *kmsg.FetchResponse { return fetchAnswer(req, 0, []byte("x"), nil) })
	f := newTestFetcher(t, map[int32]string{1: leader.addr()})
	live := &fakePartition{st: actors.FollowerState{Following: true, Leader: 1, LeaderEpoch: 1}}
	gone := &blackhole{fakePartition{st: actors.FollowerState{Following: true, Leader: 1, LeaderEpoch: 1}}}
	other := partlog.LogID{Topic: "t", Partition: 4}
	f.Follow(pid, 1, live)
	f.Follow(other, 1, gone)
	waitFor(t, "a round waiting on the gone partition", func() bool {
		for _, r := range leader.requests() {
			if len(r.Topics[0].Partitions) == 2 {
				return true
			}
		}
		return false
	})
	time.Sleep(50 * time.Millisecond)
	_, before, _ := live.snapshot()
	start := time.Now()
	f.Unfollow(other)
	waitFor(t, "fetching again for the live partition", func() bool { _, after, _ := live.snapshot(); return len(after) > len(before)+2 })
	if el := time.Since(start); el > time.Second {
		t.Fatalf("the live partition waited %v for an unfollowed one", el)
	}
}
