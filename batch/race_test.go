//go:build race

package batch

// raceEnabled lets tests skip work the race detector makes too slow.
const raceEnabled = true
