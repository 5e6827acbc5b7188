package check

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// TP names one partition of a topic.
type TP struct {
	Topic     string
	Partition int32
}

func (tp TP) String() string { return tp.Topic + "-" + strconv.Itoa(int(tp.Partition)) }

func compareTP(a, b TP) int {
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}

// Violation is one observed breach of an invariant. Check is one of the
// Check* names; Detail says where and what, for a human.
type Violation struct {
	Check  string
	Detail string
}

func (v Violation) String() string { return v.Check + ": " + v.Detail }

// Names of the checks, as Violation.Check and Summary spell them.
const (
	CheckValueConflict     = "value-conflict"
	CheckEpochConflict     = "epoch-conflict"
	CheckDuplicate         = "duplicate"
	CheckConsumeAboveHW    = "consume-above-hw"
	CheckConsumeOrder      = "consume-order"
	CheckHWRegress         = "hw-regress"
	CheckLeaderEpoch       = "leader-epoch"
	CheckControllerTerm    = "controller-term"
	CheckDoubleOwnership   = "double-ownership"
	CheckCommitRegress     = "commit-regress"
	CheckAckedLost         = "acked-lost"
	CheckCommittedLost     = "committed-lost"
	CheckReplicaDivergence = "replica-divergence"
	CheckFinalMismatch     = "final-mismatch"
	CheckInvalid           = "invalid-observation"
)

type checkID uint8

// The order here is the order Summary and Stats list the checks in.
const (
	chkValueConflict checkID = iota
	chkEpochConflict
	chkDuplicate
	chkConsumeAboveHW
	chkConsumeOrder
	chkHWRegress
	chkLeaderEpoch
	chkControllerTerm
	chkDoubleOwnership
	chkCommitRegress
	chkAckedLost
	chkCommittedLost
	chkReplicaDivergence
	chkFinalMismatch
	chkInvalid
	numChecks
)

var checkNames = [numChecks]string{
	CheckValueConflict, CheckEpochConflict, CheckDuplicate,
	CheckConsumeAboveHW, CheckConsumeOrder, CheckHWRegress,
	CheckLeaderEpoch, CheckControllerTerm, CheckDoubleOwnership,
	CheckCommitRegress, CheckAckedLost, CheckCommittedLost,
	CheckReplicaDivergence, CheckFinalMismatch, CheckInvalid,
}

// MaxListed bounds the violations (and truncations) kept verbatim; the
// rest are only counted. A run that breaks an invariant usually breaks it
// thousands of times, and the first ones are the ones worth reading.
const MaxListed = 100

// maxOffset is far above anything a simulated run reaches and far enough
// below MaxInt64 that offset arithmetic cannot overflow.
const maxOffset = int64(1) << 62

// Checker accumulates observations of one simulated run and checks them.
// It is not safe for concurrent use; the simulator is single-threaded.
type Checker struct {
	parts           map[TP]*partState
	consumers       map[consumerKey]*consumerState
	controllerTerms map[uint64]int32
	groups          map[string]*groupState

	seq          uint64
	observations uint64

	checked  [numChecks]uint64
	violated [numChecks]uint64
	listed   []Violation
	unlisted uint64
	// finalOut, while Final runs, collects what Final returns.
	finalOut   *[]Violation
	finalExtra uint64

	truncations        []Truncation
	truncationCount    uint64
	truncationsCutting uint64
	implicitSessions   uint64
	uncheckedFetches   uint64
	chainRestarts      uint64

	// scratch is reused to build hash input; it grows to the largest
	// value seen plus a fixed header, never more.
	scratch []byte
}

// New returns an empty checker.
func New() *Checker {
	return &Checker{
		parts:           make(map[TP]*partState),
		consumers:       make(map[consumerKey]*consumerState),
		controllerTerms: make(map[uint64]int32),
		groups:          make(map[string]*groupState),
	}
}

// Seq hands out a fresh sequence number, larger than every one it handed
// out before. Use it as the clock of CommitAcked and CommitFetched when
// the caller has none: take Seq() when a commit is acknowledged and when
// an OffsetFetch is sent.
func (c *Checker) Seq() uint64 {
	c.seq++
	return c.seq
}

// flag records a violation of check id. It is the only place that
// formats, and it is only reached when a check fails.
func (c *Checker) flag(id checkID, format string, args ...any) {
	c.violated[id]++
	v := Violation{Check: checkNames[id], Detail: fmt.Sprintf(format, args...)}
	if len(c.listed) < MaxListed {
		c.listed = append(c.listed, v)
	} else {
		c.unlisted++
	}
	if c.finalOut != nil {
		if len(*c.finalOut) < MaxListed {
			*c.finalOut = append(*c.finalOut, v)
		} else {
			c.finalExtra++
		}
	}
}

// Violations returns the first MaxListed violations found so far,
// continuous and final, in the order they were found. Unlisted counts the
// rest.
func (c *Checker) Violations() []Violation {
	return append([]Violation(nil), c.listed...)
}

// Unlisted is how many violations were found beyond the listed ones.
func (c *Checker) Unlisted() uint64 { return c.unlisted }

// Failed reports whether any invariant was violated.
func (c *Checker) Failed() bool {
	return len(c.listed) > 0
}

// CheckStats counts one check's work.
type CheckStats struct {
	Name string
	// Checked is how many times the invariant was evaluated (per record,
	// per watermark report, per assignment entry, ...).
	Checked    uint64
	Violations uint64
}

// Truncation is one observed log truncation.
type Truncation struct {
	Node int32
	TP   TP
	To   int64
	// HW is the replica's last observed high watermark in its current
	// incarnation, -1 if none was observed.
	HW int64
	// CutCommitted is set when the truncation removed offsets the replica
	// had reported as committed (below HW or via Committed). It is not a
	// violation by itself: the final check decides whether they came back.
	CutCommitted bool
}

// Stats describes a run's bookkeeping.
type Stats struct {
	Observations uint64
	Checks       []CheckStats
	Partitions   int
	// Records is how many distinct (partition, offset) pairs are known.
	Records int
	// Unlisted violations were counted but not kept.
	Unlisted uint64
	// Truncations counts Truncated observations; TruncationsCutting those
	// that removed committed records.
	Truncations        uint64
	TruncationsCutting uint64
	// ImplicitSessions counts consumer sessions that began without Seek
	// (the first consumed offset was taken as the start).
	ImplicitSessions uint64
	// UncheckedFetches counts CommitFetched observations older than the
	// bounded commit history could judge.
	UncheckedFetches uint64
	// ChainRestarts counts running replica hashes restarted at a gap in
	// a replica's committed offsets (its log start moved).
	ChainRestarts uint64
}

// Stats returns counters for the report.
func (c *Checker) Stats() Stats {
	s := Stats{
		Observations:       c.observations,
		Partitions:         len(c.parts),
		Unlisted:           c.unlisted,
		Truncations:        c.truncationCount,
		TruncationsCutting: c.truncationsCutting,
		ImplicitSessions:   c.implicitSessions,
		UncheckedFetches:   c.uncheckedFetches,
		ChainRestarts:      c.chainRestarts,
	}
	for id := range numChecks {
		s.Checks = append(s.Checks, CheckStats{Name: checkNames[id], Checked: c.checked[id], Violations: c.violated[id]})
	}
	for _, p := range c.parts {
		s.Records += p.records
	}
	return s
}

// Truncations returns the first MaxListed truncations observed.
func (c *Checker) Truncations() []Truncation {
	return append([]Truncation(nil), c.truncations...)
}

// Summary is a report with one line per check (name, times checked,
// violations) and a last line on truncations.
func (c *Checker) Summary() string {
	var b strings.Builder
	for id := range numChecks {
		fmt.Fprintf(&b, "%-19s checked=%d violations=%d\n", checkNames[id], c.checked[id], c.violated[id])
	}
	fmt.Fprintf(&b, "%-19s observed=%d cut-committed=%d\n", "truncations", c.truncationCount, c.truncationsCutting)
	return b.String()
}

func itoa32(n int32) string { return strconv.Itoa(int(n)) }
