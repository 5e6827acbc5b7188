package partition

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/troupe-io/troupe/batch"
)

// TestDataDriven runs the scripts in testdata/: each command steps the core
// (or starts a new one) and prints the Ready it produced, in etcd raft's
// interaction-test style. Rewrite the expectations after a deliberate
// change with
//
//	go test ./actors/partition -run TestDataDriven -rewrite
//
// and review the diff.
//
// Commands:
//
//	new [ack-after-sync] [flush-messages=N] [flush-ms=N] [log-append-time]
//	    [expiration-ms=N] [snapshot-ms=N] [retention-ms=N] [log-start=N] [log-end=N]
//	    [replica=ID [hw=N]] [min-isr=N] [lag-ms=N]
//	produce token=T records=N [pid=P epoch=E seq=S] [acks=A] [now=MS] [deadline=MS]
//	synced end=N | synced err=TEXT
//	append-failed offset=N
//	fetch token=T offset=N
//	watch token=T offset=N deadline=MS
//	list-offsets token=T ts=N
//	delete-records token=T offset=N
//	log-start-moved offset=N
//	tick now=MS
//	state
//
// Replication (replica=ID makes a NewReplica core on broker ID):
//
//	become-leader epoch=E pepoch=P replicas=(1,2,3) isr=(1,2,3) [now=MS]
//	become-follower leader=L epoch=E pepoch=P replicas=(1,2,3)
//	partition-changed epoch=E pepoch=P replicas=(...) isr=(...)
//	alter-isr-result [seq=N] [error=CODE] epoch=E pepoch=P [isr=(...)] [now=MS]
//	    (seq defaults to the pending change's)
//	replica-fetch token=T replica=R offset=N [cur-epoch=E] [now=MS]
//	    [last-epoch=E lookup=(EPOCH,END) [latest=E]]
//	replica-watch token=T offset=N deadline=MS
//	follower-append token=T epoch=E [fetch-offset=N] [hw=N] [log-start=N] [now=MS]
//	    (fetch-offset defaults to the log end)
//	    one batch a line: base=N records=K [pid=P epoch=E seq=S]
//	    [leader-epoch=E] [cut] [corrupt]
//	truncate offset=N
//	truncate-fully offset=N
//	repl-state
//	next-tick
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var c *Core
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			if td.Cmd != "new" && c == nil {
				t.Fatalf("%s: %s before new", td.Pos, td.Cmd)
			}
			arg := func(key string, def int64) int64 {
				v := def
				td.MaybeScanArgs(t, key, &v)
				return v
			}
			token := func() string {
				var s string
				td.ScanArgs(t, "token", &s)
				return s
			}
			ids := func(key string) []int32 {
				var v []int
				td.MaybeScanArgs(t, key, &v)
				out := make([]int32, len(v))
				for i, x := range v {
					out[i] = int32(x)
				}
				return out
			}
			switch td.Cmd {
			case "new":
				s := Settings{
					AckAfterSync:         td.HasArg("ack-after-sync"),
					FlushMessages:        arg("flush-messages", 0),
					FlushMs:              arg("flush-ms", 0),
					LogAppendTime:        td.HasArg("log-append-time"),
					ProducerExpirationMs: arg("expiration-ms", 0),
					SnapshotIntervalMs:   arg("snapshot-ms", 0),
					RetentionCheckMs:     arg("retention-ms", 0),
					MinInsyncReplicas:    int32(arg("min-isr", 0)),
					ReplicaLagTimeMaxMs:  arg("lag-ms", 0),
				}
				if td.HasArg("replica") {
					c = NewReplica(s, int32(arg("replica", 0)))
				} else {
					c = New(s, 0)
				}
				c.Step(Recovered{LogStart: arg("log-start", 0), LogEnd: arg("log-end", 0), HighWatermark: arg("hw", 0)})
			case "produce":
				pid := arg("pid", -1)
				b, sum := records(t, int(arg("records", 1)), pid, int16(arg("epoch", 0)), int32(arg("seq", -1)))
				c.Step(Produce{Token: token(), Records: b, Summary: sum, Acks: int16(arg("acks", -1)), NowMs: arg("now", 0), DeadlineMs: arg("deadline", 0)})
			case "synced":
				var e string
				td.MaybeScanArgs(t, "err", &e)
				c.Step(Synced{DurableEnd: arg("end", 0), Err: e})
			case "append-failed":
				c.Step(AppendFailed{Offset: arg("offset", 0), Err: "injected"})
			case "fetch":
				c.Step(Fetch{Token: token(), Offset: arg("offset", 0), MaxBytes: 1 << 20})
			case "watch":
				c.Step(Watch{Token: token(), Offset: arg("offset", 0), DeadlineMs: arg("deadline", 0)})
			case "list-offsets":
				c.Step(ListOffsets{Token: token(), Timestamp: arg("ts", 0)})
			case "delete-records":
				c.Step(DeleteRecords{Token: token(), Offset: arg("offset", 0)})
			case "log-start-moved":
				c.Step(LogStartMoved{LogStart: arg("offset", 0)})
			case "tick":
				c.Step(Tick{NowMs: arg("now", 0)})
			case "state":
				return fmt.Sprintf("log-start=%d hw=%d durable=%d log-end=%d producers=%d pending=%d watches=%d\n",
					c.logStart, c.hw, c.durableEnd, c.logEnd, len(c.producers), len(c.pending), len(c.watches))
			case "become-leader":
				c.Step(BecomeLeader{LeaderEpoch: int32(arg("epoch", 0)), PartitionEpoch: int32(arg("pepoch", 0)),
					Replicas: ids("replicas"), ISR: ids("isr"), NowMs: arg("now", 0)})
			case "become-follower":
				c.Step(BecomeFollower{Leader: int32(arg("leader", -1)), LeaderEpoch: int32(arg("epoch", 0)),
					PartitionEpoch: int32(arg("pepoch", 0)), Replicas: ids("replicas")})
			case "partition-changed":
				c.Step(PartitionChanged{LeaderEpoch: int32(arg("epoch", 0)), PartitionEpoch: int32(arg("pepoch", 0)),
					Replicas: ids("replicas"), ISR: ids("isr")})
			case "alter-isr-result":
				c.Step(AlterISRResult{Seq: uint64(arg("seq", int64(c.pendingSeq))), ErrorCode: int16(arg("error", 0)), LeaderEpoch: int32(arg("epoch", 0)),
					PartitionEpoch: int32(arg("pepoch", 0)), ISR: ids("isr"), NowMs: arg("now", 0)})
			case "replica-fetch":
				var lookup []int
				td.MaybeScanArgs(t, "lookup", &lookup)
				l := EpochLookup{Epoch: -1, EndOffset: -1, LatestEpoch: int32(arg("latest", -1))}
				if len(lookup) == 2 {
					l.Epoch, l.EndOffset = int32(lookup[0]), int64(lookup[1])
				}
				c.Step(ReplicaFetch{Token: token(), ReplicaID: int32(arg("replica", 0)), CurrentLeaderEpoch: int32(arg("cur-epoch", -1)),
					FetchOffset: arg("offset", 0), LastFetchedEpoch: int32(arg("last-epoch", -1)), Lookup: l,
					MaxBytes: 1 << 20, NowMs: arg("now", 0)})
			case "replica-watch":
				c.Step(ReplicaWatch{Token: token(), Offset: arg("offset", 0), DeadlineMs: arg("deadline", 0)})
			case "follower-append":
				c.Step(FollowerAppend{Token: token(), LeaderEpoch: int32(arg("epoch", 0)), FetchOffset: arg("fetch-offset", c.logEnd), Records: fetchedBatches(t, td.Pos, td.Input),
					HighWatermark: arg("hw", 0), LogStartOffset: arg("log-start", 0), NowMs: arg("now", 0)})
			case "truncate":
				c.Step(TruncateTo{Offset: arg("offset", 0)})
			case "truncate-fully":
				c.Step(TruncateFully{Offset: arg("offset", 0)})
			case "repl-state":
				return formatReplState(c)
			case "next-tick":
				return fmt.Sprintf("next-tick=%d\n", c.NextTickMs())
			default:
				t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
			}
			return formatReady(c.Ready())
		})
	})
}

// formatReady prints a Ready one output per line, in execution order.
func formatReady(rd Ready) string {
	var b strings.Builder
	for _, a := range rd.Appends {
		fmt.Fprintf(&b, "append %d..%d", a.BaseOffset, a.LastOffset)
		if a.LogAppendTime >= 0 {
			fmt.Fprintf(&b, " log-append-time=%d", a.LogAppendTime)
		}
		b.WriteString("\n")
	}
	if rd.Sync {
		b.WriteString("sync\n")
	}
	for _, r := range rd.Replies {
		if r.Result.ErrorCode != 0 {
			fmt.Fprintf(&b, "reply %v: error=%d (%s)\n", r.Token, r.Result.ErrorCode, r.Result.ErrorMessage)
			continue
		}
		fmt.Fprintf(&b, "reply %v: base=%d log-start=%d\n", r.Token, r.Result.BaseOffset, r.Result.LogStartOffset)
	}
	for _, r := range rd.Reads {
		if d := r.Diverging; d != nil {
			fmt.Fprintf(&b, "read %v: diverging epoch=%d end=%d hw=%d\n", r.Token, d.Epoch, d.EndOffset, r.HighWatermark)
			continue
		}
		if r.ErrorCode != 0 {
			fmt.Fprintf(&b, "read %v: error=%d hw=%d log-start=%d\n", r.Token, r.ErrorCode, r.HighWatermark, r.LogStartOffset)
			continue
		}
		fmt.Fprintf(&b, "read %v: offset=%d limit=%d hw=%d lso=%d log-start=%d\n", r.Token, r.Offset, r.Limit, r.HighWatermark, r.LastStableOffset, r.LogStartOffset)
	}
	for _, l := range rd.Lookups {
		if l.ErrorCode != 0 {
			fmt.Fprintf(&b, "lookup %v: error=%d\n", l.Token, l.ErrorCode)
			continue
		}
		if l.Resolved {
			fmt.Fprintf(&b, "lookup %v: offset=%d\n", l.Token, l.Offset)
		} else {
			fmt.Fprintf(&b, "lookup %v: index ts=%d limit=%d\n", l.Token, l.Timestamp, l.Limit)
		}
	}
	for _, d := range rd.Deletes {
		switch {
		case d.ErrorCode != 0:
			fmt.Fprintf(&b, "delete %v: error=%d low-watermark=%d\n", d.Token, d.ErrorCode, d.Offset)
		case d.NoOp:
			fmt.Fprintf(&b, "delete %v: nothing below %d\n", d.Token, d.Offset)
		default:
			fmt.Fprintf(&b, "delete %v: before %d\n", d.Token, d.Offset)
		}
	}
	for _, w := range rd.Wakes {
		fmt.Fprintf(&b, "wake %v\n", w)
	}
	if rd.Retention {
		fmt.Fprintf(&b, "retention now=%d\n", rd.RetentionNowMs)
	}
	if rd.Snapshot {
		b.WriteString("snapshot\n")
	}
	if a := rd.AlterISR; a != nil {
		fmt.Fprintf(&b, "alter-isr seq=%d epoch=%d pepoch=%d isr=%v\n", a.Seq, a.LeaderEpoch, a.PartitionEpoch, a.ISR)
	}
	for _, r := range rd.FollowerResults {
		if r.Err != nil {
			fmt.Fprintf(&b, "follower-append %v: error: %v (log-end=%d)\n", r.Token, r.Err, r.LogEnd)
			continue
		}
		fmt.Fprintf(&b, "follower-append %v: log-end=%d fetch-offset=%d\n", r.Token, r.LogEnd, r.FetchOffset)
	}
	if rd.FollowerFetchOffset != 0 {
		fmt.Fprintf(&b, "fetch-offset %d\n", rd.FollowerFetchOffset)
	}
	if rd.MoveLogStart != 0 {
		fmt.Fprintf(&b, "move-log-start %d\n", rd.MoveLogStart)
	}
	if b.Len() == 0 {
		return "ok\n"
	}
	return b.String()
}

// formatReplState prints the replication state: role, epochs, ISR and,
// on a leader, each follower as the leader sees it.
func formatReplState(c *Core) string {
	var b strings.Builder
	role := "follower"
	if c.IsLeader() {
		role = "leader"
	}
	fmt.Fprintf(&b, "%s leader=%d epoch=%d pepoch=%d replicas=%v isr=%v", role, c.leader, c.leaderEpoch, c.partitionEpoch, c.replicas, c.isr)
	if c.pendingISR != nil {
		fmt.Fprintf(&b, " pending-isr=%v", c.pendingISR)
		if c.alterStalled {
			b.WriteString(" (stalled)")
		}
	}
	fmt.Fprintf(&b, "\nhw=%d durable=%d log-end=%d fetch-offset=%d epoch-start=%d\n", c.hw, c.durableEnd, c.logEnd, c.FetchOffset(), c.epochStart)
	for _, f := range c.followers {
		fmt.Fprintf(&b, "follower %d: leo=%d caught-up=%d\n", f.id, f.leo, f.lastCaughtUpMs)
	}
	return b.String()
}

// fetchedBatches builds what a leader's log would return to a fetch: one
// batch per input line, with offsets and leader epoch as the leader
// assigned them. "cut" truncates a batch (a fetch's size limit),
// "corrupt" breaks its CRC.
func fetchedBatches(t *testing.T, pos, input string) []byte {
	var out []byte
	for _, line := range strings.Split(strings.TrimSpace(input), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		kv := map[string]int64{"records": 1, "pid": -1, "seq": -1, "leader-epoch": 0}
		var cut, corrupt bool
		for _, f := range strings.Fields(line) {
			k, v, ok := strings.Cut(f, "=")
			switch {
			case !ok && k == "cut":
				cut = true
			case !ok && k == "corrupt":
				corrupt = true
			case ok:
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("%s: %q: %v", pos, f, err)
				}
				kv[k] = n
			default:
				t.Fatalf("%s: unknown batch flag %q", pos, f)
			}
		}
		b, _ := records(t, int(kv["records"]), kv["pid"], int16(kv["epoch"]), int32(kv["seq"]))
		batch.AssignOffsets(b, kv["base"])
		batch.SetPartitionLeaderEpoch(b, int32(kv["leader-epoch"]))
		if corrupt {
			b[len(b)-1] ^= 0xff
		}
		if cut {
			b = b[:len(b)/2]
		}
		out = append(out, b...)
	}
	return out
}
