package partlog

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cockroachdb/errors/oserror"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/troupe-io/troupe/internal/pebblelog"
)

// indexDirName is the Pebble database inside Options.Dir. A log directory
// is always "<topic>-<partition>", so it can never collide with this name.
const indexDirName = "__index"

// deletedSuffix marks a log directory that DeleteLog renamed away and has
// not finished removing; Open removes it.
const deletedSuffix = ".deleted"

var (
	// ErrOffsetOutOfRange is returned by Read for an offset below the log
	// start offset or above the log end offset.
	ErrOffsetOutOfRange = errors.New("partlog: offset out of range")
	// ErrClosed is returned by operations on a closed Log or Store.
	ErrClosed = errors.New("partlog: closed")
	// ErrLogOpen is returned by OpenLog for a log that is already open.
	ErrLogOpen = errors.New("partlog: log already open")
)

// LogID names one partition log.
type LogID struct {
	Topic     string
	Partition int32
}

// String is the log's directory name, "<topic>-<partition>".
func (id LogID) String() string { return id.Topic + "-" + strconv.Itoa(int(id.Partition)) }

// validate keeps names safe to use as directory names: Kafka's legal
// topic characters, so no separators, no "..", no NUL (which ends a topic
// in the index's name keys).
func (id LogID) validate() error {
	if id.Partition < 0 {
		return fmt.Errorf("partlog: %s: negative partition", id)
	}
	t := id.Topic
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return fmt.Errorf("partlog: invalid topic name %q", t)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("partlog: invalid character %q in topic name %q", c, t)
		}
	}
	return nil
}

// parseLogDir reads a directory name written by LogID.String.
func parseLogDir(name string) (LogID, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return LogID{}, false
	}
	p, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || p < 0 || strconv.FormatInt(p, 10) != name[i+1:] {
		return LogID{}, false
	}
	id := LogID{Topic: name[:i], Partition: int32(p)}
	if id.validate() != nil {
		return LogID{}, false
	}
	return id, true
}

// Options configure a Store.
type Options struct {
	// Dir holds one directory per log plus the index database.
	Dir string
	// FS is the file system everything goes through; nil means vfs.Default.
	// A simulator substitutes a crashable in-memory FS here.
	FS vfs.FS
	// Logger receives recovery reports; nil means slog.Default().
	Logger *slog.Logger
}

// Store holds every partition log of one node and the index they share.
type Store struct {
	fs     vfs.FS
	dir    string
	logger *slog.Logger
	db     *pebble.DB

	mu     sync.Mutex
	logs   map[LogID]*Log // nil value: being opened or deleted
	nextID uint32         // next log id to assign; persisted under counterKey
	closed bool
}

// Open opens (or creates) the store in opts.Dir, finishing any log
// deletion a crash interrupted.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("partlog: Options.Dir is empty")
	}
	s := &Store{fs: opts.FS, dir: opts.Dir, logger: opts.Logger, logs: make(map[LogID]*Log)}
	if s.fs == nil {
		s.fs = vfs.Default
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if _, err := s.fs.Stat(s.dir); oserror.IsNotExist(err) {
		if err := s.fs.MkdirAll(s.dir, 0o755); err != nil {
			return nil, fmt.Errorf("partlog: create %s: %w", s.dir, err)
		}
		// A new directory's name is durable only once its parent is synced.
		if err := syncDir(s.fs, s.fs.PathDir(s.dir)); err != nil {
			return nil, fmt.Errorf("partlog: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("partlog: stat %s: %w", s.dir, err)
	}
	db, err := pebble.Open(s.fs.PathJoin(s.dir, indexDirName), &pebble.Options{
		FS:     s.fs,
		Logger: pebblelog.Logger{L: s.logger, Owner: "partlog"},
	})
	if err != nil {
		return nil, fmt.Errorf("partlog: open index in %s: %w", s.dir, err)
	}
	s.db = db
	if err := s.loadMeta(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// loadMeta reads the id counter, finishes interrupted deletions and drops
// the index entries of logs whose directory is gone (a crash between
// DeleteLog's rename and its index deletion).
func (s *Store) loadMeta() error {
	s.nextID = firstLogID
	v, closer, err := s.db.Get(counterKey())
	switch {
	case err == nil:
		if len(v) == 4 {
			s.nextID = binary.BigEndian.Uint32(v)
		}
		_ = closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("partlog: read id counter: %w", err)
	}

	names, err := s.fs.List(s.dir)
	if err != nil {
		return fmt.Errorf("partlog: list %s: %w", s.dir, err)
	}
	for _, name := range names {
		if strings.HasSuffix(name, deletedSuffix) {
			if err := s.fs.RemoveAll(s.fs.PathJoin(s.dir, name)); err != nil {
				return fmt.Errorf("partlog: finish deleting %s: %w", name, err)
			}
		}
	}

	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{0, 0, 0, 0, kindName},
		UpperBound: []byte{0, 0, 0, 0, kindName + 1},
	})
	if err != nil {
		return fmt.Errorf("partlog: scan log names: %w", err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	for ok := it.First(); ok; ok = it.Next() {
		id, ok := decodeNameKey(it.Key())
		v := it.Value()
		if !ok || len(v) != 4 {
			continue
		}
		if _, err := s.fs.Stat(s.logDir(id)); err == nil || !oserror.IsNotExist(err) {
			continue
		}
		num := binary.BigEndian.Uint32(v)
		lo, hi := logRange(num)
		_ = b.Delete(it.Key(), nil)
		_ = b.DeleteRange(lo, hi, nil)
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("partlog: scan log names: %w", err)
	}
	if !b.Empty() {
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("partlog: drop index of deleted logs: %w", err)
		}
	}
	return nil
}

func decodeNameKey(k []byte) (LogID, bool) {
	rest := k[idLen+1:]
	i := len(rest) - 5
	if i < 1 || rest[i] != 0 {
		return LogID{}, false
	}
	return LogID{Topic: string(rest[:i]), Partition: int32(binary.BigEndian.Uint32(rest[i+1:]))}, true
}

func (s *Store) logDir(id LogID) string { return s.fs.PathJoin(s.dir, id.String()) }

// Close closes every open log (syncing it) and the index. It must not run
// concurrently with OpenLog or DeleteLog.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	logs := make([]*Log, 0, len(s.logs))
	for _, l := range s.logs {
		if l != nil {
			logs = append(logs, l)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, l := range logs {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("partlog: close index: %w", err))
	}
	return errors.Join(errs...)
}

// ListLogs returns every log stored on disk, open or not, sorted by topic
// then partition. The directories are the authority: a log exists if its
// directory does.
func (s *Store) ListLogs() ([]LogID, error) {
	names, err := s.fs.List(s.dir)
	if err != nil {
		return nil, fmt.Errorf("partlog: list %s: %w", s.dir, err)
	}
	var ids []LogID
	for _, name := range names {
		if id, ok := parseLogDir(name); ok {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b LogID) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return ids, nil
}

// OpenLog opens the log id, creating it empty at offset 0 if it does not
// exist and recovering it if it was not closed cleanly. A log can be open
// once at a time.
func (s *Store) OpenLog(id LogID, cfg LogConfig) (*Log, error) {
	if err := id.validate(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if _, ok := s.logs[id]; ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrLogOpen, id)
	}
	s.logs[id] = nil // reserve the name while opening without holding mu
	s.mu.Unlock()

	l, err := s.openLog(id, cfg)

	s.mu.Lock()
	if err != nil {
		delete(s.logs, id)
	} else {
		s.logs[id] = l
	}
	s.mu.Unlock()
	return l, err
}

func (s *Store) openLog(id LogID, cfg LogConfig) (*Log, error) {
	dir := s.logDir(id)
	if _, err := s.fs.Stat(dir); err != nil {
		if !oserror.IsNotExist(err) {
			return nil, fmt.Errorf("partlog: stat %s: %w", dir, err)
		}
		if err := s.fs.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("partlog: create %s: %w", dir, err)
		}
		// The directory must be durable before the index names it:
		// Open drops index entries of logs without a directory.
		if err := syncDir(s.fs, s.dir); err != nil {
			return nil, fmt.Errorf("partlog: %w", err)
		}
	}
	num, err := s.logNumber(id)
	if err != nil {
		return nil, err
	}
	return s.recoverLog(id, num, dir, cfg)
}

// logNumber returns the short id that prefixes the log's index keys,
// assigning and persisting one on first use. Ids are never reused, so a
// recreated log cannot see a deleted one's entries.
func (s *Store) logNumber(id LogID) (uint32, error) {
	key := nameKey(id)
	v, closer, err := s.db.Get(key)
	if err == nil {
		defer closer.Close()
		if len(v) != 4 {
			return 0, fmt.Errorf("partlog: %s: malformed log id in index", id)
		}
		return binary.BigEndian.Uint32(v), nil
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return 0, fmt.Errorf("partlog: %s: read log id: %w", id, err)
	}
	// Assign under mu so that counter writes reach the index in order.
	s.mu.Lock()
	defer s.mu.Unlock()
	num := s.nextID
	if num == 0 { // wrapped after 4 billion logs
		return 0, fmt.Errorf("partlog: %s: log ids exhausted", id)
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(key, binary.BigEndian.AppendUint32(nil, num), nil)
	_ = b.Set(counterKey(), binary.BigEndian.AppendUint32(nil, num+1), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, fmt.Errorf("partlog: %s: assign log id: %w", id, err)
	}
	s.nextID = num + 1
	return num, nil
}

// DeleteLog removes the log's files and index entries, closing it first if
// it is open (without syncing: its data is going away). For the log it
// counts as an owner operation. Recreating the log afterwards starts empty
// at offset 0.
//
// The directory is first renamed to "<dir>.deleted" (atomic), so that a
// crash leaves either the whole log or none of it; Open finishes the job.
func (s *Store) DeleteLog(id LogID) error {
	if err := id.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	l, ok := s.logs[id]
	if ok && l == nil {
		s.mu.Unlock()
		return fmt.Errorf("partlog: delete %s: being opened or deleted", id)
	}
	s.logs[id] = nil
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.logs, id)
		s.mu.Unlock()
	}()

	if l != nil {
		l.closeFiles()
	}
	dir := s.logDir(id)
	gone := dir + deletedSuffix
	if _, err := s.fs.Stat(dir); err == nil {
		if err := s.fs.RemoveAll(gone); err != nil {
			return fmt.Errorf("partlog: delete %s: %w", id, err)
		}
		if err := s.fs.Rename(dir, gone); err != nil {
			return fmt.Errorf("partlog: delete %s: %w", id, err)
		}
		if err := syncDir(s.fs, s.dir); err != nil {
			return fmt.Errorf("partlog: delete %s: %w", id, err)
		}
	} else if !oserror.IsNotExist(err) {
		return fmt.Errorf("partlog: delete %s: %w", id, err)
	}

	key := nameKey(id)
	v, closer, err := s.db.Get(key)
	switch {
	case err == nil:
		num := binary.BigEndian.Uint32(v)
		_ = closer.Close()
		lo, hi := logRange(num)
		b := s.db.NewBatch()
		_ = b.Delete(key, nil)
		_ = b.DeleteRange(lo, hi, nil)
		err = b.Commit(pebble.Sync)
		_ = b.Close()
		if err != nil {
			return fmt.Errorf("partlog: delete %s: drop index: %w", id, err)
		}
	case !errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("partlog: delete %s: read log id: %w", id, err)
	}
	if err := s.fs.RemoveAll(gone); err != nil {
		return fmt.Errorf("partlog: delete %s: %w", id, err)
	}
	return nil
}

// forget is called by Log.Close.
func (s *Store) forget(id LogID, l *Log) {
	s.mu.Lock()
	if s.logs[id] == l {
		delete(s.logs, id)
	}
	s.mu.Unlock()
}
