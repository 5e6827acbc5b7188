package sim

import (
	"bytes"
	"testing"
)

// TestDeterminism runs seeds twice each and compares their traces: same
// seed, same code, same run, byte for byte.
func TestDeterminism(t *testing.T) {
	for _, seed := range []uint64{1, 7, 948} {
		var a, b bytes.Buffer
		cfg := DefaultConfig()
		cfg.Seed = seed
		cfg.Trace = &a
		ra := Run(cfg)
		cfg.Trace = &b
		rb := Run(cfg)
		if ra.TraceHash != rb.TraceHash || !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("seed %d: two runs differ: %s (%d steps) vs %s (%d steps)", seed, ra.TraceHash, ra.Steps, rb.TraceHash, rb.Steps)
		}
		if ra.Steps < 1000 || ra.Acked == 0 {
			t.Fatalf("seed %d: the run did nothing (%d steps, %d acked)", seed, ra.Steps, ra.Acked)
		}
	}
	// A different seed is a different run.
	cfg := DefaultConfig()
	cfg.Seed = 2
	if Run(cfg).TraceHash == func() string { c := DefaultConfig(); c.Seed = 1; return Run(c).TraceHash }() {
		t.Fatal("seeds 1 and 2 gave the same trace")
	}
}
