package wire

import "time"

// collectTagged gathers the answers of sent partition actors, each result
// carrying the tag its request was sent with. answer applies one result;
// if wait runs out first, timedOut marks whatever is still unanswered.
// Actors never block on a reply, so results must have room for all sent.
//
// An answer already there is taken before the timer is looked at: when
// every answer is in, collectTagged returns them all at once, whatever the
// clock says. (A select with both ready would pick one at random; the
// simulator, see inproc.go, relies on there being no such choice.)
func collectTagged[R any](results <-chan R, sent int, wait time.Duration, answer func(R), timedOut func()) {
	if sent == 0 {
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for range sent {
		select {
		case r := <-results:
			answer(r)
			continue
		default:
		}
		select {
		case r := <-results:
			answer(r)
		case <-timer.C:
			timedOut()
			return
		}
	}
}
