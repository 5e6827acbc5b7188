package config

import "strings"

// maxSuggestLen bounds the work of suggestKey; no supported key is
// anywhere near this long.
const maxSuggestLen = 128

// suggestKey returns the supported key closest to an unknown one, or ""
// when none is close enough to be a plausible typo. Closeness is the edit
// distance ignoring case, allowed to grow with the key's length (one edit
// per eight characters, at least one).
func suggestKey(unknown string) string {
	if unknown == "" || len(unknown) > maxSuggestLen {
		return ""
	}
	u := strings.ToLower(unknown)
	limit := 1 + len(u)/8
	best, bestDist, bestLenDiff := "", limit+1, 0
	for _, d := range keyDefs {
		dist, lenDiff := editDistance(u, d.name), absDiff(len(u), len(d.name))
		// On a tie the key of the same length wins: "log.dirz" is a
		// mistyped "log.dirs" more likely than a "log.dir" with a stray z.
		if dist < bestDist || dist == bestDist && lenDiff < bestLenDiff {
			best, bestDist, bestLenDiff = d.name, dist, lenDiff
		}
	}
	return best
}

func absDiff(a, b int) int {
	if a > b {
		return a - b
	}
	return b - a
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
