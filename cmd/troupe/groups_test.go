package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// fastGroups makes KIP-848 members heartbeat every 100ms rather than 5s,
// so that joins and reconciliations finish quickly.
var fastGroups = kfake.BrokerConfigs(map[string]string{"group.consumer.heartbeat.interval.ms": "100"})

// newAdmin returns a client of the cluster at bs, producing to the
// partition each record names, and an admin client on it; both are closed
// with the test.
func newAdmin(t *testing.T, bs string) (*kgo.Client, *kadm.Client) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bs, ",")...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, kadm.NewClient(cl)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// offsets is topic -> partition -> offset.
type offsets map[string]map[int32]int64

func commitOffsets(t *testing.T, adm *kadm.Client, group string, os offsets) {
	t.Helper()
	var list kadm.Offsets
	for topic, ps := range os {
		for p, at := range ps {
			list.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
		}
	}
	if err := adm.CommitAllOffsets(testCtx(t), group, list); err != nil {
		t.Fatalf("commit %v to group %s: %v", os, group, err)
	}
}

func fetchCommitted(t *testing.T, adm *kadm.Client, group string) offsets {
	t.Helper()
	resps, err := committedOffsets(testCtx(t), adm, group)
	if err != nil {
		t.Fatalf("fetch offsets of group %s: %v", group, err)
	}
	got := make(offsets)
	resps.Each(func(o kadm.OffsetResponse) {
		if got[o.Topic] == nil {
			got[o.Topic] = make(map[int32]int64)
		}
		got[o.Topic][o.Partition] = o.At
	})
	return got
}

func assertCommitted(t *testing.T, adm *kadm.Client, group string, want offsets) {
	t.Helper()
	if got := fetchCommitted(t, adm, group); !maps.EqualFunc(got, want, maps.Equal) {
		t.Fatalf("group %s committed %v, want %v", group, got, want)
	}
}

// produceAt writes n records to one partition, record i with value "i" and
// timestamp base+i seconds.
func produceAt(t *testing.T, cl *kgo.Client, topic string, partition int32, n int, base time.Time) {
	t.Helper()
	for i := range n {
		r := &kgo.Record{Topic: topic, Partition: partition, Value: []byte(fmt.Sprint(i)), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

// tableRows splits a table printed by troupe into rows of fields, header
// included.
func tableRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line != "" {
			rows = append(rows, strings.Fields(line))
		}
	}
	return rows
}

// eventually retries cond for up to 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// joinMember starts a group member that never commits, waits until it owns
// all parts partitions of topic, and returns its member ID and a function
// that makes it leave (also run at cleanup).
func joinMember(t *testing.T, bs, group, topic, protocol string, parts int) (string, func()) {
	t.Helper()
	opts := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(bs, ",")...),
		kgo.ClientID("member-1"),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
	}
	if protocol == "consumer" {
		opts = append(opts, kgo.ServerSideBalancer(), kgo.Balancers(kgo.StickyBalancer()))
	}
	member, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	leave := func() { once.Do(member.Close) }
	t.Cleanup(leave)

	cl, adm := newAdmin(t, bs)
	var id string
	eventually(t, "the member to be assigned", func() bool {
		gs, err := describeGroups(testCtx(t), cl, adm, []string{group})
		if err != nil || gs[0].state != "Stable" || len(gs[0].members) != 1 || gs[0].members[0].numAssigned() != parts {
			return false
		}
		id = gs[0].members[0].id
		return true
	})
	return id, leave
}

// A group's view through describe and list, for both protocols: lag per
// partition while a member is live, members, state, the refusal to reset an
// active group, and the view once the member has left.
func TestGroupsDescribe(t *testing.T) {
	for _, protocol := range []string{"classic", "consumer"} {
		t.Run(protocol, func(t *testing.T) {
			bs := newCluster(t, fastGroups)
			b := []string{"--bootstrap-server", bs}
			groups := func(args ...string) result {
				return troupe(t, "", append(append([]string{"groups"}, args...), b...)...)
			}
			mustGroups := func(args ...string) result {
				t.Helper()
				r := groups(args...)
				if r.code != 0 {
					t.Fatalf("groups %v: %+v", args, r)
				}
				return r
			}
			mustTroupe(t, "", "topics", "create", "--topic", "events", "--partitions", "2", "--bootstrap-server", bs)
			mustTroupe(t, "0\n1\n2\n3\n4\n", "produce", "--topic", "events", "--partition", "0", "--bootstrap-server", bs)
			// The group commits 3 of partition 0's 5 records and
			// nothing of the empty partition 1.
			r := mustTroupe(t, "", "consume", "--topic", "events", "--group", "g", "--group-protocol", protocol,
				"--from-beginning", "--max-messages", "3", "--bootstrap-server", bs)
			if r.out != "0\n1\n2\n" {
				t.Fatalf("consume printed %q", r.out)
			}

			memberID, leave := joinMember(t, bs, "g", "events", protocol, 2)

			rows := tableRows(mustGroups("describe", "g").out)
			want := [][]string{
				{"GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"},
				{"g", "events", "0", "3", "5", "2", memberID, "HOST", "member-1"},
				{"g", "events", "1", "-", "0", "-", memberID, "HOST", "member-1"},
			}
			for _, row := range rows[1:] {
				if len(row) == 9 {
					row[7] = "HOST" // the broker's view of the member's address
				}
			}
			if !slices.EqualFunc(rows, want, slices.Equal) {
				t.Fatalf("describe:\n%q\nwant\n%q", rows, want)
			}

			r = mustGroups("describe", "--group", "g", "--members", "--verbose")
			if rows := tableRows(r.out); len(rows) != 2 || rows[1][0] != "g" || rows[1][1] != memberID ||
				rows[1][4] != "member-1" || rows[1][5] != "2" || rows[1][6] != "events(0,1)" {
				t.Fatalf("describe --members --verbose:\n%s", r.out)
			}

			assignor := map[string]string{"classic": "cooperative-sticky", "consumer": "uniform"}[protocol]
			r = mustGroups("describe", "g", "--state")
			stateLine := regexp.MustCompile(`(?m)^g +127\.0\.0\.1:\d+ \(\d+\) +` + assignor + ` +Stable +1$`)
			if !stateLine.MatchString(r.out) || !strings.HasPrefix(r.out, "GROUP ") {
				t.Fatalf("describe --state:\n%s", r.out)
			}
			r = mustGroups("describe", "g", "--state", "--verbose")
			if rows := tableRows(r.out); len(rows) != 2 || rows[1][len(rows[1])-3] != protocol {
				t.Fatalf("describe --state --verbose:\n%s", r.out)
			}

			r = mustGroups("list")
			rows = tableRows(r.out)
			if len(rows) == 2 && protocol == "consumer" && rows[1][3] == "-" {
				// Kafka names KIP-848 groups' protocol type
				// "consumer"; kfake leaves it empty.
				rows[1][3] = "consumer"
			}
			if want := [][]string{{"GROUP", "STATE", "TYPE", "PROTOCOL-TYPE"}, {"g", "Stable", protocol, "consumer"}}; !slices.EqualFunc(rows, want, slices.Equal) {
				t.Fatalf("list:\n%s", r.out)
			}
			if r := mustGroups("list", "--state", "empty,dead"); len(tableRows(r.out)) != 1 {
				t.Fatalf("list --state empty,dead:\n%s", r.out)
			}
			if r := mustGroups("list", "--state", "STABLE", "--type", protocol); len(tableRows(r.out)) != 2 {
				t.Fatalf("list --state STABLE --type %s:\n%s", protocol, r.out)
			}

			assertOneErrorLine(t, groups("reset-offsets", "--group", "g", "--topic", "events", "--to-earliest", "--execute"),
				"reset offsets: Assignments can only be reset if the group 'g' is inactive, but the current state is Stable.")
			assertOneErrorLine(t, groups("reset-offsets", "--group", "g", "--topic", "events", "--to-earliest", "--dry-run"),
				"inactive")
			assertOneErrorLine(t, groups("delete", "--group", "g"), `delete group "g": `)

			leave()
			eventually(t, "the group to empty", func() bool {
				return strings.Contains(groups("list", "--state", "Empty").out, "\ng ")
			})
			// Without members only the committed partition is left,
			// owned by no one, and a note says why.
			r = mustGroups("describe", "g")
			want = [][]string{want[0], {"g", "events", "0", "3", "5", "2", "-", "-", "-"}}
			if !slices.EqualFunc(tableRows(r.out), want, slices.Equal) || r.err != "Consumer group 'g' has no active members.\n" {
				t.Fatalf("describe of the empty group: %+v", r)
			}
			if r := mustGroups("describe", "g", "--members"); r.out != "" {
				t.Fatalf("describe --members of the empty group printed %q", r.out)
			}
			r = mustGroups("describe", "--all-groups")
			if !slices.EqualFunc(tableRows(r.out), want, slices.Equal) {
				t.Fatalf("describe --all-groups:\n%s", r.out)
			}
			r = mustGroups("reset-offsets", "--group", "g", "--topic", "events:0", "--to-earliest", "--execute")
			if want := [][]string{{"GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"}, {"g", "events", "0", "0"}}; !slices.EqualFunc(tableRows(r.out), want, slices.Equal) {
				t.Fatalf("reset of the empty group:\n%s", r.out)
			}
			mustGroups("delete", "--group", "g")
			assertOneErrorLine(t, groups("describe", "g"), `describe group "g": group does not exist`)
		})
	}
}

func TestGroupsResetOffsets(t *testing.T) {
	bs := newCluster(t, kfake.SeedTopics(2, "r"))
	cl, adm := newAdmin(t, bs)
	base := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	produceAt(t, cl, "r", 0, 10, base)
	produceAt(t, cl, "r", 1, 4, base)
	// Partition 0's log starts at 2, so earliest is not 0.
	var trim kadm.Offsets
	trim.Add(kadm.Offset{Topic: "r", Partition: 0, At: 2})
	if _, err := adm.DeleteRecords(testCtx(t), trim); err != nil {
		t.Fatal(err)
	}
	start := offsets{"r": {0: 5, 1: 1}}

	tests := []struct {
		name     string
		args     []string
		want     offsets // the plan, and what --execute commits over start
		warnings int     // clamping warnings on stderr
	}{
		{"earliest", []string{"--topic", "r", "--to-earliest"}, offsets{"r": {0: 2, 1: 0}}, 0},
		{"latest of one partition", []string{"--topic", "r:1", "--to-latest"}, offsets{"r": {1: 4}}, 0},
		{"offset", []string{"--topic", "r:0,1", "--to-offset", "3"}, offsets{"r": {0: 3, 1: 3}}, 0},
		{"offset above latest", []string{"--topic", "r", "--to-offset", "7"}, offsets{"r": {0: 7, 1: 4}}, 1},
		{"offset below earliest", []string{"--topic", "r:0", "--to-offset", "0"}, offsets{"r": {0: 2}}, 1},
		{"shift back", []string{"--all-topics", "--shift-by", "-2"}, offsets{"r": {0: 3, 1: 0}}, 1},
		{"shift forward", []string{"--topic", "r", "--shift-by", "4"}, offsets{"r": {0: 9, 1: 4}}, 1},
		{"shift far", []string{"--topic", "r", "--shift-by", "9223372036854775807"}, offsets{"r": {0: 10, 1: 4}}, 2},
		{"datetime UTC", []string{"--topic", "r", "--to-datetime", "2026-01-02T15:04:08Z"}, offsets{"r": {0: 3, 1: 3}}, 0},
		{"datetime between records, with millis and zone", []string{"--topic", "r", "--to-datetime", "2026-01-02T17:04:08.500+02:00"}, offsets{"r": {0: 4, 1: 4}}, 0},
		{"datetime before everything", []string{"--topic", "r", "--to-datetime", "2020-01-01T00:00:00.000Z"}, offsets{"r": {0: 2, 1: 0}}, 0},
		{"datetime after everything", []string{"--topic", "r", "--to-datetime", "2030-01-01T00:00:00Z"}, offsets{"r": {0: 10, 1: 4}}, 0},
		{"datetime local", []string{"--topic", "r:1", "--to-datetime", base.Add(time.Second).Local().Format("2006-01-02T15:04:05")}, offsets{"r": {1: 1}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			group := strings.ReplaceAll(tt.name, " ", "-")
			commitOffsets(t, adm, group, start)
			args := append([]string{"groups", "reset-offsets", "--group", group, "--bootstrap-server", bs}, tt.args...)

			var wantRows [][]string
			wantRows = append(wantRows, []string{"GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"})
			for _, p := range slices.Sorted(maps.Keys(tt.want["r"])) {
				wantRows = append(wantRows, []string{group, "r", fmt.Sprint(p), fmt.Sprint(tt.want["r"][p])})
			}
			for _, mode := range []string{"--dry-run", "", "--execute"} {
				r := mustTroupe(t, "", append(slices.Clip(args), strings.Fields(mode)...)...)
				if !slices.EqualFunc(tableRows(r.out), wantRows, slices.Equal) {
					t.Fatalf("%s plan:\n%s\nwant %q", mode, r.out, wantRows)
				}
				warnings := strings.Count(r.err, "New offset (")
				if mode == "" && !strings.HasPrefix(r.err, "WARN: No action will be performed as the --execute option is missing.") {
					t.Fatalf("no warning without --dry-run or --execute: %q", r.err)
				}
				if warnings != tt.warnings {
					t.Fatalf("%s: %d clamping warnings, want %d: %q", mode, warnings, tt.warnings, r.err)
				}
				if mode != "--execute" {
					assertCommitted(t, adm, group, start)
				}
			}
			want := offsets{"r": maps.Clone(start["r"])}
			maps.Copy(want["r"], tt.want["r"])
			assertCommitted(t, adm, group, want)
		})
	}

	// A group that does not exist yet is inactive: resetting creates it.
	r := mustTroupe(t, "", "groups", "reset-offsets", "--group", "fresh", "--topic", "r", "--to-latest", "--execute", "--bootstrap-server", bs)
	if len(tableRows(r.out)) != 3 {
		t.Fatalf("reset of a new group:\n%s", r.out)
	}
	assertCommitted(t, adm, "fresh", offsets{"r": {0: 10, 1: 4}})

	failures := []struct {
		name string
		args []string
		want string
	}{
		{"shift without commit", []string{"--group", "nobody", "--topic", "r", "--shift-by", "1"}, "cannot shift the offset of r-0: the group has no committed offset for it"},
		{"unknown topic", []string{"--group", "fresh", "--topic", "nope", "--to-earliest"}, `reset offsets: topic "nope": topic does not exist`},
		{"unknown partition", []string{"--group", "fresh", "--topic", "r:0,2", "--to-earliest"}, `partition 2 of topic "r" does not exist: the topic has 2 partitions`},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"groups", "reset-offsets", "--bootstrap-server", bs, "--execute"}, tt.args...)
			assertOneErrorLine(t, troupe(t, "", args...), tt.want)
		})
	}
	assertCommitted(t, adm, "fresh", offsets{"r": {0: 10, 1: 4}})
}

func TestGroupsDeleteAndDeleteOffsets(t *testing.T) {
	bs := newCluster(t, kfake.SeedTopics(2, "t", "u"))
	_, adm := newAdmin(t, bs)
	b := []string{"--bootstrap-server", bs}
	groups := func(args ...string) result {
		return troupe(t, "", append(append([]string{"groups"}, args...), b...)...)
	}
	for _, g := range []string{"a", "b", "c"} {
		commitOffsets(t, adm, g, offsets{"t": {0: 1, 1: 1}, "u": {0: 1}})
	}

	r := groups("delete-offsets", "--group", "a", "--topic", "t:1", "--topic", "u")
	want := [][]string{{"TOPIC", "PARTITION", "STATUS"}, {"t", "1", "Successful"}, {"u", "0", "Successful"}, {"u", "1", "Successful"}}
	if r.code != 0 || !slices.EqualFunc(tableRows(r.out), want, slices.Equal) {
		t.Fatalf("delete-offsets: %+v", r)
	}
	assertCommitted(t, adm, "a", offsets{"t": {0: 1}})

	assertOneErrorLine(t, groups("delete-offsets", "--group", "a", "--topic", "nope"), `delete offsets of group "a": topic "nope": topic does not exist`)
	assertOneErrorLine(t, groups("delete-offsets", "--group", "a", "--topic", "t:5"), "partition 5 of topic")
	assertOneErrorLine(t, groups("delete-offsets", "--group", "zzz", "--topic", "t"), `delete offsets of group "zzz": group does not exist`)
	assertOneErrorLine(t, groups("delete-offsets", "--group", "a"), "--topic is required")

	// A live group keeps the offsets of topics it is subscribed to.
	_, leave := joinMember(t, bs, "c", "t", "classic", 2)
	r = groups("delete-offsets", "--group", "c", "--topic", "t:0", "--topic", "u:0")
	if !strings.Contains(r.out, "\nt  ") || !strings.Contains(r.out, "Error: GROUP_SUBSCRIBED_TO_TOPIC") || !regexp.MustCompile(`\nu +0 +Successful\n`).MatchString(r.out) {
		t.Fatalf("delete-offsets of a live group printed:\n%s", r.out)
	}
	assertOneErrorLine(t, r, `delete offsets of group "c": 1 of 2 partitions failed: t-0: GROUP_SUBSCRIBED_TO_TOPIC`)
	assertOneErrorLine(t, groups("delete", "--group", "c"), `delete group "c": NON_EMPTY_GROUP`)

	// Deleting several groups reports the ones deleted and fails for
	// the rest.
	r = groups("delete", "--group", "a", "--group", "c", "--group", "missing")
	if r.out != "Deletion of requested consumer groups ('a') was successful.\n" {
		t.Fatalf("delete printed %q", r.out)
	}
	assertOneErrorLine(t, r, `delete groups: 2 of 3 failed: "c": NON_EMPTY_GROUP`)
	if !strings.Contains(r.err, `"missing": group does not exist`) {
		t.Fatalf("delete stderr %q", r.err)
	}
	leave()
	eventually(t, "group c to empty", func() bool { return strings.Contains(groups("list", "--state", "Empty").out, "\nc ") })
	r = groups("delete", "--all-groups")
	if r.code != 0 || r.out != "Deletion of requested consumer groups ('b', 'c') was successful.\n" {
		t.Fatalf("delete --all-groups: %+v", r)
	}
	if r := groups("list"); r.out != "GROUP  STATE  TYPE  PROTOCOL-TYPE\n" {
		t.Fatalf("list after deleting everything: %q", r.out)
	}
	assertOneErrorLine(t, groups("delete", "--group", "a"), `delete group "a": group does not exist`)
}

// consume --group commits what it printed, and the next run resumes there,
// for both protocols; --from-beginning only applies where nothing was
// committed.
func TestConsumeGroupCommits(t *testing.T) {
	for _, protocol := range []string{"classic", "consumer"} {
		t.Run(protocol, func(t *testing.T) {
			bs := newCluster(t, fastGroups, kfake.SeedTopics(1, "nums"))
			_, adm := newAdmin(t, bs)
			mustTroupe(t, "0\n1\n2\n3\n4\n", "produce", "--topic", "nums", "--bootstrap-server", bs)
			consume := func(args ...string) result {
				t.Helper()
				return mustTroupe(t, "", append([]string{"consume", "--topic", "nums", "--group", "g", "--group-protocol", protocol, "--bootstrap-server", bs}, args...)...)
			}

			if r := consume("--from-beginning", "--max-messages", "3"); r.out != "0\n1\n2\n" || r.err != "Processed a total of 3 messages\n" {
				t.Fatalf("first run: %+v", r)
			}
			assertCommitted(t, adm, "g", offsets{"nums": {0: 3}})
			if r := consume("--max-messages", "2"); r.out != "3\n4\n" {
				t.Fatalf("second run printed %q, want the rest", r.out)
			}
			assertCommitted(t, adm, "g", offsets{"nums": {0: 5}})
			if r := consume("--from-beginning", "--timeout-ms", "500"); r.out != "" {
				t.Fatalf("--from-beginning with a commit printed %q", r.out)
			}
			assertCommitted(t, adm, "g", offsets{"nums": {0: 5}})

			// A new group without --from-beginning starts at the end.
			if r := consume("--timeout-ms", "500"); r.out != "" {
				t.Fatalf("a group with commits past the end printed %q", r.out)
			}

			// An interrupt is a clean stop: what was printed is
			// committed, and the member leaves.
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			var out, errb lockedBuffer
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"consume", "--topic", "nums", "--group", "h", "--group-protocol", protocol, "--from-beginning", "--bootstrap-server", bs},
					strings.NewReader(""), &out, &errb)
			}()
			eventually(t, "five records", func() bool { return out.String() == "0\n1\n2\n3\n4\n" })
			cancel()
			if code := <-done; code != 0 || errb.String() != "Processed a total of 5 messages\n" {
				t.Fatalf("interrupted consume: exit %d, stderr %q", code, errb.String())
			}
			assertCommitted(t, adm, "h", offsets{"nums": {0: 5}})
			eventually(t, "the group to empty", func() bool {
				r := troupe(t, "", "groups", "describe", "h", "--state", "--bootstrap-server", bs)
				return strings.Contains(r.out, " Empty ")
			})
		})
	}
}

// lockedBuffer is a bytes.Buffer safe to read while a command writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Against a cluster without KIP-848 the classic describe path still works,
// and asking for the consumer protocol fails instead of quietly joining
// with the classic one.
func TestGroupsWithoutKIP848(t *testing.T) {
	v := kversion.Stable()
	v.SetMaxKeyVersion(int16(kmsg.ConsumerGroupHeartbeat), -1)
	v.SetMaxKeyVersion(int16(kmsg.ConsumerGroupDescribe), -1)
	bs := newCluster(t, kfake.MaxVersions(v), kfake.SeedTopics(1, "t"))
	mustTroupe(t, "a\n", "produce", "--topic", "t", "--bootstrap-server", bs)
	mustTroupe(t, "", "consume", "--topic", "t", "--group", "g", "--from-beginning", "--max-messages", "1", "--bootstrap-server", bs)
	r := mustTroupe(t, "", "groups", "describe", "g", "--bootstrap-server", bs)
	if want := [][]string{
		{"GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"},
		{"g", "t", "0", "1", "1", "0", "-", "-", "-"},
	}; !slices.EqualFunc(tableRows(r.out), want, slices.Equal) {
		t.Fatalf("describe:\n%s", r.out)
	}
	assertOneErrorLine(t, troupe(t, "", "consume", "--topic", "t", "--group", "g", "--group-protocol", "consumer", "--bootstrap-server", bs),
		"the cluster does not support the consumer group protocol (KIP-848)")
}

func TestGroupsUsageErrors(t *testing.T) {
	bad := closedAddr(t)
	reset := []string{"groups", "reset-offsets", "--group", "g"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"list unreachable", []string{"groups", "list", "--bootstrap-server", bad}, "list groups: cannot reach cluster at " + bad},
		{"describe unreachable", []string{"groups", "describe", "g", "--bootstrap-server", bad}, `describe group "g": cannot reach cluster`},
		{"bad state", []string{"groups", "list", "--state", "sleepy"}, `list groups: --state "sleepy": want one of Empty, Stable`},
		{"bad type", []string{"groups", "list", "--type", "odd"}, `--type "odd"`},
		{"describe nothing", []string{"groups", "describe"}, "give one or more groups, or --all-groups"},
		{"describe both", []string{"groups", "describe", "g", "--all-groups"}, "not both"},
		{"members and state", []string{"groups", "describe", "g", "--members", "--state"}, "--members and --state cannot be used together"},
		{"verbose alone", []string{"groups", "describe", "g", "--verbose"}, "--verbose needs --members or --state"},
		{"delete nothing", []string{"groups", "delete"}, "--group is required"},
		{"reset without group", []string{"groups", "reset-offsets", "--topic", "t", "--to-earliest"}, "reset offsets: --group is required"},
		{"reset without scope", append(reset, "--to-earliest"), "--topic or --all-topics"},
		{"reset with both scopes", append(reset, "--topic", "t", "--all-topics", "--to-earliest"), "--topic and --all-topics cannot be used together"},
		{"reset without target", append(reset, "--topic", "t"), "give where to reset to"},
		{"reset with two targets", append(reset, "--topic", "t", "--to-earliest", "--shift-by", "1"), "--to-earliest and --shift-by cannot be used together"},
		{"dry run and execute", append(reset, "--topic", "t", "--to-latest", "--dry-run", "--execute"), "--dry-run and --execute cannot be used together"},
		{"negative offset", append(reset, "--topic", "t", "--to-offset", "-1"), "--to-offset -1: want a non-negative offset"},
		{"bad datetime", append(reset, "--topic", "t", "--to-datetime", "yesterday"), `--to-datetime "yesterday"`},
		{"bad partition", append(reset, "--topic", "t:x", "--to-latest"), `--topic "t:x": partition "x"`},
		{"empty topic", append(reset, "--topic", ":1", "--to-latest"), `--topic ":1"`},
		{"consume group and partition", []string{"consume", "--topic", "t", "--group", "g", "--partition", "0"}, "--group and --partition cannot be used together"},
		{"consume group and offset", []string{"consume", "--topic", "t", "--group", "g", "--offset", "earliest"}, "--group and --offset cannot be used together"},
		{"protocol without group", []string{"consume", "--topic", "t", "--group-protocol", "consumer"}, "--group-protocol consumer needs --group"},
		{"bad protocol", []string{"consume", "--topic", "t", "--group", "g", "--group-protocol", "new"}, `--group-protocol "new": want classic or consumer`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertOneErrorLine(t, troupe(t, "", tt.args...), tt.want)
		})
	}
}

func TestParseDatetime(t *testing.T) {
	utc := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2026-01-02T15:04:05Z", utc},
		{"2026-01-02T15:04:05.250Z", utc.Add(250 * time.Millisecond)},
		{"2026-01-02T16:04:05+01:00", utc},
		{"2026-01-02T10:04:05.000-05:00", utc},
		{"2026-01-02T15:04:05", time.Date(2026, 1, 2, 15, 4, 5, 0, time.Local)},
		{"2026-01-02T15:04:05.5", time.Date(2026, 1, 2, 15, 4, 5, 5e8, time.Local)},
	}
	for _, tt := range tests {
		got, err := parseDatetime(tt.in)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseDatetime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "2026-01-02", "2026-01-02 15:04:05", "2026-13-02T15:04:05Z", "2026-01-02T15:04:05+1"} {
		if _, err := parseDatetime(bad); err == nil {
			t.Errorf("parseDatetime(%q) succeeded", bad)
		}
	}
}
