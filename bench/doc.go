// Package bench runs the same franz-go workloads against several broker
// processes, one after another, and reports them side by side.
//
// Every broker runs as its own OS process (Troupe's binary, or kfake wrapped
// by bench/kfakebroker), so a broker's CPU time and memory can be read from
// /proc without the client's share mixed in, and the client code path
// (package perf) is byte-for-byte the same for every broker. kfake with
// BlackholeProduce stores nothing, so its produce rate is the ceiling the
// client itself can reach on this machine.
package bench
