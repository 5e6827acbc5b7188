// Command troupe is Troupe's single binary: the broker daemon
// (troupe broker) and the client tools an operator needs around it, with
// names, flags and output modelled on Kafka's shell scripts so that habits
// and scripts carry over:
//
//	troupe topics create|list|describe|alter|delete   kafka-topics.sh
//	troupe produce                                     kafka-console-producer.sh
//	troupe consume [--group G]                         kafka-console-consumer.sh
//	troupe groups list|describe|delete|delete-offsets|reset-offsets
//	                                                   kafka-consumer-groups.sh
//	troupe leader-election                             kafka-leader-election.sh
//	troupe reassign-partitions                         kafka-reassign-partitions.sh
//	troupe metadata-quorum describe                    kafka-metadata-quorum.sh
//	troupe cluster status                              (nodes, roles, liveness, controller)
//	troupe dev --nodes 3                               a local cluster of N processes
//	troupe perf produce                                kafka-producer-perf-test.sh
//	troupe perf consume                                kafka-consumer-perf-test.sh
//
// The client tools speak the Kafka protocol through franz-go, so they work
// against any Kafka-compatible cluster, not only Troupe.
//
// Every failure ends the process with a non-zero status and exactly one line
// on stderr, "troupe: <what failed>: <why>"; nothing ever prints a stack.
// Every network wait is bounded (--request-timeout), so an unreachable
// cluster is reported instead of hanging.
package main
