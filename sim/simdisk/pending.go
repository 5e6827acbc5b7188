package simdisk

// PendingWrites counts the writes to Tracked files not yet synced: what a
// Crash now would decide about.
func (d *Disk) PendingWrites() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := map[*node]bool{}
	var walk func(n *node) int
	walk = func(n *node) int {
		if seen[n] {
			return 0
		}
		seen[n] = true
		if !n.dir {
			return len(n.unsynced.writes)
		}
		total := 0
		for _, c := range n.children {
			total += walk(c)
		}
		return total
	}
	return walk(d.root)
}
