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
	// poke is m.rejoinNow only while nothing is being retried: a retry
	// waits out its backoff whatever happens meanwhile, so that events
	// caused by a join attempt cannot trigger the next one at once.
	var poke chan struct{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-poke:
		case <-timer.C:
		}
		stale := m.staleSelf.Swap(false)
		targets := m.joinTargets(ctx, stale)
		next := rejoinCheckInterval
		poke = m.rejoinNow
		if len(targets) > 0 {
			joined := m.join(ctx, targets)
			switch {
			case ctx.Err() != nil:
				return
			case m.staleSelf.Load():
				next, backoff, poke = backoff, min(2*backoff, staleSelfMaxBackoff), nil
			case joined == 0:
				next, backoff, poke = backoff, min(2*backoff, rejoinMaxBackoff), nil
			default:
				backoff = rejoinMinBackoff
			}
		} else {
			backoff = rejoinMinBackoff
		}
		if m.announce.Swap(false) {
			// UpdateNode raises our memberlist incarnation and gossips it.
			// It waits for the gossip to go out; it needs no more than a
			// probe interval, and a timeout only means fewer copies sent.
			if err := m.ml.UpdateNode(m.cfg.ProbeInterval); err != nil {
				m.log.Debug("re-announcing after a restart", "err", err)
			}
		}
		if n := len(m.liveAddrs()); (n <= 1) != alone {
			alone = n <= 1
			if alone {
				m.log.Info("no peers; retrying seeds", "seeds", m.seedList())
			} else {
				m.log.Info("joined cluster", "members", n)
			}
		}
		// Since Go 1.23 Reset discards a pending fire; no drain needed.
		timer.Reset(next)
	}
}

// joinTargets returns the seeds to join now: all of them if this node is
// alone or all is set, else those not among the live members.
func (m *Membership) joinTargets(ctx context.Context, all bool) []string {
	seeds := m.seedList()
	if len(seeds) == 0 {
		return nil
	}
	// The live addresses come from our own table: the nodes memberlist's
	// Members returns are its internal records, which it keeps updating
	// under a lock we cannot take.
	live := m.liveAddrs()
	if all || len(live) <= 1 {
		return seeds
	}
	var missing []string
	for _, s := range seeds {
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

// liveAddrs returns the gossip addresses of the alive members, this node
// included.
func (m *Membership) liveAddrs() map[string]struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	live := make(map[string]struct{}, len(m.members))
	for _, e := range m.members {
		if e.member.State == StateAlive {
			live[e.member.Addr] = struct{}{}
		}
	}
	return live
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
