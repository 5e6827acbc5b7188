package wire

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/troupe-io/troupe/metadata"
)

// electEnv is node 1 with broker 2 live and broker 3 fenced, and topic
// "e" whose partitions are [1,2] (led by its preferred replica), [3,1]
// (led by the fenced 3: offline) and [2,1] (preferred leads).
func electEnv(t *testing.T) *testEnv {
	env := newTestEnv(t)
	env.addBroker(metadata.BrokerRecord{ID: 2, Host: "10.0.0.2", Port: 9092})
	env.addBroker(metadata.BrokerRecord{ID: 3, Host: "10.0.0.3", Port: 9092, Fenced: true})
	env.createAssigned("e", []int32{1, 2}, []int32{3, 1}, []int32{2, 1})
	return env
}

func electReq(v int16, typ int8, topics map[string][]int32) *kmsg.ElectLeadersRequest {
	req := kmsg.NewPtrElectLeadersRequest()
	req.Version, req.ElectionType = v, typ
	if topics != nil {
		req.Topics = []kmsg.ElectLeadersRequestTopic{}
		for _, name := range sortedNames(topics) {
			rt := kmsg.NewElectLeadersRequestTopic()
			rt.Topic, rt.Partitions = name, topics[name]
			req.Topics = append(req.Topics, rt)
		}
	}
	return req
}

func sortedNames[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// electCodes flattens a response to "topic/partition" → error code,
// failing on a partition answered twice or without a message for an
// error.
func electCodes(t *testing.T, resp *kmsg.ElectLeadersResponse) map[string]int16 {
	t.Helper()
	out := map[string]int16{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			k := fmt.Sprintf("%s/%d", rt.Topic, rp.Partition)
			if _, dup := out[k]; dup {
				t.Fatalf("%s answered twice", k)
			}
			if rp.ErrorCode != 0 && rp.ErrorMessage == nil {
				t.Errorf("%s: error %d without a message", k, rp.ErrorCode)
			}
			out[k] = rp.ErrorCode
		}
	}
	return out
}

func TestElectLeadersEveryVersion(t *testing.T) {
	for v := int16(0); v <= 2; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			env := electEnv(t)
			c := env.dial()

			// Named partitions: each answered, missing ones too. v0
			// has no election type: an unclean request is preferred.
			resp := c.roundTrip(electReq(v, int8(metadata.ElectUnclean), map[string][]int32{"e": {0, 1}, "missing": {0}})).(*kmsg.ElectLeadersResponse)
			want := map[string]int16{
				"e/0":       kerr.ElectionNotNeeded.Code,
				"e/1":       0, // unclean: 1 takes over from the fenced 3
				"missing/0": kerr.UnknownTopicOrPartition.Code,
			}
			if v == 0 {
				// Preferred: 3 is still the leader in the image.
				want["e/1"] = kerr.ElectionNotNeeded.Code
			}
			if got := electCodes(t, resp); resp.ErrorCode != 0 || !maps.Equal(got, want) {
				t.Fatalf("named partitions: top-level %d, %v, want %v", resp.ErrorCode, got, want)
			}
			wantLeader := int32(1)
			if v == 0 {
				wantLeader = 3
			}
			if p := env.partition("e", 1); p.Leader != wantLeader {
				t.Fatalf("e/1 after the election: %+v", p)
			}

			// All partitions, while 3 is fenced: e/1 cannot get its
			// preferred leader back (v0 left it led by 3).
			resp = c.roundTrip(electReq(v, int8(metadata.ElectPreferred), nil)).(*kmsg.ElectLeadersResponse)
			want = map[string]int16{"e/1": kerr.PreferredLeaderNotAvailable.Code}
			if v == 0 {
				want = map[string]int16{}
			}
			if got := electCodes(t, resp); !maps.Equal(got, want) {
				t.Fatalf("all partitions, 3 fenced: %v, want %v", got, want)
			}

			// Broker 3 is back: the preferred election of all
			// partitions answers only e/1, which needed one (v0
			// left it led by 3, which leads it already).
			env.addBroker(metadata.BrokerRecord{ID: 3, Host: "10.0.0.3", Port: 9092})
			resp = c.roundTrip(electReq(v, int8(metadata.ElectPreferred), nil)).(*kmsg.ElectLeadersResponse)
			want = map[string]int16{"e/1": 0}
			if v == 0 {
				want = map[string]int16{}
			}
			if got := electCodes(t, resp); !maps.Equal(got, want) {
				t.Fatalf("all partitions: %v, want %v", got, want)
			}
			if p := env.partition("e", 1); p.Leader != 3 {
				t.Fatalf("e/1 after the preferred election: %+v", p)
			}

			// An empty (not null) list elects nothing.
			calls := env.fb.called("ElectLeaders")
			resp = c.roundTrip(electReq(v, 0, map[string][]int32{})).(*kmsg.ElectLeadersResponse)
			if len(resp.Topics) != 0 || resp.ErrorCode != 0 || env.fb.called("ElectLeaders") != calls {
				t.Fatalf("empty request: %+v, backend called %d times more", resp, env.fb.called("ElectLeaders")-calls)
			}
		})
	}
}

func TestElectLeadersErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		v          int16
		typ        int8
		backendErr error
		want       int16
	}{
		{"unknown election type", 1, 7, nil, kerr.InvalidRequest.Code},
		{"unknown election type v2", 2, -1, nil, kerr.InvalidRequest.Code},
		{"backend fails v0", 0, 0, fmt.Errorf("no quorum: %w", kerr.NotController), kerr.NotController.Code},
		{"backend fails v2", 2, 1, fmt.Errorf("no quorum: %w", kerr.NotController), kerr.NotController.Code},
		{"backend times out", 1, 0, fmt.Errorf("elect: %w", context.DeadlineExceeded), kerr.RequestTimedOut.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := electEnv(t)
			env.fb.setAdminErr("ElectLeaders", tc.backendErr)
			c := env.dial()
			resp := c.roundTrip(electReq(tc.v, tc.typ, map[string][]int32{"e": {0, 1}})).(*kmsg.ElectLeadersResponse)
			wantTop := tc.want
			if tc.v == 0 {
				wantTop = 0 // v0 has no top-level error
			}
			got := electCodes(t, resp)
			if resp.ErrorCode != wantTop || !maps.Equal(got, map[string]int16{"e/0": tc.want, "e/1": tc.want}) {
				t.Fatalf("top-level %d, partitions %v; want %d on each", resp.ErrorCode, got, tc.want)
			}
			if p := env.partition("e", 1); p.Leader != 3 {
				t.Fatalf("a failed request elected: %+v", p)
			}
		})
	}
}
