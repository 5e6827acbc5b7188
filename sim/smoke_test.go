package sim

import (
	"testing"
	"time"
)

func TestSmokeNoFaults(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Seed = 1
	cfg.Faults = nil
	start := time.Now()
	res := Run(cfg)
	t.Logf("wall %v\n%s", time.Since(start), res.Summary())
	if res.Failed() {
		t.Fatal("failed")
	}
}
