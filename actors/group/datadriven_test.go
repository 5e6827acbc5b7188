package group

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClassicDataDriven runs the scripts testdata/classic_*.txt (the
// classic protocol) and TestOffsetsDataDriven testdata/offsets_*.txt
// (committed offsets, deletion, expiry): each
// command steps the core and prints what it produced (replies by tag,
// then the append it asks for), in etcd raft's interaction-test style.
// Rewrite the expectations after a deliberate change with
//
//	go test ./actors/group -run 'Test(Classic|Offsets)DataDriven' -rewrite
//
// and review the diff.
//
// Commands (every request command takes tag=NAME and now=MS):
//
//	new [min-session=] [max-session=] [delay=] [max-size=] [retention=] [check=] [meta-max=]
//	topic name=T partitions=N
//	join member=M [new-id=ID] [instance=I] [session=] [rebalance=] [v=] [type=] [protocols=(range:t1+t2,...)] [raw-meta] [client=C]
//	                         (raw-meta: each protocol's metadata is its text, not a consumer subscription)
//	sync member=M gen=N [instance=I] [v=] [ptype=] [pname=] [assign=(m1:bytes,...)]
//	heartbeat member=M gen=N [instance=I] [v=]
//	leave member=M [v=] | leave members=(m1,...) [instances=(i1,...)] [v=]
//	commit [member=M] [gen=N] [instance=I] [v=] [retention=MS] offsets=(t:p:offset[:metadata],...)
//	fetch [topics=(t:p+p,...)] [stable] [v=] [member-epoch=N member-id=M]
//	offset-delete topics=(t:p+p,...)
//	describe [v=] [ops]
//	delete
//	appended [err=NAME]      complete the outstanding append
//	tick now=MS
//	state                    the core's state
//	restart                  a new core from the acknowledged records
func TestClassicDataDriven(t *testing.T) { runGroupScripts(t, "testdata/classic_*.txt") }

func TestOffsetsDataDriven(t *testing.T) { runGroupScripts(t, "testdata/offsets_*.txt") }

func runGroupScripts(t *testing.T, glob string) {
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files %s: %v", glob, err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var h *groupHarness
			datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
				if td.Cmd != "new" && h == nil {
					t.Fatalf("%s: %s before new", td.Pos, td.Cmd)
				}
				str := func(key, def string) string {
					s := def
					td.MaybeScanArgs(t, key, &s)
					return s
				}
				num := func(key string, def int64) int64 {
					v := def
					td.MaybeScanArgs(t, key, &v)
					return v
				}
				list := func(key string) []string {
					var l []string
					if td.HasArg(key) {
						td.ScanArgs(t, key, &l)
					}
					return l
				}
				optStr := func(key string) *string {
					if !td.HasArg(key) {
						return nil
					}
					s := str(key, "")
					return &s
				}
				if td.Cmd != "new" && td.HasArg("now") {
					h.now = num("now", 0)
				}
				tag := str("tag", td.Cmd)
				switch td.Cmd {
				case "new":
					s := DefaultSettings()
					s.MinSessionTimeoutMs = int32(num("min-session", int64(s.MinSessionTimeoutMs)))
					s.MaxSessionTimeoutMs = int32(num("max-session", int64(s.MaxSessionTimeoutMs)))
					s.InitialRebalanceDelayMs = int32(num("delay", 0))
					s.MaxSize = int(num("max-size", int64(s.MaxSize)))
					s.OffsetsRetentionMs = num("retention", s.OffsetsRetentionMs)
					s.OffsetsRetentionCheckMs = num("check", s.OffsetsRetentionCheckMs)
					s.OffsetMetadataMaxBytes = int(num("meta-max", int64(s.OffsetMetadataMaxBytes)))
					h = newGroupHarness(t, s)
					h.now = num("now", 0)
					h.c = New("g", s, nil, h.now)
					return "ok\n"
				case "topic":
					h.view[str("name", "")] = int32(num("partitions", 1))
					return "ok\n"
				case "join":
					req := kmsg.NewPtrJoinGroupRequest()
					req.Version = int16(num("v", 9))
					req.Group = "g"
					req.MemberID = str("member", "")
					req.InstanceID = optStr("instance")
					req.SessionTimeoutMillis = int32(num("session", 10000))
					req.RebalanceTimeoutMillis = int32(num("rebalance", 30000))
					req.ProtocolType = str("type", "consumer")
					protos := list("protocols")
					if !td.HasArg("protocols") {
						protos = []string{"range:t"}
					}
					for _, p := range protos {
						if p == "" {
							continue
						}
						name, topics, _ := strings.Cut(p, ":")
						jp := kmsg.NewJoinGroupRequestProtocol()
						jp.Name = name
						jp.Metadata = subscription(strings.Split(topics, "+")...)
						if td.HasArg("raw-meta") {
							jp.Metadata = []byte(topics)
						}
						req.Protocols = append(req.Protocols, jp)
					}
					h.request(tag, str("client", "client"), str("new-id", ""), req)
				case "sync":
					req := kmsg.NewPtrSyncGroupRequest()
					req.Version = int16(num("v", 4))
					req.Group = "g"
					req.MemberID = str("member", "")
					req.InstanceID = optStr("instance")
					req.Generation = int32(num("gen", 0))
					req.ProtocolType = optStr("ptype")
					req.Protocol = optStr("pname")
					for _, a := range list("assign") {
						id, bytes, _ := strings.Cut(a, ":")
						ga := kmsg.NewSyncGroupRequestGroupAssignment()
						ga.MemberID, ga.MemberAssignment = id, []byte(bytes)
						req.GroupAssignment = append(req.GroupAssignment, ga)
					}
					h.request(tag, "client", "", req)
				case "heartbeat":
					req := kmsg.NewPtrHeartbeatRequest()
					req.Version = int16(num("v", 4))
					req.Group = "g"
					req.MemberID = str("member", "")
					req.InstanceID = optStr("instance")
					req.Generation = int32(num("gen", 0))
					h.request(tag, "client", "", req)
				case "leave":
					req := kmsg.NewPtrLeaveGroupRequest()
					req.Version = int16(num("v", 5))
					req.Group = "g"
					req.MemberID = str("member", "")
					members, instances := list("members"), list("instances")
					for i := range max(len(members), len(instances)) {
						lm := kmsg.NewLeaveGroupRequestMember()
						if i < len(members) && members[i] != "-" {
							lm.MemberID = members[i]
						}
						if i < len(instances) && instances[i] != "-" {
							lm.InstanceID = kmsg.StringPtr(instances[i])
						}
						req.Members = append(req.Members, lm)
					}
					h.request(tag, "client", "", req)
				case "commit":
					req := kmsg.NewPtrOffsetCommitRequest()
					req.Version = int16(num("v", 8))
					req.Group = "g"
					req.MemberID = str("member", "")
					req.InstanceID = optStr("instance")
					req.Generation = int32(num("gen", -1))
					req.RetentionTimeMillis = num("retention", -1)
					for _, o := range list("offsets") {
						f := strings.SplitN(o, ":", 4)
						if len(f) < 3 {
							t.Fatalf("%s: bad offset %q", td.Pos, o)
						}
						p, _ := strconv.Atoi(f[1])
						off, _ := strconv.ParseInt(f[2], 10, 64)
						rp := kmsg.NewOffsetCommitRequestTopicPartition()
						rp.Partition, rp.Offset = int32(p), off
						if len(f) == 4 {
							rp.Metadata = kmsg.StringPtr(f[3])
						}
						i := len(req.Topics) - 1
						if i < 0 || req.Topics[i].Topic != f[0] {
							rt := kmsg.NewOffsetCommitRequestTopic()
							rt.Topic, rt.TopicID = f[0], viewTopicID(f[0])
							req.Topics = append(req.Topics, rt)
							i++
						}
						req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
					}
					h.request(tag, "client", "", req)
				case "fetch":
					f := &FetchOffsets{Version: int16(num("v", 8)), RequireStable: td.HasArg("stable"), MemberID: optStr("member-id"), MemberEpoch: int32(num("member-epoch", -1))}
					if td.HasArg("topics") {
						f.Topics = []kmsg.OffsetFetchRequestGroupTopic{}
						for _, tps := range list("topics") {
							topic, ps, _ := strings.Cut(tps, ":")
							rt := kmsg.NewOffsetFetchRequestGroupTopic()
							rt.Topic, rt.TopicID = topic, viewTopicID(topic)
							for _, p := range strings.Split(ps, "+") {
								n, _ := strconv.Atoi(p)
								rt.Partitions = append(rt.Partitions, int32(n))
							}
							f.Topics = append(f.Topics, rt)
						}
					}
					h.request(tag, "", "", f)
				case "offset-delete":
					req := kmsg.NewPtrOffsetDeleteRequest()
					req.Group = "g"
					for _, tps := range list("topics") {
						topic, ps, _ := strings.Cut(tps, ":")
						rt := kmsg.NewOffsetDeleteRequestTopic()
						rt.Topic = topic
						for _, p := range strings.Split(ps, "+") {
							n, _ := strconv.Atoi(p)
							rp := kmsg.NewOffsetDeleteRequestTopicPartition()
							rp.Partition = int32(n)
							rt.Partitions = append(rt.Partitions, rp)
						}
						req.Topics = append(req.Topics, rt)
					}
					h.request(tag, "", "", req)
				case "describe":
					h.request(tag, "", "", &DescribeGroup{Version: int16(num("v", 5)), IncludeAuthorizedOperations: td.HasArg("ops")})
				case "delete":
					h.request(tag, "", "", &DeleteGroup{Version: 2})
				case "appended":
					code := int16(0)
					if td.HasArg("err") {
						code = errCode(t, str("err", ""))
					}
					h.complete(code)
				case "tick":
					h.tick(h.now)
				case "state":
					return h.formatState()
				case "restart":
					h.restart()
					return h.formatState()
				default:
					t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
				}
				return h.take()
			})
		})
	}
}
