// Command kfakebroker runs franz-go's kfake cluster as a standalone,
// single-broker process, so that benchmarks can drive it exactly like a
// real broker: over TCP, in its own address space, with its own CPU time
// readable from /proc. Running kfake in the benchmark's own process would
// mix the client's and the broker's CPU and garbage collection.
//
// Usage:
//
//	kfakebroker --addr 127.0.0.1:9092 [--data-dir DIR [--sync-writes]] [--blackhole]
//
// It serves until SIGTERM or SIGINT, then closes the cluster, which with a
// data directory flushes its state to disk.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kfakebroker:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("kfakebroker", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9092", "host:port to listen on")
	dataDir := fs.String("data-dir", "", "persist to this directory (empty: in memory)")
	syncWrites := fs.Bool("sync-writes", false, "fsync every produced batch (needs --data-dir)")
	blackhole := fs.Bool("blackhole", false, "acknowledge produced records without storing them")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *syncWrites && *dataDir == "" {
		return fmt.Errorf("--sync-writes needs --data-dir")
	}
	opts, err := clusterOpts(*addr, *dataDir, *syncWrites, *blackhole)
	if err != nil {
		return err
	}

	// Subscribe before the listener opens, so a SIGTERM sent as soon as
	// the port answers is never lost to the default handler.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("start kfake cluster: %w", err)
	}
	fmt.Fprintf(os.Stderr, "kfakebroker: listening on %v\n", c.ListenAddrs())
	<-sigs
	c.Close()
	return nil
}

// clusterOpts translates the flags into kfake options. kfake binds
// 127.0.0.1 when given only a port; any other host goes through ListenFn.
func clusterOpts(addr, dataDir string, syncWrites, blackhole bool) ([]kfake.Opt, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--addr %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("--addr %q: bad port", addr)
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port)}
	if host != "127.0.0.1" {
		opts = append(opts, kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, addr)
		}))
	}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir))
	}
	if syncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	if blackhole {
		opts = append(opts, kfake.BlackholeProduce())
	}
	return opts, nil
}
