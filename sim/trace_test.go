package sim

import (
	"os"
	"testing"
)

func TestWriteTrace(t *testing.T) {
	f, _ := os.Create("/tmp/simt/trace.txt")
	defer f.Close()
	cfg := DefaultConfig()
	cfg.Seed = 13
	cfg.Trace = f
	t.Log(Run(cfg).Summary())
}
