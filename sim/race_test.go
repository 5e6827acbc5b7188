//go:build race

package sim

// raceEnabled lets tests skip work the race detector makes too slow.
const raceEnabled = true
