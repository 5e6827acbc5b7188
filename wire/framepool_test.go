package wire

import "testing"

func TestFramePoolClasses(t *testing.T) {
	for _, tc := range []struct {
		n       int
		wantCap int
	}{
		{1, 1 << 10}, {1024, 1 << 10}, {1025, 1 << 11}, {100 << 10, 128 << 10},
		{16 << 20, 16 << 20}, {16<<20 + 1, 16<<20 + 1},
	} {
		b := getFrame(tc.n)
		if len(b) != tc.n || cap(b) != tc.wantCap {
			t.Errorf("getFrame(%d): len %d cap %d, want cap %d", tc.n, len(b), cap(b), tc.wantCap)
		}
		putFrame(b)
	}
	// A foreign buffer is never pooled (its capacity is not a class size).
	putFrame(make([]byte, 3000))
	if b := getFrame(3000); cap(b) != 4096 {
		t.Errorf("foreign buffer came back from the pool: cap %d", cap(b))
	}
}
