package main

import "testing"

func TestClusterOpts(t *testing.T) {
	tests := []struct {
		name    string
		addr    string
		wantN   int // options produced
		wantErr bool
	}{
		{"loopback port only", "127.0.0.1:9092", 2, false},
		{"other host adds a listen function", "0.0.0.0:9092", 3, false},
		{"no port", "127.0.0.1", 0, true},
		{"bad port", "127.0.0.1:http", 0, true},
		{"port out of range", "127.0.0.1:70000", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := clusterOpts(tt.addr, "", false, false)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if len(opts) != tt.wantN {
				t.Fatalf("%d options, want %d", len(opts), tt.wantN)
			}
		})
	}
	opts, err := clusterOpts("127.0.0.1:1", "/d", true, true)
	if err != nil || len(opts) != 5 {
		t.Fatalf("all flags: %d options, err %v; want 5", len(opts), err)
	}
}

func TestSyncWritesNeedsDataDir(t *testing.T) {
	if err := run([]string{"--sync-writes"}); err == nil {
		t.Fatal("run accepted --sync-writes without --data-dir")
	}
}
