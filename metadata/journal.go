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
)

// Journal makes metadata records durable in order. On a single node it is a
// local file (FileJournal); the cluster work replaces it with a raft log.
type Journal interface {
	// Append makes recs durable and returns the offset of the last one.
	Append(recs []Record) (last int64, err error)
	// Replay calls fn for every durable record in order.
	Replay(fn func(offset int64, rec Record) error) error
	Close() error
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maxJournalEntry bounds one entry so a corrupt length cannot make Replay
// allocate without limit.
const maxJournalEntry = 1 << 20

// FileJournal is an append-only file of entries framed as
// [uint32 length][uint32 crc32c][payload]. A torn or corrupt tail (a crash
// mid-append) is cut off on open; every Append is fsynced before it
// returns.
type FileJournal struct {
	mu   sync.Mutex
	f    *os.File
	next int64 // offset of the next record
	size int64 // valid bytes in the file
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

// Append implements Journal.
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
	return j.next - 1, nil
}

// Close implements Journal.
func (j *FileJournal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.f.Close()
}
