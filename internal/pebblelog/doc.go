// Package pebblelog routes Pebble's logging to log/slog, for the two
// packages that open Pebble databases (partlog's index and raftlog's raft
// log): routine messages at debug level, errors at error level, and
// Pebble's fatal reports as a panic rather than an exit from inside a
// library.
package pebblelog
