package sim

import (
	"flag"
	"fmt"
	"testing"
	"time"
)

var simSeeds = flag.Int("sim.seeds", 0, "how many random-fault seeds to run (default 200, -short 20)")

// TestSeeds runs the fixed seed list and then a batch of seeds under
// every fault kind; each must pass every checker.
func TestSeeds(t *testing.T) {
	n := 200
	if testing.Short() {
		n = 20
	}
	if *simSeeds > 0 {
		n = *simSeeds
	}
	start := time.Now()
	failed := 0
	for seed := uint64(1); seed <= uint64(n); seed++ {
		cfg := DefaultConfig()
		cfg.Seed = seed
		res := Run(cfg)
		if res.Failed() {
			failed++
			t.Errorf("seed %d failed (repro: troupe sim --seed %d):\n%s", seed, seed, res.Summary())
			if failed >= 5 {
				break
			}
		}
	}
	t.Logf("%d seeds in %v", n, time.Since(start))
}

func TestOneSeedVerbose(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Seed = 3
	res := Run(cfg)
	fmt.Println(res.Summary())
}
