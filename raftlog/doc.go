// Package raftlog will hold the storage etcd raft (go.etcd.io/raft/v3)
// needs — entries, hard state, conf state and snapshots — persisted in
// Pebble, for the KRaft-style metadata quorum.
//
// Not built yet: the single-node broker keeps its metadata log locally
// (see package metadata). The cluster issue fills this package in.
package raftlog
