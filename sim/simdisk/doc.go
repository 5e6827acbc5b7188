// Package simdisk is the simulator's disk: one node's file system, a
// vfs.FS over Pebble's crashable in-memory FS, that can lose power
// (Disk.Crash) and inject I/O faults, deterministically from a seed.
//
// # What a crash keeps
//
// Crash replaces the file system with a clone holding what was durable:
//
//   - A file's data as of its last successful Sync (or SyncData). Writes
//     made since are in the "page cache" and may or may not have reached
//     the platters, see below.
//   - A directory entry (a file's or subdirectory's name) only if the
//     directory holding it was synced (OpenDir(dir).Sync()) after the entry
//     was created, renamed or removed. A file that was written and synced
//     but whose directory was not synced since its Create vanishes, as it
//     can on a real file system. That includes the node's own base
//     directories: the simulator must create them and sync their parents
//     (up to "/") before relying on anything below them.
//
// Then, for every Tracked file that survived (Config.Tracked), a seeded
// share of its unsynced writes is put back, in the order they were made:
// the first K writes are kept whole (K uniform in [0, n]), the write after
// them is torn (a seeded non-empty prefix of it survives) or dropped, and
// nothing after that survives. This models a disk writing a file's dirty
// pages roughly in order; real disks can reorder pages and tear at sector
// granularity, which this model deliberately leaves out to stay simple.
// Whatever was put back is durable from then on.
//
// Files that are not Tracked (Pebble's databases) keep exactly their
// synced data and nothing more. Pebble writes its WAL and tables from
// background goroutines at moments the scheduler does not control, so
// which of those writes exist at a crash is not reproducible; drawing
// randomness over them, or even letting their number decide how many
// draws a crash makes, would make a run depend on goroutine timing. What
// Pebble synced, by contrast, is ordered by the calls the simulator made
// (a synced commit returns only after its WAL sync). Directory entries
// follow the same rule for both kinds: synced ones survive, others do not.
//
// To put the unsynced writes back, the Disk records, per Tracked file, the
// writes made since its last successful Sync (offset and bytes). The record
// is bounded by Config.MaxUnsyncedBytes; a file whose record outgrows it
// drops the record (Stats.RecordOverflows) and keeps only its synced data
// at the next crash (CrashReport.OverflowedFiles) unless it is synced
// first.
//
// A crash kills the process that used the disk: every file handle and the
// FS value handed out before the crash fail every later call with an error
// wrapping ErrCrashed, so a goroutine of the dead process (a Pebble
// compaction, say) can never write into the new file system. FS returns
// the new one. Beware that Pebble answers some I/O errors (a failed
// MANIFEST write, a failed commit) with Logger.Fatalf, which
// internal/pebblelog turns into a panic: the simulator must not drive a
// dead process's database (commit to it, Close it) after its crash, and
// should abandon it instead.
//
// # Faults
//
// Faults hit Tracked files (and Tracked directories' syncs) only, each
// drawn per operation from the Disk's own generator:
//
//   - Faults.DiskFullRate: a write or Preallocate fails with an error
//     wrapping syscall.ENOSPC and writes nothing.
//   - Faults.WriteErrorRate: a write fails with an error wrapping
//     syscall.EIO after writing a seeded prefix of its data, possibly
//     empty (a short, torn write). The prefix is in the page cache like
//     any write: a later Sync makes it durable.
//   - Faults.SyncErrorRate: a Sync or SyncData (of a file or a directory)
//     fails with an error wrapping syscall.EIO and syncs nothing; the data
//     stays unsynced.
//   - SetFull(true) starts a persistent disk-full episode: every Tracked
//     write and Preallocate fails with ENOSPC until SetFull(false).
//
// # Determinism
//
// The Disk draws randomness only for operations on Tracked files and
// directories, and in Crash, which visits files in path order. Those
// operations are the simulator's own, made from its single thread, so the
// same Seed and the same sequence of calls give the same faults and the
// same crash outcomes. List returns names sorted, unlike MemFS, so that
// callers iterating a directory do so in a reproducible order.
//
// The Disk is safe for concurrent use: one mutex serializes every call,
// which also keeps Crash from cloning the MemFS while an operation is
// half done (MemFS's Link takes its clone lock twice and would otherwise
// deadlock against a concurrent clone; ReuseForWrite, which Pebble's WAL
// recycling uses, does too, so the Disk does it as a rename and an open).
//
// # What files offer
//
// Files implement vfs.File and nothing more: Fd is vfs.InvalidFd (no
// system call can reach around the Disk; partlog then skips fallocate)
// and there is no Truncate method (partlog then truncates a segment by
// copying its prefix to a new file renamed over it, not in place). A
// closed or dead handle returns an error where a MemFS file would panic.
package simdisk
