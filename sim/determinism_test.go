package sim

import "testing"

// TestDeterminism runs seeds twice each and compares trace hashes: same
// seed, same run, byte for byte.
func TestDeterminism(t *testing.T) {
	for _, seed := range []uint64{13, 2} {
		cfg := DefaultConfig()
		cfg.Seed = seed
		a, b := Run(cfg), Run(cfg)
		if a.TraceHash != b.TraceHash || a.Steps != b.Steps {
			t.Fatalf("seed %d: two runs differ: %s (%d steps) vs %s (%d steps)", seed, a.TraceHash, a.Steps, b.TraceHash, b.Steps)
		}
	}
}
