package sim

import (
	"flag"
	"math/rand/v2"
	"testing"
	"time"
)

var (
	simSeeds  = flag.Int("sim.seeds", 0, "how many consecutive seeds TestSeeds runs (default 200, -short 20)")
	simRandom = flag.Int("sim.random", 16, "how many random seeds TestSeeds runs besides (each is logged)")
)

// fixedSeeds are seeds that once found a bug (in the simulator or in
// Troupe); they run first, every time.
var fixedSeeds = []uint64{2, 13, 179, 337, 357, 948}

// TestSeeds runs the fixed seeds, seeds 1..n and a batch of random seeds
// under every fault kind; each must pass every checker and converge once
// healed. The random seeds differ from run to run, so they explore; a
// failing one prints the command that replays it.
func TestSeeds(t *testing.T) {
	n := 200
	if testing.Short() {
		n = 20
	}
	if *simSeeds > 0 {
		n = *simSeeds
	}
	start := time.Now()
	seeds := append([]uint64(nil), fixedSeeds...)
	for s := uint64(1); s <= uint64(n); s++ {
		seeds = append(seeds, s)
	}
	for range *simRandom {
		seeds = append(seeds, uint64(n)+1+rand.Uint64N(1_000_000_000))
	}
	t.Logf("random seeds: %v", seeds[len(seeds)-*simRandom:])
	failed := 0
	for _, seed := range seeds {
		cfg := DefaultConfig()
		cfg.Seed = seed
		res := Run(cfg)
		if res.Failed() {
			failed++
			t.Errorf("seed %d failed; reproduce with: troupe sim --seed %d\n%s", seed, seed, res.Summary())
			if failed >= 5 {
				t.Fatal("stopping after 5 failed seeds")
			}
		}
	}
	t.Logf("%d seeds in %v", len(seeds), time.Since(start))
}
