package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestProduceThenConsume(t *testing.T) {
	bs := newCluster(t)
	mustTroupe(t, "", "topics", "create", "--topic", "events", "--partitions", "1", "--bootstrap-server", bs)

	// Keys are split off at the first separator; an empty key and an
	// empty value stay empty rather than null; "\r\n" endings are
	// trimmed; the last line needs no newline.
	input := "k1\tv1\nk2\tv2\twith tab\n\tkeyless\nk4\t\r\nk5\tlast"
	r := mustTroupe(t, input, "produce", "--topic", "events", "--key-separator", `\t`,
		"--header", "h1=a", "--header", "h2=b=c", "--bootstrap-server", bs)
	if r.out != "" || r.err != "" {
		t.Fatalf("produce without --verbose printed %+v", r)
	}

	r = mustTroupe(t, "", "consume", "--topic", "events", "--from-beginning", "--max-messages", "5",
		"--print-key", "--print-headers", "--bootstrap-server", bs)
	want := "h1:a,h2:b=c\tk1\tv1\n" +
		"h1:a,h2:b=c\tk2\tv2\twith tab\n" +
		"h1:a,h2:b=c\t\tkeyless\n" +
		"h1:a,h2:b=c\tk4\t\n" +
		"h1:a,h2:b=c\tk5\tlast\n"
	if r.out != want {
		t.Fatalf("consume output\n%q\nwant\n%q", r.out, want)
	}
	if r.err != "Processed a total of 5 messages\n" {
		t.Fatalf("consume stderr %q", r.err)
	}

	// Without --key-separator a line is all value and the key is null.
	mustTroupe(t, "a\tb\n", "produce", "--topic", "events", "--bootstrap-server", bs)
	r = mustTroupe(t, "", "consume", "--topic", "events", "--partition", "0", "--offset", "5",
		"--max-messages", "1", "--print-key", "--print-partition", "--print-offset", "--key-separator", "|", "--bootstrap-server", bs)
	if r.out != "Partition:0|Offset:5|null|a\tb\n" {
		t.Fatalf("consume of an unkeyed record = %q", r.out)
	}
}

func TestConsumeOffsets(t *testing.T) {
	bs := newCluster(t)
	mustTroupe(t, "", "topics", "create", "--topic", "nums", "--partitions", "1", "--bootstrap-server", bs)
	mustTroupe(t, "0\n1\n2\n3\n4\n", "produce", "--topic", "nums", "--bootstrap-server", bs)

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"offset N", []string{"--partition", "0", "--offset", "2", "--max-messages", "2", "--print-offset"}, "Offset:2\t2\nOffset:3\t3\n"},
		{"offset earliest", []string{"--offset", "earliest", "--max-messages", "1"}, "0\n"},
		{"from beginning on a partition", []string{"--partition", "0", "--from-beginning", "--max-messages", "2"}, "0\n1\n"},
		// Nothing new arrives after the latest offset: the timeout ends
		// the run successfully with nothing printed.
		{"latest times out", []string{"--timeout-ms", "300"}, ""},
		{"offset past the end times out", []string{"--partition", "0", "--offset", "99", "--timeout-ms", "300"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"consume", "--topic", "nums", "--bootstrap-server", bs}, tt.args...)
			r := mustTroupe(t, "", args...)
			if r.out != tt.want {
				t.Fatalf("stdout %q, want %q", r.out, tt.want)
			}
			if want := fmt.Sprintf("Processed a total of %d messages\n", strings.Count(tt.want, "\n")); r.err != want {
				t.Fatalf("stderr %q, want %q", r.err, want)
			}
		})
	}
}

func TestProduceFailures(t *testing.T) {
	bs := newCluster(t)
	mustTroupe(t, "", "topics", "create", "--topic", "t", "--partitions", "2", "--bootstrap-server", bs)
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"missing topic", "x\n", []string{"--topic", "nope"}, `produce to topic "nope": topic does not exist`},
		{"missing partition", "x\n", []string{"--topic", "t", "--partition", "2"}, "partition 2 does not exist: the topic has 2 partitions"},
		{"no separator", "k:v\nnokey\n", []string{"--topic", "t", "--key-separator", ":"}, `line 2: no key separator ":"`},
		{"line too long", "short\n" + strings.Repeat("x", 100) + "\n", []string{"--topic", "t", "--max-line-bytes", "50"}, "line 2 is longer than --max-line-bytes (50)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"produce", "--bootstrap-server", bs}, tt.args...)
			assertOneErrorLine(t, troupe(t, tt.stdin, args...), tt.want)
		})
	}
}

func TestProduceManyLines(t *testing.T) {
	bs := newCluster(t)
	mustTroupe(t, "", "topics", "create", "--topic", "many", "--partitions", "3", "--bootstrap-server", bs)
	// More lines than records in flight, so the pool recycles records.
	const n = 3 * defaultMaxBuffered
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "%d\n", i)
	}
	r := mustTroupe(t, in.String(), "produce", "--topic", "many", "--acks", "1", "--compression", "lz4", "--verbose", "--bootstrap-server", bs)
	if !strings.HasPrefix(r.err, fmt.Sprintf("Produced %d records", n)) {
		t.Fatalf("verbose summary %q", r.err)
	}
	r = mustTroupe(t, "", "consume", "--topic", "many", "--from-beginning", "--max-messages", fmt.Sprint(n), "--bootstrap-server", bs)
	seen := make([]bool, n)
	for _, line := range strings.Split(strings.TrimSuffix(r.out, "\n"), "\n") {
		var i int
		if _, err := fmt.Sscan(line, &i); err != nil || i < 0 || i >= n || seen[i] {
			t.Fatalf("unexpected or repeated line %q", line)
		}
		seen[i] = true
	}
	for i, ok := range seen {
		if !ok {
			t.Fatalf("record %d missing", i)
		}
	}
}

func TestStartOffsets(t *testing.T) {
	start, end := kgo.NewOffset().AtStart(), kgo.NewOffset().AtEnd()
	tests := []struct {
		name         string
		f            consumeFlags
		start, reset kgo.Offset
		wantErr      string
	}{
		{"default latest", consumeFlags{partition: -1}, end, end, ""},
		{"from beginning", consumeFlags{partition: -1, fromBeginning: true}, start, start, ""},
		{"earliest", consumeFlags{partition: -1, offset: "earliest"}, start, start, ""},
		{"latest", consumeFlags{partition: 0, offset: "latest"}, end, end, ""},
		{"exact", consumeFlags{partition: 0, offset: "7"}, kgo.NewOffset().At(7), end, ""},
		{"exact without partition", consumeFlags{partition: -1, offset: "7"}, kgo.Offset{}, kgo.Offset{}, "needs --partition"},
		{"negative", consumeFlags{partition: 0, offset: "-1"}, kgo.Offset{}, kgo.Offset{}, "non-negative"},
		{"garbage", consumeFlags{partition: 0, offset: "soon"}, kgo.Offset{}, kgo.Offset{}, "non-negative"},
		{"both", consumeFlags{partition: 0, offset: "3", fromBeginning: true}, kgo.Offset{}, kgo.Offset{}, "cannot be used together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, reset, err := tt.f.startOffsets()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || start != tt.start || reset != tt.reset {
				t.Fatalf("got %v %v %v, want %v %v", start, reset, err, tt.start, tt.reset)
			}
		})
	}
}

func TestRecordFormat(t *testing.T) {
	ts := time.UnixMilli(1700000000123)
	rec := &kgo.Record{
		Key: []byte("k"), Value: []byte("v"), Partition: 2, Offset: 9, Timestamp: ts,
		Headers: []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b"}},
	}
	bare := &kgo.Record{Value: nil, Timestamp: ts}
	tests := []struct {
		name string
		f    recordFormat
		r    *kgo.Record
		want string
	}{
		{"value only", recordFormat{sep: "\t"}, rec, "v\n"},
		{"everything", recordFormat{timestamp: true, partition: true, offset: true, headers: true, key: true, sep: "\t"}, rec,
			"CreateTime:1700000000123\tPartition:2\tOffset:9\ta:1,b:null\tk\tv\n"},
		{"nulls", recordFormat{headers: true, key: true, sep: " | "}, bare, "NO_HEADERS | null | null\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.f.appendRecord(nil, tt.r)); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestByteArena(t *testing.T) {
	var a byteArena
	x := a.copy([]byte("abc"))
	y := a.copy([]byte("de"))
	empty := a.copy(nil)
	if string(x) != "abc" || string(y) != "de" || empty == nil || len(empty) != 0 {
		t.Fatalf("copies: %q %q %v", x, y, empty)
	}
	// Appending to one copy must not overwrite the next one.
	_ = append(x, 'Z')
	if string(y) != "de" {
		t.Fatalf("append to a copy clobbered its neighbour: %q", y)
	}
	big := make([]byte, arenaLimit+1)
	if c := a.copy(big); len(c) != len(big) || &c[0] == &big[0] {
		t.Fatal("large copy is not a copy")
	}
	if allocs := testing.AllocsPerRun(1000, func() { a.copy([]byte("0123456789")) }); allocs > 0.01 {
		t.Fatalf("small copies allocate %.3f times each", allocs)
	}
}

func TestParseSeparator(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{`\t`, "\t", ""},
		{`\\t`, `\t`, ""},
		{`::`, "::", ""},
		{`a\nb`, "a\nb", ""},
		{``, "", "must not be empty"},
	}
	for _, tt := range tests {
		got, err := parseSeparator("key-separator", tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseSeparator(%q) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseSeparator(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// An interrupt (a cancelled context) ends consume normally, with its count.
func TestConsumeInterrupted(t *testing.T) {
	bs := newCluster(t)
	mustTroupe(t, "", "topics", "create", "--topic", "quiet", "--bootstrap-server", bs)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	var out, errb bytes.Buffer
	code := run(ctx, []string{"consume", "--topic", "quiet", "--bootstrap-server", bs}, strings.NewReader(""), &out, &errb)
	if code != 0 || errb.String() != "Processed a total of 0 messages\n" {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}
