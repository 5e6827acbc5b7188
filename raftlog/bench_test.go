package raftlog

import (
	"math"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
)

// BenchmarkSaveReadySync stores what a leader's Ready holds while it takes
// one proposal at a time: one ~200-byte entry and a hard state whose
// commit moves, synced (Ready.MustSync), on a real directory: one WAL
// fsync per call.
func BenchmarkSaveReadySync(b *testing.B) { benchmarkSaveReady(b, true) }

// BenchmarkSaveReadyNoSync is the same without the fsync: the cost of the
// path itself.
func BenchmarkSaveReadyNoSync(b *testing.B) { benchmarkSaveReady(b, false) }

func benchmarkSaveReady(b *testing.B, sync bool) {
	s, err := Open(Options{Dir: b.TempDir(), Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	data := make([]byte, 200)
	term := uint64(1)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := uint64(1); i <= uint64(b.N); i++ {
		// Stored entries are immutable (the cache keeps them), so each call
		// gets fresh ones, as raft's Readies do.
		e := &pb.Entry{Index: new(i), Term: new(term), Type: pb.EntryNormal.Enum(), Data: data}
		hs := &pb.HardState{Term: new(term), Vote: new(uint64(1)), Commit: new(i - 1)}
		if err := s.SaveReady(hs, []*pb.Entry{e}, nil, sync); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEntries reads 64 entries back, as raft does to build a MsgApp
// or apply a batch: from the cache, and from Pebble.
func BenchmarkEntries(b *testing.B) {
	for _, bc := range []struct {
		name   string
		cached bool
	}{
		{"Cached", true},
		{"Pebble", false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := Open(Options{Dir: b.TempDir(), Logger: quietLogger()})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if !bc.cached {
				s.cache = newEntryCache(0, 0)
			}
			const n = 1024
			ents := make([]*pb.Entry, n)
			for i := range ents {
				ents[i] = &pb.Entry{Index: new(uint64(i + 1)), Term: new(uint64(1)), Data: make([]byte, 200)}
			}
			if err := s.SaveReady(nil, ents, nil, false); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				lo := uint64(i%(n-64)) + 1
				got, err := s.Entries(lo, lo+64, math.MaxUint64)
				if err != nil || len(got) != 64 {
					b.Fatalf("Entries: %d, %v", len(got), err)
				}
			}
		})
	}
}
