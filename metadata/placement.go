package metadata

import "encoding/binary"

// liveBrokers lists the unfenced brokers by id: the ones new replicas go
// to.
func liveBrokers(img *Image) []int32 {
	var ids []int32
	for _, b := range img.Brokers {
		if !b.Fenced {
			ids = append(ids, b.ID)
		}
	}
	return ids
}

// assignReplicas places partitions [first, first+n) of topic id on
// brokers (distinct ids), rf replicas each, the way Kafka's rack-unaware
// assignment does: partition p's first replica (its leader) is
// brokers[(start+p) mod len], so leaders go round-robin; its followers
// come at offsets 1 + (shift+j) mod (len-1) after it, where shift grows
// each time the partitions wrap around the brokers, so followers spread
// too and no broker holds two replicas of one partition. start and shift
// come from the topic id, which is random: topics do not all put their
// first leader on the same broker, and adding partitions to a topic
// continues its pattern. Needs 1 ≤ rf ≤ len(brokers).
func assignReplicas(brokers []int32, id TopicID, first, n int32, rf int) [][]int32 {
	nb := len(brokers)
	start := int(binary.BigEndian.Uint16(id[0:2])) % nb
	shift0 := int(binary.BigEndian.Uint16(id[2:4])) % nb
	out := make([][]int32, 0, n)
	for p := int(first); p < int(first+n); p++ {
		replicas := make([]int32, rf)
		lead := (start + p) % nb
		replicas[0] = brokers[lead]
		shift := shift0 + p/nb
		for j := 0; j < rf-1; j++ {
			replicas[j+1] = brokers[(lead+1+(shift+j)%(nb-1))%nb]
		}
		out = append(out, replicas)
	}
	return out
}
