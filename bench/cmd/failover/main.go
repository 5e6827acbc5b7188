// Command failover measures Troupe's leader failover on a local 3-node
// cluster (troupe dev): SIGKILL the leader of a replicated partition (or
// the active controller) repeatedly while an idempotent acks=all
// producer runs, time from each kill to the first acknowledged produce,
// restart the node, and finally check that every acknowledged record is
// in the partition exactly once and in order.
//
//	go run ./bench/cmd/failover --kills 20
//	go run ./bench/cmd/failover --kills 20 --controller
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"time"

	"github.com/troupe-io/troupe/bench"
)

func main() {
	var (
		bin        = flag.String("troupe-bin", "", "troupe binary (default: go build ./cmd/troupe)")
		dir        = flag.String("dir", filepath.Join(os.TempDir(), "troupe-failover"), "data directory (emptied first)")
		basePort   = flag.Int("base-port", 29092, "troupe dev --base-port")
		kills      = flag.Int("kills", 20, "number of kills")
		controller = flag.Bool("controller", false, "kill the active controller instead of the partition leader")
		quiet      = flag.Bool("quiet", false, "print only the summary")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *bin == "" {
		*bin = filepath.Join(os.TempDir(), "troupe-failover-bin")
		if out, err := exec.Command("go", "build", "-o", *bin, "./cmd/troupe").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "failover: go build: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	o := bench.FailoverOptions{TroupeBin: *bin, Dir: *dir, BasePort: *basePort, Kills: *kills, KillController: *controller}
	if !*quiet {
		o.Log = os.Stdout
	}
	started := time.Now()
	res, err := bench.RunFailover(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "failover: %v\n", err)
		os.Exit(1)
	}
	what := "partition leader"
	if *controller {
		what = "active controller"
	}
	d := slices.Clone(res.Failover)
	slices.Sort(d)
	fmt.Printf("killed the %s %d times in %s; settings: troupe defaults (broker.session.timeout.ms=9000, broker.heartbeat.interval.ms=2000, controller.quorum.election.timeout.ms=1000, gossip failure detection ~1-2 s, replica.lag.time.max.ms=30000), 1 partition, RF 3, min.insync.replicas=2, idempotent acks=all franz-go producer, one record in flight, metadata min age 100 ms, retry backoff 50 ms\n",
		what, len(d), time.Since(started).Round(time.Second))
	if len(d) > 0 {
		fmt.Printf("failover (SIGKILL -> first acknowledged produce): p50 %s, max %s, min %s\n",
			d[len(d)/2].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond), d[0].Round(time.Millisecond))
	}
	fmt.Printf("%d records acknowledged, %d read back: every acknowledged record exactly once, in order\n", res.Acked, res.Consumed)
}
