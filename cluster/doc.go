// Package cluster assembles one Troupe node: it reads the configuration,
// opens the storage, starts the actor system and the partition actors,
// starts the Kafka listener, and shuts all of it down in order.
//
// In later work it also owns membership (memberlist) and the inter-node
// transport; today a node is a single broker.
package cluster
