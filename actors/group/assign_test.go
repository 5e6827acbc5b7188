package group

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func testTopicID(name string) [16]byte {
	var id [16]byte
	copy(id[:], name)
	return id
}

func tp(name string, partitions int32) assignTopic {
	return assignTopic{name: name, id: testTopicID(name), partitions: partitions}
}

func mem(id string, topics ...string) assignMember {
	return assignMember{id: id, topics: topics}
}

// checkValid asserts what every assignor output must satisfy: each
// partition of a topic with subscribers goes to exactly one of them, and
// members get nothing else.
func checkValid(t *testing.T, topics []assignTopic, members []assignMember, got map[string]assignment) {
	t.Helper()
	if len(got) != len(members) {
		t.Fatalf("assignments for %d members, want %d", len(got), len(members))
	}
	seen := map[topicPartition]string{}
	for _, m := range members {
		a, ok := got[m.id]
		if !ok {
			t.Fatalf("member %s missing from the result", m.id)
		}
		for id, ps := range a {
			if !slices.IsSorted(ps) || len(slices.Compact(slices.Clone(ps))) != len(ps) {
				t.Fatalf("member %s: partitions %v not sorted and unique", m.id, ps)
			}
			ti := slices.IndexFunc(topics, func(t assignTopic) bool { return t.id == id })
			if ti < 0 || !slices.Contains(m.topics, topics[ti].name) {
				t.Fatalf("member %s got topic %x it does not subscribe to", m.id, id)
			}
			for _, p := range ps {
				if p < 0 || p >= topics[ti].partitions {
					t.Fatalf("member %s got partition %d of %s (%d partitions)", m.id, p, topics[ti].name, topics[ti].partitions)
				}
				if other, dup := seen[topicPartition{id, p}]; dup {
					t.Fatalf("%s-%d assigned to both %s and %s", topics[ti].name, p, other, m.id)
				}
				seen[topicPartition{id, p}] = m.id
			}
		}
	}
	for _, tt := range topics {
		subscribed := slices.ContainsFunc(members, func(m assignMember) bool { return slices.Contains(m.topics, tt.name) })
		for p := range tt.partitions {
			if _, ok := seen[topicPartition{tt.id, p}]; subscribed && !ok {
				t.Fatalf("%s-%d is subscribed but unassigned", tt.name, p)
			}
		}
	}
}

func sizes(members []assignMember, got map[string]assignment) []int {
	var out []int
	for _, m := range members {
		out = append(out, got[m.id].size())
	}
	return out
}

func TestAssignUniformBalanced(t *testing.T) {
	for _, tc := range []struct {
		name    string
		topics  []assignTopic
		members int
	}{
		{"one topic, divides evenly", []assignTopic{tp("a", 6)}, 3},
		{"one topic, remainder", []assignTopic{tp("a", 7)}, 3},
		{"more members than partitions", []assignTopic{tp("a", 2)}, 5},
		{"several topics", []assignTopic{tp("a", 5), tp("b", 3), tp("c", 1)}, 4},
		{"many partitions", []assignTopic{tp("a", 1000), tp("b", 17)}, 7},
		{"no partitions", []assignTopic{tp("a", 0)}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var names []string
			for _, tt := range tc.topics {
				names = append(names, tt.name)
			}
			var members []assignMember
			for i := range tc.members {
				members = append(members, mem(fmt.Sprintf("m%02d", i), names...))
			}
			got := assignUniform(tc.topics, members)
			checkValid(t, tc.topics, members, got)
			s := sizes(members, got)
			if slices.Max(s)-slices.Min(s) > 1 {
				t.Fatalf("unbalanced: %v", s)
			}
			// Round robin spreads each topic too: no member has two
			// more of a topic than another.
			for _, tt := range tc.topics {
				lo, hi := 1<<30, 0
				for _, m := range members {
					n := len(got[m.id][tt.id])
					lo, hi = min(lo, n), max(hi, n)
				}
				if hi-lo > 1 {
					t.Errorf("topic %s spread unevenly: %d..%d per member", tt.name, lo, hi)
				}
			}
		})
	}
}

// moved counts the partitions whose owner differs between two results,
// and the partitions that belong to a member in both.
func moved(before, after map[string]assignment) int {
	owner := map[topicPartition]string{}
	for m, a := range before {
		for id, ps := range a {
			for _, p := range ps {
				owner[topicPartition{id, p}] = m
			}
		}
	}
	n := 0
	for m, a := range after {
		for id, ps := range a {
			for _, p := range ps {
				if o, ok := owner[topicPartition{id, p}]; ok && o != m {
					n++
				}
			}
		}
	}
	return n
}

func withCurrent(members []assignMember, prev map[string]assignment) []assignMember {
	out := slices.Clone(members)
	for i := range out {
		out[i].current = prev[out[i].id]
	}
	return out
}

func TestAssignUniformSticky(t *testing.T) {
	topics := []assignTopic{tp("a", 12), tp("b", 6)}
	three := []assignMember{mem("m1", "a", "b"), mem("m2", "a", "b"), mem("m3", "a", "b")}
	first := assignUniform(topics, three)

	// A fourth member takes 18/4 = 4 or 5 partitions; the others give
	// up only what they must.
	four := append(withCurrent(three, first), mem("m4", "a", "b"))
	second := assignUniform(topics, four)
	checkValid(t, topics, four, second)
	if got := second["m4"].size(); got != 4 && got != 5 {
		t.Fatalf("new member got %d partitions", got)
	}
	if n := moved(first, second); n != second["m4"].size() {
		t.Fatalf("%d partitions moved between old members; only the new member's share should move (%d)", n-second["m4"].size(), second["m4"].size())
	}

	// When a member leaves, the survivors keep everything they had.
	survivors := withCurrent([]assignMember{four[0], four[1], four[3]}, second)
	third := assignUniform(topics, survivors)
	checkValid(t, topics, survivors, third)
	for _, m := range survivors {
		for id, ps := range second[m.id] {
			if len(subtractSorted(ps, third[m.id][id])) > 0 {
				t.Fatalf("survivor %s lost partitions: %v -> %v", m.id, second[m.id], third[m.id])
			}
		}
	}

	// Recomputing an unchanged group changes nothing.
	again := assignUniform(topics, withCurrent(survivors, third))
	for _, m := range survivors {
		if !again[m.id].equal(third[m.id]) {
			t.Fatalf("stable group reassigned %s: %v -> %v", m.id, third[m.id], again[m.id])
		}
	}
}

func TestAssignUniformHeterogeneous(t *testing.T) {
	topics := []assignTopic{tp("a", 8), tp("b", 4), tp("c", 3)}
	members := []assignMember{mem("m1", "a"), mem("m2", "a", "b"), mem("m3", "b", "c"), mem("m4", "c")}
	got := assignUniform(topics, members)
	checkValid(t, topics, members, got)
	checkNoImprovingMove(t, topics, members, got)
	if s := sizes(members, got); slices.Max(s)-slices.Min(s) > 1 {
		t.Fatalf("this group can be balanced within one: %v", s)
	}
}

// checkNoImprovingMove asserts the uniform assignor's balance guarantee
// for any subscriptions: no partition can move to a member subscribing
// to its topic that owns at least two fewer.
func checkNoImprovingMove(t *testing.T, topics []assignTopic, members []assignMember, got map[string]assignment) {
	t.Helper()
	for _, from := range members {
		for id, ps := range got[from.id] {
			if len(ps) == 0 {
				continue
			}
			ti := slices.IndexFunc(topics, func(t assignTopic) bool { return t.id == id })
			for _, to := range members {
				if slices.Contains(to.topics, topics[ti].name) && got[to.id].size()+1 < got[from.id].size() {
					t.Fatalf("%s (%d) could give %s to %s (%d)", from.id, got[from.id].size(), topics[ti].name, to.id, got[to.id].size())
				}
			}
		}
	}
}

func TestAssignRange(t *testing.T) {
	topics := []assignTopic{tp("a", 5), tp("b", 2), tp("c", 4)}
	members := []assignMember{mem("m2", "a", "b", "c"), mem("m1", "a", "b"), mem("m3", "a", "c")}
	got := assignRange(topics, members)
	checkValid(t, topics, members, got)
	want := map[string]string{
		"m1": "a[0 1] b[0]",
		"m2": "a[2 3] b[1] c[0 1]",
		"m3": "a[4] c[2 3]",
	}
	for id, w := range want {
		if g := formatAssignment(got[id], topics); g != w {
			t.Errorf("%s: got %q, want %q", id, g, w)
		}
	}
}

func formatAssignment(a assignment, topics []assignTopic) string {
	var parts []string
	for _, tt := range topics {
		if ps := a[tt.id]; len(ps) > 0 {
			parts = append(parts, fmt.Sprintf("%s%v", tt.name, ps))
		}
	}
	return strings.Join(parts, " ")
}

// TestAssignDeterministic feeds each assignor random groups, the same
// group in several input orders, and checks the results agree and are
// valid.
func TestAssignDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(848, 1))
	for _, name := range []string{"uniform", "range"} {
		f := serverAssignors[name]
		for iter := range 200 {
			var topics []assignTopic
			for i := range 1 + rng.IntN(5) {
				topics = append(topics, tp(fmt.Sprintf("t%d", i), int32(rng.IntN(20))))
			}
			var members []assignMember
			for i := range 1 + rng.IntN(8) {
				m := mem(fmt.Sprintf("m%d", i))
				for _, tt := range topics {
					if rng.IntN(3) > 0 {
						m.topics = append(m.topics, tt.name)
					}
				}
				members = append(members, m)
			}
			// A previous assignment to be sticky to.
			prev := f(topics, members)
			members = withCurrent(members, prev)
			want := f(topics, members)
			checkValid(t, topics, members, want)
			if name == "uniform" {
				checkNoImprovingMove(t, topics, members, want)
			}
			for range 3 {
				ts, ms := slices.Clone(topics), slices.Clone(members)
				rng.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
				rng.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
				got := f(ts, ms)
				for _, m := range members {
					if !got[m.id].equal(want[m.id]) {
						t.Fatalf("%s iteration %d: input order changed %s's assignment: %v vs %v", name, iter, m.id, got[m.id], want[m.id])
					}
				}
			}
		}
	}
}

func TestSortedListHelpers(t *testing.T) {
	for _, tc := range []struct {
		a, b                  []int32
		inter, minus, unioned []int32
	}{
		{nil, nil, nil, nil, []int32{}},
		{[]int32{1, 2, 3}, nil, nil, []int32{1, 2, 3}, []int32{1, 2, 3}},
		{[]int32{1, 3, 5}, []int32{2, 3, 4, 5}, []int32{3, 5}, []int32{1}, []int32{1, 2, 3, 4, 5}},
		{[]int32{0}, []int32{0}, []int32{0}, nil, []int32{0}},
	} {
		if got := intersectSorted(tc.a, tc.b); !slices.Equal(got, tc.inter) {
			t.Errorf("intersect(%v, %v) = %v", tc.a, tc.b, got)
		}
		if got := subtractSorted(tc.a, tc.b); !slices.Equal(got, tc.minus) {
			t.Errorf("subtract(%v, %v) = %v", tc.a, tc.b, got)
		}
		if got := unionSorted(tc.a, tc.b); !slices.Equal(got, tc.unioned) {
			t.Errorf("union(%v, %v) = %v", tc.a, tc.b, got)
		}
	}
}
