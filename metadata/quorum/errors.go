package quorum

import (
	"errors"
	"fmt"
)

var (
	// ErrNotLeader is matched (errors.Is) by every *NotLeaderError.
	ErrNotLeader = errors.New("quorum: not the leader")
	// ErrProposalDropped means the proposal will never commit: raft refused
	// it (a leadership transfer is under way, or the uncommitted log is
	// full), or another leader's entry took its place in the log.
	ErrProposalDropped = errors.New("quorum: proposal dropped")
	// ErrOutcomeUnknown means this node installed a snapshot covering the
	// proposal's place in the log, so it cannot tell whether the proposal
	// is part of it. It is only possible for a leader that was deposed.
	ErrOutcomeUnknown = errors.New("quorum: proposal outcome unknown")
	// ErrStopped is returned once the Node is closed or has failed.
	ErrStopped = errors.New("quorum: node stopped")
	// ErrTooLarge is returned for a proposal above MaxProposalBytes.
	ErrTooLarge = errors.New("quorum: proposal too large")
	// ErrTooManyPending is returned when MaxPendingProposals proposals
	// await their outcome.
	ErrTooManyPending = errors.New("quorum: too many pending proposals")
	// ErrBadMessage is returned by Core.Step for a message no peer may
	// send: misaddressed, from a non-voter, or of a local-only type.
	ErrBadMessage = errors.New("quorum: bad raft message")
	// ErrCorruptEntry is returned when a committed entry cannot be decoded.
	ErrCorruptEntry = errors.New("quorum: corrupt log entry")
	// ErrCoreFailed wraps the first fatal error of a Core (a raft panic, a
	// corrupt committed entry); every later call returns it.
	ErrCoreFailed = errors.New("quorum: core failed")
)

// NotLeaderError is returned by Propose on a node that is not the leader.
// Leader is the leader this node knows of, or -1.
type NotLeaderError struct {
	Leader int32
}

func (e *NotLeaderError) Error() string {
	if e.Leader < 0 {
		return "quorum: not the leader (leader unknown)"
	}
	return fmt.Sprintf("quorum: not the leader (leader is node %d)", e.Leader)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }
