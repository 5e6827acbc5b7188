package membership

import (
	"context"
	"net"
	"strconv"
	"time"
)

// The rejoin loop's timing.
const (
	// rejoinMinBackoff is the first retry delay after a failed join.
	rejoinMinBackoff = 100 * time.Millisecond
	// rejoinMaxBackoff caps it: once a seed comes up, this node finds it
	// within this long.
	rejoinMaxBackoff = 2 * time.Second
	// staleSelfMaxBackoff caps the retry delay while a peer still holds an
	// earlier incarnation of this node: that clears within a detection
	// time, and waiting longer only delays the restarted node's return.
	staleSelfMaxBackoff = 500 * time.Millisecond
	// rejoinCheckInterval is how often a node with every seed in view
	// checks again. The check is local (no network) unless a seed is
	// missing; failures and leaves also trigger a check at once.
	rejoinCheckInterval = time.Second
	// resolveTimeout bounds resolving a seed's host name.
	resolveTimeout = time.Second
)

// rejoinLoop joins the seeds in the background, and again whenever this
// node has no peers, a seed is not among the live members (it restarted,
// or a partition healed after memberlist forgot it), or a peer still
// holds a stale incarnation of this node. Every wait is bounded and every
// join attempt is bounded by the stream timeout, so Close waits at most
// one attempt.
func (m *Membership) rejoinLoop() {
	defer close(m.loopDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-m.stopLoop:
			cancel()
		case <-ctx.Done():
		}
	}()

	backoff := rejoinMinBackoff
	timer := time.NewTimer(0) // the first attempt at once
	defer timer.Stop()
	alone := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.rejoinNow:
		case <-timer.C:
		}
		stale := m.staleSelf.Swap(false)
		targets := m.joinTargets(ctx, stale)
		next := rejoinCheckInterval
		if len(targets) > 0 {
			joined := m.join(ctx, targets)
			switch {
			case ctx.Err() != nil:
				return
			case m.staleSelf.Load():
				next, backoff = backoff, min(2*backoff, staleSelfMaxBackoff)
			case joined == 0:
				next, backoff = backoff, min(2*backoff, rejoinMaxBackoff)
			default:
				backoff = rejoinMinBackoff
			}
		} else {
			backoff = rejoinMinBackoff
		}
		if nowAlone := m.ml.NumMembers() <= 1; nowAlone != alone {
			alone = nowAlone
			if alone {
				m.log.Info("no peers; retrying seeds", "seeds", m.seeds)
			} else {
				m.log.Info("joined cluster", "members", m.ml.NumMembers())
			}
		}
		// Since Go 1.23 Reset discards a pending fire; no drain needed.
		timer.Reset(next)
	}
}

// joinTargets returns the seeds to join now: all of them if this node is
// alone or all is set, else those not among the live members.
func (m *Membership) joinTargets(ctx context.Context, all bool) []string {
	if len(m.seeds) == 0 {
		return nil
	}
	if all || m.ml.NumMembers() <= 1 {
		return m.seeds
	}
	live := make(map[string]struct{})
	for _, n := range m.ml.Members() {
		live[n.Address()] = struct{}{}
	}
	var missing []string
	for _, s := range m.seeds {
		if !seedIsLive(ctx, s, live) {
			missing = append(missing, s)
		}
	}
	return missing
}

// seedIsLive reports whether seed (host:port) is the address of a live
// member. An unresolvable seed counts as missing, so it is retried.
func seedIsLive(ctx context.Context, seed string, live map[string]struct{}) bool {
	if _, ok := live[seed]; ok {
		return true
	}
	host, portStr, err := net.SplitHostPort(seed)
	if err != nil {
		return false
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		_, ok := live[joinHostPort(ip, port)]
		return ok
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if _, ok := live[joinHostPort(a.IP, port)]; ok {
			return true
		}
	}
	return false
}

// joinHostPort formats an address the way memberlist's Node.Address does.
func joinHostPort(ip net.IP, port uint64) string {
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4
	}
	return net.JoinHostPort(ip.String(), strconv.FormatUint(port, 10))
}

// join joins the targets one at a time, so that stopping takes effect
// between them, and returns how many answered.
func (m *Membership) join(ctx context.Context, targets []string) int {
	joined := 0
	for _, t := range targets {
		if ctx.Err() != nil {
			return joined
		}
		if _, err := m.ml.Join([]string{t}); err != nil {
			m.log.Debug("join failed", "seed", t, "err", err)
			continue
		}
		joined++
	}
	return joined
}
