package group

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/internal/mutation"
)

// TestMutationForgetOffsetCommit shows the deliberately broken variant
// (internal/mutation) at work: the commit is answered at once and
// visible, but never appended, so a reload loses it. With the switch off
// the commit waits for its append and survives the reload.
func TestMutationForgetOffsetCommit(t *testing.T) {
	const visible = `fetch NONE t/0=10(e-1,"")`
	for _, tc := range []struct {
		active      mutation.Kind
		wantCommit  string // what the commit step produces
		afterReload string // OffsetFetch after the coordinator reloads
	}{
		{mutation.None, "append:\n  offset g t/0 = 10 epoch=-1 meta=\"\" ts=1000\n", visible},
		{mutation.ForgetOffsetCommit, "c: commit t/0=NONE\n", "fetch NONE t/0=-1"},
	} {
		t.Run(tc.active.String(), func(t *testing.T) {
			prev := mutation.Set(tc.active)
			defer mutation.Set(prev)

			h := newGroupHarness(t, DefaultSettings())
			h.view["t"] = 1
			h.now = 1000
			commit := kmsg.NewPtrOffsetCommitRequest()
			commit.Version, commit.Group, commit.Generation = 8, "g", -1
			ct := kmsg.NewOffsetCommitRequestTopic()
			ct.Topic = "t"
			cp := kmsg.NewOffsetCommitRequestTopicPartition()
			cp.Offset, cp.LeaderEpoch = 10, -1
			ct.Partitions = []kmsg.OffsetCommitRequestTopicPartition{cp}
			commit.Topics = []kmsg.OffsetCommitRequestTopic{ct}
			fetch := &FetchOffsets{Version: 8, MemberEpoch: -1, Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}}}
			expect := func(what, got, want string) {
				t.Helper()
				if !strings.Contains(got, want) {
					t.Fatalf("%s: got\n%s\nwant it to contain %q", what, got, want)
				}
			}

			h.request("c", "", "", commit)
			if got := h.take(); got != tc.wantCommit {
				t.Fatalf("commit produced\n%s\nwant\n%s", got, tc.wantCommit)
			}
			if h.pending != nil {
				h.complete(0)
				expect("append completed", h.take(), "c: commit t/0=NONE")
			}
			// Either way the coordinator that answered shows the commit.
			h.request("f", "", "", fetch)
			expect("fetch before reload", h.take(), visible)

			h.restart()
			h.request("f", "", "", fetch)
			expect("fetch after reload", h.take(), tc.afterReload)
		})
	}
}
