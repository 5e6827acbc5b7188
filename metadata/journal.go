package metadata

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Journal is how the controller proposes records. On a single node it is a
// local file (FileJournal); in a cluster it is the raft quorum.
type Journal interface {
	// Append makes recs durable as one batch and returns the batch's log
	// offset (the last record's offset in a FileJournal, the raft index
	// in the quorum). A journal that implements CommitHook returns only
	// once the batch has also been applied through the hook, so the
	// caller sees its effect in Controller.Image. A journal that cannot
	// propose (a raft follower) fails with an error wrapping
	// ErrNotController.
	Append(recs []Record) (last int64, err error)
	// Replay calls fn for every durable record in order. NewController
	// builds its first image from it; a journal that restores its state
	// itself (a raft snapshot and log) may replay nothing and feed the
	// controller through Controller.Restore and the hook instead.
	Replay(fn func(offset int64, rec Record) error) error
	Close() error
}

// ApplyFunc applies one committed batch at log offset offset; see
// Controller.Apply.
type ApplyFunc func(offset int64, recs []Record) error

// CommitHook is implemented by a Journal that applies what it commits.
// NewController, after replaying, hands it the controller's Apply (which
// applies every record of a batch at the batch's offset); from
// then on the journal calls it for every committed batch, in log order,
// before Append returns for that batch. The raft quorum calls it on every
// node, for batches proposed anywhere. A journal without CommitHook has
// the controller apply a batch itself after Append returns.
type CommitHook interface {
	SetApply(fn ApplyFunc)
}

// ErrNotController is what a command fails with on a node that cannot
// propose metadata records: a raft follower, or a node whose controller
// has not (yet) taken over. It wraps kerr.NotController, so a client that
// gets it looks up the active controller and retries there.
var ErrNotController = fmt.Errorf("metadata: this node is not the active controller: %w", kerr.NotController)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maxJournalEntry bounds one entry so a corrupt length cannot make Replay
// allocate without limit.
const maxJournalEntry = 1 << 20

// FileJournal is an append-only file of entries framed as
// [uint32 length][uint32 crc32c][payload]. A torn or corrupt tail (a crash
// mid-append) is cut off on open; every Append is fsynced, then applied
// through the hook (see CommitHook), before it returns. Each record has
// its own offset, so a batch's offset is its last record's.
type FileJournal struct {
	mu    sync.Mutex
	f     *os.File
	next  int64 // offset of the next record
	size  int64 // valid bytes in the file
	apply ApplyFunc
}

// OpenFileJournal opens (creating if needed) the journal at path and
// truncates any torn tail.
func OpenFileJournal(path string) (*FileJournal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("metadata journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("metadata journal: %w", err)
	}
	j := &FileJournal{f: f}
	n, size, err := j.scan(nil)
	if err != nil {
		f.Close()
		return nil, err
	}
	j.next, j.size = n, size
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("metadata journal: %w", err)
	}
	if st.Size() != size {
		// Torn tail from a crash during Append: it was never acknowledged.
		if err := f.Truncate(size); err != nil {
			f.Close()
			return nil, fmt.Errorf("metadata journal: truncate torn tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("metadata journal: %w", err)
		}
	}
	return j, nil
}

// scan reads every valid entry, calling fn when non-nil, and returns the
// entry count and the byte length of the valid prefix.
func (j *FileJournal) scan(fn func(offset int64, rec Record) error) (int64, int64, error) {
	if _, err := j.f.Seek(0, io.SeekStart); err != nil {
		return 0, 0, fmt.Errorf("metadata journal: %w", err)
	}
	r := bufio.NewReader(j.f)
	var (
		hdr   [8]byte
		n     int64
		valid int64
	)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			break // clean end or torn header
		}
		l := binary.BigEndian.Uint32(hdr[:4])
		if l > maxJournalEntry {
			break
		}
		payload := make([]byte, l)
		if _, err := io.ReadFull(r, payload); err != nil {
			break
		}
		if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(hdr[4:]) {
			break
		}
		if fn != nil {
			rec, err := DecodeRecord(payload)
			if err != nil {
				return 0, 0, fmt.Errorf("metadata journal entry %d: %w", n, err)
			}
			if err := fn(n, rec); err != nil {
				return 0, 0, err
			}
		}
		n++
		valid += 8 + int64(l)
	}
	return n, valid, nil
}

// Replay implements Journal.
func (j *FileJournal) Replay(fn func(offset int64, rec Record) error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	_, _, err := j.scan(fn)
	return err
}

// SetApply implements CommitHook.
func (j *FileJournal) SetApply(fn ApplyFunc) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.apply = fn
}

// Append implements Journal. The hook runs under the journal's lock, so
// batches are applied in the order they were written. The hook is called
// with the batch's last record offset; NewController installs one that
// numbers the records before it as Replay does.
func (j *FileJournal) Append(recs []Record) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(recs) == 0 {
		return j.next - 1, nil
	}
	var buf []byte
	for _, rec := range recs {
		p, err := rec.Encode()
		if err != nil {
			return 0, fmt.Errorf("metadata journal: encode: %w", err)
		}
		if len(p) > maxJournalEntry {
			return 0, errors.New("metadata journal: record too large")
		}
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(p)))
		buf = binary.BigEndian.AppendUint32(buf, crc32.Checksum(p, castagnoli))
		buf = append(buf, p...)
	}
	if _, err := j.f.WriteAt(buf, j.size); err != nil {
		// Cut back whatever part landed so the file stays a valid prefix.
		_ = j.f.Truncate(j.size)
		return 0, fmt.Errorf("metadata journal: write: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		_ = j.f.Truncate(j.size)
		return 0, fmt.Errorf("metadata journal: sync: %w", err)
	}
	j.size += int64(len(buf))
	j.next += int64(len(recs))
	last := j.next - 1
	if j.apply != nil {
		if err := j.apply(last, recs); err != nil {
			// Durable but not applied: the records replay at the next
			// start, where the same error stops the node rather than
			// letting it serve an image that differs from its journal.
			return 0, fmt.Errorf("metadata journal: apply offset %d: %w", last, err)
		}
	}
	return last, nil
}

// Close implements Journal.
func (j *FileJournal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.f.Close()
}
