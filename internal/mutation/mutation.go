// Package mutation holds the test-only switches that break Troupe on
// purpose. The simulator's mutation check (sim/README.md) turns one on
// and expects its checkers to catch the damage within a stated number of
// seeds; it shows that the checkers can fail, and keeps showing it as the
// code changes.
//
// Nothing but the simulator and tests may turn a switch on: production
// code only reads them, and each read is one load of a package variable
// that is false.
package mutation

import (
	"fmt"
	"slices"
	"strings"
)

// Kind names one deliberately broken variant.
type Kind int

const (
	// None is the unbroken code.
	None Kind = iota
	// HWBeforeISR advances a leader's high watermark to its own log end,
	// before the ISR has the batches.
	HWBeforeISR
	// AckBeforeFsync acknowledges (and reports as replicated) what was
	// appended but not yet fsynced.
	AckBeforeFsync
	// StaleLeaderWrites lets a leader whose epoch was superseded keep
	// changing the partition: the controller accepts its AlterPartition
	// (an ISR shrunk to itself) without checking the leader epoch, so it
	// commits writes alone.
	StaleLeaderWrites
	// SkipTruncation makes a returning replica keep its diverged tail
	// instead of truncating it to the leader's log.
	SkipTruncation
	// ForgetOffsetCommit answers an offset commit as done without writing
	// it to the offsets partition.
	ForgetOffsetCommit
	numKinds
)

var names = [numKinds]string{
	None:               "none",
	HWBeforeISR:        "hw-before-isr",
	AckBeforeFsync:     "ack-before-fsync",
	StaleLeaderWrites:  "stale-leader-writes",
	SkipTruncation:     "skip-truncation",
	ForgetOffsetCommit: "forget-offset-commit",
}

func (k Kind) String() string {
	if k < 0 || k >= numKinds {
		return fmt.Sprintf("mutation(%d)", int(k))
	}
	return names[k]
}

// All lists every mutation but None.
func All() []Kind {
	out := make([]Kind, 0, numKinds-1)
	for k := None + 1; k < numKinds; k++ {
		out = append(out, k)
	}
	return out
}

// Parse turns a name (as String prints it) into a Kind.
func Parse(name string) (Kind, error) {
	if i := slices.Index(names[:], name); i >= 0 {
		return Kind(i), nil
	}
	return None, fmt.Errorf("unknown mutation %q (known: %s)", name, strings.Join(names[:], ", "))
}

// active is the one switch turned on, None normally.
var active Kind

// On reports whether k is the active mutation.
func On(k Kind) bool { return active == k && k != None }

// Set makes k the active mutation (None: none) and returns the one
// active before, so a test can restore it. Not safe to call while
// anything else runs.
func Set(k Kind) (previous Kind) {
	previous, active = active, k
	return previous
}

// Active is the mutation in force.
func Active() Kind { return active }
