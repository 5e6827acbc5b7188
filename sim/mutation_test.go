package sim

import (
	"flag"
	"testing"

	"github.com/troupe-io/troupe/internal/mutation"
)

var mutationSeeds = flag.Int("sim.mutation-seeds", 0, "seeds each mutation may take to be caught (default: its stated bound)")

// mutationBounds is the mutation check of sim/README.md: each broken
// variant must be caught within this many seeds (seeds 1, 2, ... in
// order). The bounds are what the check measured, with headroom.
var mutationBounds = map[mutation.Kind]int{
	mutation.HWBeforeISR:        10,
	mutation.AckBeforeFsync:     100,
	mutation.StaleLeaderWrites:  400,
	mutation.SkipTruncation:     10,
	mutation.ForgetOffsetCommit: 100,
}

// TestMutationsAreCaught turns each mutation on in turn and runs seeds
// until a checker fails: the checkers can fail, and do on each kind of
// bug they are there for.
func TestMutationsAreCaught(t *testing.T) {
	if testing.Short() || raceEnabled {
		// make test runs it without the race detector (make sim-mutations),
		// where a hundred seeds take seconds instead of minutes.
		t.Skip("the mutation check runs seeds until each broken variant is caught")
	}
	for _, k := range mutation.All() {
		t.Run(k.String(), func(t *testing.T) {
			bound := mutationBounds[k]
			if *mutationSeeds > 0 {
				bound = *mutationSeeds
			}
			seed, res := FindViolation(k, bound)
			if res == nil {
				t.Fatalf("%s: no violation in %d seeds", k, bound)
			}
			t.Logf("%s caught at seed %d: %s", k, seed, firstViolation(res))
		})
	}
}

func firstViolation(r *Result) string {
	if r.Err != nil {
		return r.Err.Error()
	}
	if len(r.Violations) > 0 {
		return r.Violations[0].String()
	}
	return ""
}
