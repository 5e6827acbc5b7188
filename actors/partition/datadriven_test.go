package partition

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
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
//	produce token=T records=N [pid=P epoch=E seq=S] [acks=A] [now=MS]
//	synced end=N | synced err=TEXT
//	append-failed offset=N
//	fetch token=T offset=N
//	watch token=T offset=N deadline=MS
//	list-offsets token=T ts=N
//	delete-records token=T offset=N
//	log-start-moved offset=N
//	tick now=MS
//	state
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
				}
				c = New(s, 0)
				c.Step(Recovered{LogStart: arg("log-start", 0), LogEnd: arg("log-end", 0)})
			case "produce":
				pid := arg("pid", -1)
				b, sum := records(t, int(arg("records", 1)), pid, int16(arg("epoch", 0)), int32(arg("seq", -1)))
				c.Step(Produce{Token: token(), Records: b, Summary: sum, Acks: int16(arg("acks", -1)), NowMs: arg("now", 0)})
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
		if r.ErrorCode != 0 {
			fmt.Fprintf(&b, "read %v: error=%d hw=%d log-start=%d\n", r.Token, r.ErrorCode, r.HighWatermark, r.LogStartOffset)
			continue
		}
		fmt.Fprintf(&b, "read %v: offset=%d limit=%d hw=%d lso=%d log-start=%d\n", r.Token, r.Offset, r.Limit, r.HighWatermark, r.LastStableOffset, r.LogStartOffset)
	}
	for _, l := range rd.Lookups {
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
	if b.Len() == 0 {
		return "ok\n"
	}
	return b.String()
}
