package raftlog

import (
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// FuzzEntryIndexTerm: Open reads index and term straight off the wire;
// on any input it must not panic, and wherever protobuf decodes an Entry
// it must read the same index and term.
func FuzzEntryIndexTerm(f *testing.F) {
	for _, e := range []*pb.Entry{
		{},
		{Index: new(uint64(7)), Term: new(uint64(3)), Type: pb.EntryConfChange.Enum(), Data: []byte("payload")},
		{Index: new(uint64(1 << 63)), Term: new(uint64(0))},
	} {
		v, err := proto.Marshal(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v)
	}
	f.Add([]byte{0x10, 0x05, 0x10, 0x06}) // a repeated term: the last wins
	f.Add([]byte{0x12, 0x01, 0x00})       // term with the wrong wire type
	f.Fuzz(func(t *testing.T, b []byte) {
		index, term, err := entryIndexTerm(b)
		var e pb.Entry
		if proto.Unmarshal(b, &e) != nil {
			return
		}
		if err != nil {
			t.Fatalf("protobuf decodes %x, entryIndexTerm does not: %v", b, err)
		}
		if index != e.GetIndex() || term != e.GetTerm() {
			t.Fatalf("%x: entryIndexTerm = %d, %d; protobuf %d, %d", b, index, term, e.GetIndex(), e.GetTerm())
		}
	})
}

func TestEntryKeyOrder(t *testing.T) {
	tests := []struct{ a, b uint64 }{{0, 1}, {255, 256}, {1<<32 - 1, 1 << 32}, {1<<63 - 1, 1 << 63}}
	for _, tt := range tests {
		ka, kb := makeEntryKey(tt.a), makeEntryKey(tt.b)
		if string(ka[:]) >= string(kb[:]) {
			t.Errorf("key(%d) does not sort before key(%d)", tt.a, tt.b)
		}
		if i, ok := parseEntryKey(kb[:]); !ok || i != tt.b {
			t.Errorf("parseEntryKey(key(%d)) = %d, %v", tt.b, i, ok)
		}
	}
	if _, ok := parseEntryKey([]byte{kindEntry, 1}); ok {
		t.Error("parseEntryKey accepted a short key")
	}
}
