// Package fetcher is the follower side of partition replication: it
// brings the records of every partition this broker follows from the
// partition's leader, as Kafka's ReplicaFetcherThread does.
//
// There is one fetch loop per source broker, for all the partitions this
// broker follows from it, with one Fetch in flight at a time — so memory
// is bounded by replica.fetch.response.max.bytes per leader, whatever the
// partition count. Each round the loop
//
//  1. asks each newly followed partition where its fetch starts
//     (actors.FollowerStateRequest): the follower's log end, all of it
//     durable, the epoch of the batch before it, its leader epoch;
//  2. sends one sessionless Fetch (v12) carrying this broker's replica
//     id, replica.fetch.wait.max.ms, replica.fetch.max.bytes per
//     partition and replica.fetch.response.max.bytes in all, with every
//     partition's CurrentLeaderEpoch and LastFetchedEpoch;
//  3. hands each partition its share of the answer
//     (actors.FollowerFetchedRequest) and waits until every partition has
//     answered — which a partition does only once what it appended is
//     fsynced (under the default durability stance). So the next fetch
//     reports, as the follower's fetch offset, only what is on disk: the
//     leader's high watermark, and with it acks=-1, never counts records
//     a follower could lose in a crash.
//
// Truncation relies on KIP-320: every fetch carries LastFetchedEpoch, and
// a leader whose log differs from that point answers a DivergingEpoch
// instead of records; the partition then truncates by Kafka's follower
// rule and fetches again. The first fetch after a partition becomes a
// follower is no exception — it too carries the epoch of its last batch —
// so no separate OffsetForLeaderEpoch round trip is needed. Below the
// leader's log start (OFFSET_OUT_OF_RANGE) the partition starts over at
// the leader's log start.
//
// The fetcher speaks the Kafka protocol to the leader's Kafka listener
// over a plain connection of its own (kmsg encoding, no client library):
// it needs none of a client's routing, retries or metadata, and it wants
// exact control of what is in flight and how large an answer may be.
package fetcher
