package wire

import "time"

// collectTagged gathers the answers of sent partition actors, each result
// carrying the tag its request was sent with. answer applies one result;
// if wait runs out first, timedOut marks whatever is still unanswered.
// Actors never block on a reply, so results must have room for all sent.
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
		case <-timer.C:
			timedOut()
			return
		}
	}
}
