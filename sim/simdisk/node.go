package simdisk

import (
	"math/rand/v2"
	"strings"
)

// node mirrors one file or directory of the MemFS. MemFS hides which file
// object a name points to, and a crash needs it: the unsynced writes of a
// file belong to the file, not to a name (a rename moves them, a Create
// over the name starts a new file while open handles keep writing the old
// one), and what survives a crash is the file that the directory's synced
// entry names. So the Disk keeps the same tree MemFS does, updated after
// each successful namespace operation exactly as MemFS updates its own:
// children are the current entries, synced those of the directory's last
// sync, which is all a crash keeps.
type node struct {
	dir      bool
	children map[string]*node // directory: current entries
	synced   map[string]*node // directory: entries at its last sync; nil before

	tracked   bool     // file: faults and unsynced-write records apply
	syncedLen int64    // tracked file: its size at its last successful sync
	unsynced  unsynced // tracked file: writes since its last successful sync
}

func newDir() *node { return &node{dir: true, children: make(map[string]*node)} }

// extent is one recorded write: n bytes at off, its data the next n bytes
// of unsynced.data after those of the extents before it.
type extent struct {
	off int64
	n   int
}

// unsynced records a file's writes since its last successful sync, in
// order, their data back to back in one buffer so that recording a write
// costs no allocation once the buffer has grown.
//
// Invariant: the sum of the writes' n is len(data), at most the Disk's
// maxRec; a record that would outgrow it is dropped and lost set, until
// the next sync.
type unsynced struct {
	writes []extent
	data   []byte
	lost   bool

	// The crash outcome, set by decide: the first keep writes survive
	// whole, then tear bytes of the next one (0: none of it).
	keep, tear int
}

// retainBytes is the buffer capacity a sync keeps for the next writes;
// a larger one is freed, so that a file that once had a big unsynced tail
// does not pin its buffer forever.
const retainBytes = 1 << 20

// record appends a write of p at off, or drops the whole record if it
// would outgrow max. It reports whether the record overflowed just now.
func (u *unsynced) record(off int64, p []byte, max int) (overflowed bool) {
	if u.lost {
		return false
	}
	if len(u.data)+len(p) > max {
		u.writes, u.data, u.lost = nil, nil, true
		return true
	}
	u.writes = append(u.writes, extent{off: off, n: len(p)})
	u.data = append(u.data, p...)
	return false
}

// mark and undo let a write whose underlying MemFS call failed take its
// record back.
func (u *unsynced) mark() (writes, data int) { return len(u.writes), len(u.data) }

func (u *unsynced) undo(writes, data int) {
	if !u.lost {
		u.writes, u.data = u.writes[:writes], u.data[:data]
	}
}

// clear forgets the record: everything written is now durable.
func (u *unsynced) clear() {
	if cap(u.data) > retainBytes {
		u.data = nil
	}
	u.writes, u.data, u.lost = u.writes[:0], u.data[:0], false
}

// decide draws how much of the record a crash keeps: a uniform number of
// whole writes, then the next write torn (a non-empty proper prefix) or
// dropped with even odds. A one-byte write cannot tear.
func (u *unsynced) decide(rng *rand.Rand) {
	u.keep, u.tear = rng.IntN(len(u.writes)+1), 0
	if u.keep < len(u.writes) && rng.IntN(2) == 0 {
		if n := u.writes[u.keep].n; n > 1 {
			u.tear = 1 + rng.IntN(n-1)
		}
	}
}

// splitPath splits a name the way MemFS walks it: leading separators
// dropped, "." alone is the root, empty elements skipped.
func splitPath(name string) []string {
	name = strings.TrimLeft(name, "/")
	if name == "." || name == "" {
		return nil
	}
	parts := strings.Split(name, "/")
	out := parts[:0]
	for _, part := range parts {
		if part != "" {
			out = append(out, part)
		}
	}
	return out
}

// canonical is the absolute form of name that Config.Tracked sees.
func canonical(name string) string { return "/" + strings.Join(splitPath(name), "/") }

// lookup returns the node at name, or nil.
func (d *Disk) lookup(name string) *node {
	n := d.root
	for _, part := range splitPath(name) {
		if !n.dir {
			return nil
		}
		if n = n.children[part]; n == nil {
			return nil
		}
	}
	return n
}

// parentOf returns the directory that holds name's last element and that
// element, or nil if there is no such directory.
func (d *Disk) parentOf(name string) (*node, string) {
	parts := splitPath(name)
	if len(parts) == 0 {
		return nil, ""
	}
	dir := d.root
	for _, part := range parts[:len(parts)-1] {
		if dir = dir.children[part]; dir == nil || !dir.dir {
			return nil, ""
		}
	}
	return dir, parts[len(parts)-1]
}

// link points name at n in the mirror.
func (d *Disk) link(name string, n *node) {
	if dir, base := d.parentOf(name); dir != nil {
		dir.children[base] = n
	}
}

// unlink removes name from the mirror and returns what it pointed at.
func (d *Disk) unlink(name string) *node {
	dir, base := d.parentOf(name)
	if dir == nil {
		return nil
	}
	n := dir.children[base]
	delete(dir.children, base)
	return n
}

// mkdirAll mirrors MkdirAll.
func (d *Disk) mkdirAll(name string) {
	n := d.root
	for _, part := range splitPath(name) {
		child := n.children[part]
		if child == nil {
			child = newDir()
			n.children[part] = child
		}
		if !child.dir {
			return
		}
		n = child
	}
}

// newFile returns the mirror of a file just created at name.
func (d *Disk) newFile(name string) *node { return &node{tracked: d.tracked(name)} }
