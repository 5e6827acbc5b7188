package sim

import (
	"flag"
	"os"
	"testing"
)

var dbgSeed = flag.Int("dbg.seed", 0, "seed to trace")

func TestDbgSeed(t *testing.T) {
	if *dbgSeed == 0 {
		t.Skip()
	}
	f, _ := os.Create("/tmp/dbg/trace.txt")
	defer f.Close()
	cfg := DefaultConfig()
	cfg.Seed = uint64(*dbgSeed)
	cfg.Trace = f
	t.Log(Run(cfg).Summary())
}
