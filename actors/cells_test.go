package actors

import (
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/actors/group"
	"github.com/troupe-io/troupe/actors/partition"
	"github.com/troupe-io/troupe/batch"
	"github.com/troupe-io/troupe/internal/mutation"
	"github.com/troupe-io/troupe/partlog"
)

// These tests host cells by hand, as the simulator does: one goroutine,
// a clock the test moves, fsyncs run when the test says, no protoactor.

// cellEnv is a CellEnv and GroupEnv whose time, timer and fsyncs the test
// drives.
type cellEnv struct {
	now     int64
	timerAt int64
	// inline: fsync at once; otherwise syncs counts requests waiting for
	// the test to call Sync.
	inline bool
	syncs  int
	alters []partition.AlterISRResult
}

func (e *cellEnv) NowMs() int64                               { return e.now }
func (e *cellEnv) SetTimer(atMs int64)                        { e.timerAt = atMs }
func (e *cellEnv) DeliverAlterISR(r partition.AlterISRResult) { e.alters = append(e.alters, r) }
func (e *cellEnv) RequestSync() bool {
	if e.inline {
		return true
	}
	e.syncs++
	return false
}

// cellNode is one broker's store and cell.
type cellNode struct {
	t     *testing.T
	id    int32
	store *partlog.Store
	env   *cellEnv
	cell  *PartitionCell
}

func newCellNode(t *testing.T, id int32, dir string, inline bool) *cellNode {
	t.Helper()
	store, err := partlog.Open(partlog.Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	n := &cellNode{t: t, id: id, store: store, env: &cellEnv{now: 1_000_000, timerAt: -1, inline: inline}}
	t.Cleanup(n.close)
	return n
}

func (n *cellNode) open(id partlog.LogID, role ReplicaRole) *PartitionCell {
	n.t.Helper()
	cfg := PartitionConfig{Log: partlog.DefaultLogConfig(), Core: partition.Settings{AckAfterSync: true}}
	c, err := OpenReplicaCell(n.store, id, cfg, n.id, role, nil, n.env, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	n.cell = c
	return c
}

func (n *cellNode) close() {
	if n.cell != nil {
		if err := n.cell.Close(); err != nil {
			n.t.Errorf("close cell: %v", err)
		}
		n.cell = nil
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			n.t.Errorf("close store: %v", err)
		}
		n.store = nil
	}
}

// sync runs the fsyncs the cell asked for.
func (n *cellNode) sync() {
	for n.env.syncs > 0 {
		n.env.syncs = 0
		n.cell.Sync()
	}
}

// received returns what ch holds, if anything, without waiting: a cell
// answers during the call that decides the answer.
func received[T any](ch <-chan T) (T, bool) {
	select {
	case v := <-ch:
		return v, true
	default:
		var zero T
		return zero, false
	}
}

func mustReceive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	v, ok := received(ch)
	if !ok {
		t.Fatalf("no answer: %s", what)
	}
	return v
}

// produceTo hands c a batch of n records.
func produceTo(t *testing.T, c *PartitionCell, acks int16, n int, deadlineMs int64) <-chan ProduceResult {
	t.Helper()
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{Value: []byte("v")}
	}
	b, err := batch.BuildBatch(batch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := batch.Validate(b, c.BatchOptions())
	if err != nil {
		t.Fatal(err)
	}
	reply := make(chan ProduceResult, 1)
	c.Handle(&ProduceRequest{Records: b, Acks: acks, Reply: reply, DeadlineMs: deadlineMs,
		Summary: BatchSummary{NumBatches: 1, NumRecords: sum.NumRecords, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, LastSequence: -1}})
	return reply
}

// cellFetchRound plays the replica fetcher once for follower f of leader
// l: the follower's state, the leader's answer, and the follower's state
// once it took the answer and fsynced what it appended.
func cellFetchRound(t *testing.T, l, f *cellNode) (FetchResult, FollowerState) {
	t.Helper()
	sc := make(chan FollowerState, 1)
	f.cell.Handle(&FollowerStateRequest{Reply: sc})
	st := mustReceive(t, sc, "follower state")
	if !st.Following {
		t.Fatalf("the follower does not follow: %+v", st)
	}
	fc := make(chan FetchResult, 1)
	l.cell.Handle(&ReplicaFetchRequest{ReplicaID: f.id, CurrentLeaderEpoch: st.LeaderEpoch, FetchOffset: st.FetchOffset,
		LastFetchedEpoch: st.LastFetchedEpoch, MaxBytes: 1 << 20, Reply: fc})
	res := mustReceive(t, fc, "replica fetch")
	records, err := res.Records.AppendTo(nil)
	res.Records.Release()
	if err != nil {
		t.Fatal(err)
	}
	f.cell.Handle(&FollowerFetchedRequest{LeaderEpoch: st.LeaderEpoch, FetchOffset: st.FetchOffset,
		ErrorCode: res.ErrorCode, HighWatermark: res.HighWatermark, LogStartOffset: res.LogStartOffset,
		Diverging: res.Diverging, DivergingEpoch: res.DivergingEpoch, DivergingEndOffset: res.DivergingEndOffset,
		Records: records, Reply: sc})
	if len(records) > 0 && !f.env.inline {
		// Appended but not durable: the fetcher is not answered yet.
		if st, ok := received(sc); ok {
			t.Fatalf("the follower answered before its appends were durable: %+v", st)
		}
	}
	f.sync()
	next := mustReceive(t, sc, "follower fetched")
	if next.Err != nil {
		t.Fatalf("follower refused the fetched batches: %v", next.Err)
	}
	return res, next
}

// cellLog reads a cell's whole log.
func cellLog(t *testing.T, c *PartitionCell) []byte {
	t.Helper()
	return readWholeLog(t, c.Status().LogStart, func(r LocalReadRequest) { c.Handle(&r) })
}

// TestCellAcksAllAfterFollowerFetched: an acks=-1 produce to a leader
// cell is answered only when the follower cell's next fetch reports the
// records durable, during the leader's handling of that fetch; one the
// follower never fetches times out when the test's clock reaches its
// deadline and the leader's timer fires.
func TestCellAcksAllAfterFollowerFetched(t *testing.T) {
	a, b := newCellNode(t, 1, t.TempDir(), false), newCellNode(t, 2, t.TempDir(), false)
	role := ReplicaRole{Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}
	leader, follower := a.open(testID, role), b.open(testID, role)
	if s := leader.Status(); !s.Leader || s.LeaderEpoch != 1 {
		t.Fatalf("leader cell: %+v", s)
	}

	acked := produceTo(t, leader, -1, 3, a.env.now+5000)
	if a.env.syncs == 0 {
		t.Fatal("the leader appended without asking for an fsync")
	}
	a.sync()
	if r, ok := received(acked); ok {
		t.Fatalf("acks=-1 answered with only the leader durable: %+v", r)
	}

	res, st := cellFetchRound(t, a, b)
	if res.ErrorCode != 0 || res.LogEndOffset != 3 || st.FetchOffset != 3 || st.LastFetchedEpoch != 1 {
		t.Fatalf("first round: fetched %+v; follower now %+v", res, st)
	}
	if r, ok := received(acked); ok {
		t.Fatalf("acks=-1 answered before the follower reported the records: %+v", r)
	}
	res, _ = cellFetchRound(t, a, b) // reports offset 3
	if r := mustReceive(t, acked, "acks=-1 after the follower's fetch"); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("acks=-1: %+v", r)
	}
	if res.HighWatermark != 3 || follower.Status().HighWatermark != 3 || leader.Status().HighWatermark != 3 {
		t.Fatalf("high watermark: leader answered %d; leader %+v, follower %+v", res.HighWatermark, leader.Status(), follower.Status())
	}
	if !slices.Equal(cellLog(t, leader), cellLog(t, follower)) {
		t.Fatal("the replicas' logs differ")
	}

	// Not fetched: the leader's timer is set by its deadline, and the
	// tick past it answers REQUEST_TIMED_OUT.
	deadline := a.env.now + 1000
	late := produceTo(t, leader, -1, 1, deadline)
	a.sync()
	if a.env.timerAt < 0 || a.env.timerAt > deadline {
		t.Fatalf("leader timer at %d, want set by the produce deadline %d", a.env.timerAt, deadline)
	}
	a.env.now = deadline
	leader.Tick()
	if r := mustReceive(t, late, "timed-out produce"); r.ErrorCode != kerr.RequestTimedOut.Code {
		t.Fatalf("unfetched acks=-1 past its deadline: %+v", r)
	}
}

// TestCellSkipTruncationKeepsDivergedTail: a former leader's tail that
// the new leader never had is cut on the DivergingEpoch answer, unless
// the simulator's SkipTruncation mutation is on, which keeps it.
func TestCellSkipTruncationKeepsDivergedTail(t *testing.T) {
	for _, c := range []struct {
		name    string
		mut     mutation.Kind
		wantEnd int64
	}{
		{"truncates", mutation.None, 5},
		{"skip-truncation keeps the tail", mutation.SkipTruncation, 8},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := newCellNode(t, 1, t.TempDir(), true), newCellNode(t, 2, t.TempDir(), true)
			epoch1 := ReplicaRole{Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}
			pa, pb := a.open(testID, epoch1), b.open(testID, epoch1)
			mustReceive(t, produceTo(t, pa, 1, 5, 0), "produce")
			cellFetchRound(t, a, b)
			mustReceive(t, produceTo(t, pa, 1, 3, 0), "produce") // offsets 5-7: only on a
			tail := cellLog(t, pa)

			epoch2 := ReplicaRole{Leader: 2, LeaderEpoch: 2, PartitionEpoch: 2, Replicas: []int32{1, 2}, ISR: []int32{2}}
			pb.Handle(&epoch2)
			pa.Handle(&epoch2)
			mustReceive(t, produceTo(t, pb, 1, 2, 0), "produce") // offsets 5-6 at epoch 2

			prev := mutation.Set(c.mut)
			defer mutation.Set(prev)
			res, st := cellFetchRound(t, b, a)
			if !res.Diverging || res.DivergingEpoch != 1 || res.DivergingEndOffset != 5 {
				t.Fatalf("the new leader answered %+v, want diverging epoch 1 ending at 5", res)
			}
			if st.FetchOffset != c.wantEnd || pa.Status().LogEnd != c.wantEnd {
				t.Fatalf("after the diverging answer the old leader is at %+v (%+v), want its log to end at %d", st, pa.Status(), c.wantEnd)
			}
			if kept := slices.Equal(cellLog(t, pa), tail); kept != (c.mut == mutation.SkipTruncation) {
				t.Fatalf("diverged tail kept: %v", kept)
			}
		})
	}
}

// topicView is a fixed metadata image for group cores.
type topicView map[string]int32

func (v topicView) TopicByName(name string) ([16]byte, int32, bool) {
	n, ok := v[name]
	return [16]byte{byte(len(name))}, n, ok
}
func (v topicView) TopicByID([16]byte) (string, int32, bool) { return "", 0, false }
func (v topicView) TopicNames() []string                     { return slices.Sorted(maps.Keys(v)) }

// TestGroupCellsReloadCommittedOffsets: a commit through GroupCells is
// answered once its acks=-1 write to the offsets partition's cell is
// durable and delivered; after a restart of the partition, a fresh
// GroupCells loads the partition and OffsetFetch answers the offsets.
func TestGroupCellsReloadCommittedOffsets(t *testing.T) {
	dir := t.TempDir()
	offsets := partlog.LogID{Topic: "__consumer_offsets", Partition: 0}
	role := ReplicaRole{Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: []int32{1}, ISR: []int32{1}}
	n := newCellNode(t, 1, dir, false)
	n.open(offsets, role)

	newGroups := func(n *cellNode) *GroupCells {
		rng := rand.New(rand.NewPCG(1, 2))
		return NewGroupCells(GroupCellsConfig{
			Settings: group.DefaultSettings(), Partitions: 1,
			OffsetsPartition: func(p int32) *PartitionCell {
				if p == 0 {
					return n.cell
				}
				return nil
			},
			Topics:      func() group.TopicView { return topicView{"t": 3} },
			NewMemberID: MemberIDs(rng.Uint64),
		}, n.env)
	}
	gs := newGroups(n)
	if err := gs.Handle("g", GroupRequest{}); err == nil || !strings.Contains(err.Error(), kerr.NotCoordinator.Message) {
		t.Fatalf("a request before the load: %v, want NOT_COORDINATOR", err)
	}
	if err := gs.Load(0, 1); err != nil || !gs.Loaded(0) {
		t.Fatalf("load an empty offsets partition: %v", err)
	}

	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version, commit.Group, commit.Generation = 8, "g", -1
	for p, off := range []int64{42, 7} {
		rt := kmsg.NewOffsetCommitRequestTopic()
		if p == 0 {
			rt.Topic = "t"
			commit.Topics = append(commit.Topics, rt)
		}
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = int32(p), off
		commit.Topics[0].Partitions = append(commit.Topics[0].Partitions, rp)
	}
	replies := make(chan group.Reply, 4)
	if err := gs.Handle("g", GroupRequest{Req: group.Request{Tag: 7, ClientID: "c", Req: commit}, Reply: replies}); err != nil {
		t.Fatal(err)
	}
	if gs.DeliverAppended() != 0 {
		t.Fatal("the write was answered before it was durable")
	}
	if r, ok := received(replies); ok {
		t.Fatalf("commit answered before its write: %+v", r)
	}
	n.sync()

	if gs.DeliverAppended() != 1 {
		t.Fatal("the durable write's answer was not delivered")
	}
	r := mustReceive(t, replies, "offset commit")
	resp, ok := r.Resp.(*kmsg.OffsetCommitResponse)
	if r.Tag != 7 || !ok || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 ||
		resp.Topics[0].Partitions[0].ErrorCode != 0 || resp.Topics[0].Partitions[1].ErrorCode != 0 {
		t.Fatalf("commit answered %+v", r)
	}

	// A member id comes from the injected source: the same seed draws
	// the same ids (one per request; the commit took the first).
	join := kmsg.NewPtrJoinGroupRequest()
	join.Version, join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = 4, "h", "consumer", 30000, 30000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
	if err := gs.Handle("h", GroupRequest{Req: group.Request{Tag: 8, ClientID: "c", Req: join}, Reply: replies}); err != nil {
		t.Fatal(err)
	}
	jr := mustReceive(t, replies, "join").Resp.(*kmsg.JoinGroupResponse)
	ids := MemberIDs(rand.New(rand.NewPCG(1, 2)).Uint64)
	ids("c")
	if want := ids("c"); jr.ErrorCode != kerr.MemberIDRequired.Code || jr.MemberID != want {
		t.Fatalf("join answered %d %q, want MEMBER_ID_REQUIRED with %q", jr.ErrorCode, jr.MemberID, want)
	}

	gs.Close()
	n.close()

	// Restart: the partition's log has the commit; a new coordinator
	// replays it.
	n = newCellNode(t, 1, dir, false)
	n.open(offsets, role)
	gs = newGroups(n)
	if err := gs.Load(0, 1); err != nil {
		t.Fatal(err)
	}
	if l := gs.List(); len(l) != 1 || l[0].GroupID != "g" {
		t.Fatalf("groups after the load: %+v", l)
	}
	if err := gs.Handle("g", GroupRequest{Req: group.Request{Tag: 9, Req: &group.FetchOffsets{Version: 8}}, Reply: replies}); err != nil {
		t.Fatal(err)
	}
	fr := mustReceive(t, replies, "offset fetch")
	got, ok := fr.Resp.(*kmsg.OffsetFetchResponseGroup)
	if fr.Tag != 9 || !ok || got.ErrorCode != 0 || len(got.Topics) != 1 || got.Topics[0].Topic != "t" || len(got.Topics[0].Partitions) != 2 {
		t.Fatalf("offset fetch answered %+v", fr)
	}
	for i, want := range []int64{42, 7} {
		if p := got.Topics[0].Partitions[i]; p.Partition != int32(i) || p.Offset != want || p.ErrorCode != 0 {
			t.Errorf("partition %d: %+v, want offset %d", i, p, want)
		}
	}

	// Losing the leadership: requests are refused, not queued.
	gs.Unload(0)
	if err := gs.Handle("g", GroupRequest{Req: group.Request{Req: &group.FetchOffsets{Version: 8}}, Reply: replies}); err == nil {
		t.Fatal("a request after the unload was taken")
	}
}
