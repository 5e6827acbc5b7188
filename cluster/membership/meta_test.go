package membership

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"
)

func TestNodeNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   int32
		ok   bool
	}{
		{"troupe-0", 0, true},
		{"troupe-42", 42, true},
		{"troupe-2147483647", 2147483647, true},
		{"troupe-2147483648", 0, false},
		{"troupe--1", 0, false},
		{"troupe-+1", 0, false},
		{"troupe-01", 0, false},
		{"troupe-", 0, false},
		{"consul-1", 0, false},
		{"", 0, false},
	} {
		id, ok := parseNodeName(tc.name)
		if id != tc.id || ok != tc.ok {
			t.Errorf("parseNodeName(%q) = %d, %v; want %d, %v", tc.name, id, ok, tc.id, tc.ok)
		}
		if tc.ok && nodeName(tc.id) != tc.name {
			t.Errorf("nodeName(%d) = %q", tc.id, nodeName(tc.id))
		}
	}
}

func TestMetaRoundTrip(t *testing.T) {
	meta := NodeMeta{NodeID: 3, Incarnation: -5, KafkaAddr: "[::1]:9092", ControllerAddr: "10.0.0.3:9093", Roles: []string{"broker"}}
	for _, leaving := range []bool{false, true} {
		b, err := encodeMeta(meta, leaving)
		if err != nil {
			t.Fatal(err)
		}
		got, gotLeaving, err := decodeMeta(b)
		if err != nil || !got.Equal(meta) || gotLeaving != leaving {
			t.Errorf("round trip (leaving %v): %+v %v %v", leaving, got, gotLeaving, err)
		}
	}
}

// TestDecodeMetaRejectsGarbage: bytes from the network never panic and
// never pass as metadata.
func TestDecodeMetaRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{
		nil,
		{0xff, 0x00},
		[]byte("{"),
		[]byte(`{"id":1}`),           // no version
		[]byte(`{"v":1,"id":"one"}`), // wrong type
		[]byte(`[1,2,3]`),
	} {
		if _, _, err := decodeMeta(b); err == nil {
			t.Errorf("decodeMeta(%q) accepted", b)
		}
	}
	// A later version with fields this one does not know still decodes.
	got, _, err := decodeMeta([]byte(`{"v":2,"id":4,"inc":9,"rack":"r1"}`))
	if err != nil || got.NodeID != 4 || got.Incarnation != 9 {
		t.Errorf("newer meta: %+v %v", got, err)
	}
}

// TestAliveDelegateAdmitsOnlyTroupeNodes: the gate that keeps memberlist's
// tables decodable.
func TestAliveDelegateAdmitsOnlyTroupeNodes(t *testing.T) {
	good, err := encodeMeta(NodeMeta{NodeID: 4, Incarnation: 1}, false)
	if err != nil {
		t.Fatal(err)
	}
	d := &delegate{m: &Membership{selfName: nodeName(1)}}
	for _, tc := range []struct {
		name string
		meta []byte
		ok   bool
	}{
		{"troupe-4", good, true},
		{"troupe-5", good, false}, // name and meta disagree
		{"troupe-4", nil, false},
		{"troupe-4", []byte("garbage"), false},
		{"consul-4", good, false},
	} {
		err := d.NotifyAlive(&memberlist.Node{Name: tc.name, Addr: net.IPv4(127, 0, 0, 1), Port: 1, Meta: tc.meta})
		if (err == nil) != tc.ok {
			t.Errorf("NotifyAlive(%s, %q) = %v, want ok %v", tc.name, tc.meta, err, tc.ok)
		}
		err = d.NotifyMerge([]*memberlist.Node{{Name: tc.name, Meta: tc.meta}})
		if (err == nil) != tc.ok {
			t.Errorf("NotifyMerge(%s, %q) = %v, want ok %v", tc.name, tc.meta, err, tc.ok)
		}
	}
}

// recordingHandler keeps slog records.
type recordingHandler struct {
	level   slog.Level
	records []slog.Record
}

func (h *recordingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.records = append(h.records, r)
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

func TestMemberlistLogsGoToSlogAtDebug(t *testing.T) {
	h := &recordingHandler{level: slog.LevelDebug}
	l := newMemberlistLogger(slog.New(h))
	l.Printf("[WARN] memberlist: Refuting a suspect message (from: %s)", "troupe-2")
	l.Printf("no level here")
	if len(h.records) != 2 {
		t.Fatalf("got %d records", len(h.records))
	}
	r := h.records[0]
	if r.Level != slog.LevelDebug || r.Message != "Refuting a suspect message (from: troupe-2)" {
		t.Errorf("record: %v %q", r.Level, r.Message)
	}
	var attrs strings.Builder
	r.Attrs(func(a slog.Attr) bool { attrs.WriteString(a.String() + " "); return true })
	if !strings.Contains(attrs.String(), "memberlist_level=WARN") {
		t.Errorf("attrs %q lack the memberlist level", attrs.String())
	}
	if h.records[1].Message != "no level here" {
		t.Errorf("plain line: %q", h.records[1].Message)
	}

	// With debug off nothing is formatted into a record.
	quiet := &recordingHandler{level: slog.LevelInfo}
	newMemberlistLogger(slog.New(quiet)).Printf("[ERR] memberlist: x")
	if len(quiet.records) != 0 {
		t.Errorf("debug disabled, still got %d records", len(quiet.records))
	}
	if n := testing.AllocsPerRun(100, func() {
		_, _ = memberlistLogWriter{logger: slog.New(quiet)}.Write([]byte("[DEBUG] memberlist: y\n"))
	}); n != 0 {
		t.Errorf("disabled debug costs %v allocations per line", n)
	}
}
