package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/troupe-io/troupe/internal/mutation"
	"github.com/troupe-io/troupe/sim"
	"github.com/troupe-io/troupe/sim/sched"
)

// newSimCmd returns `troupe sim`: one or more seeded runs of the
// deterministic simulator.
func newSimCmd(s *streams) *cobra.Command {
	var (
		seed       uint64
		seeds      int
		steps      uint64
		faults     string
		traceFile  string
		nodes      int
		safety     time.Duration
		mutationID string
	)
	c := &cobra.Command{
		Use:   "sim",
		Short: "Simulate a whole cluster under faults, deterministically, and check it",
		Long: `Runs a Troupe cluster — the daemon's own partition, group, controller and
raft code — in one process on a simulated clock, network and disk, under
crashes, partitions, pauses, disk faults and clock jumps, with seeded
producers, consumers and admin operations, and checks that no acknowledged
record is lost or duplicated, replicas agree, and groups and offsets stay
consistent. The same seed on the same build replays the same run, byte for
byte; a failing run prints the command that reproduces it.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			fs, err := sim.ParseFaults(faults)
			if err != nil {
				return fmt.Errorf("sim: %w", err)
			}
			mut, err := mutation.Parse(mutationID)
			if err != nil {
				return fmt.Errorf("sim: --mutation: %w", err)
			}
			if !c.Flags().Changed("seed") {
				seed = uint64(time.Now().UnixNano()) % 1_000_000_000
			}
			if seeds < 1 {
				return errors.New("sim: --seeds must be at least 1")
			}
			var trace *os.File
			if traceFile != "" {
				if seeds > 1 {
					return errors.New("sim: --trace takes one seed (drop --seeds)")
				}
				if trace, err = os.Create(traceFile); err != nil {
					return fmt.Errorf("sim: %w", err)
				}
				defer trace.Close()
			}
			failed := 0
			start := time.Now()
			var simulated sched.Time
			for i := range seeds {
				cfg := sim.DefaultConfig()
				cfg.Seed, cfg.Faults, cfg.MaxSteps, cfg.Nodes, cfg.Mutation = seed+uint64(i), fs, steps, nodes, mut
				if safety > 0 {
					cfg.SafetyTime = sched.Time(safety / time.Microsecond)
				}
				if trace != nil {
					cfg.Trace = trace
				}
				res := sim.Run(cfg)
				simulated += res.SimTime
				if seeds == 1 || res.Failed() {
					fmt.Fprint(s.out, res.Summary())
				}
				if res.Failed() {
					failed++
					fmt.Fprintf(s.out, "FAILED; reproduce with: %s\n", reproCommand(cfg, c))
				}
			}
			wall := time.Since(start)
			fmt.Fprintf(s.out, "%d seed(s), %d failed, in %v (%.0f simulated seconds per wall second)\n",
				seeds, failed, wall.Round(time.Millisecond), simulated.Seconds()/wall.Seconds())
			if failed > 0 {
				return fmt.Errorf("sim: %d of %d seed(s) failed", failed, seeds)
			}
			return nil
		},
	}
	f := c.Flags()
	f.Uint64Var(&seed, "seed", 0, "the seed to run (default: a random one, printed)")
	f.IntVar(&seeds, "seeds", 1, "run this many consecutive seeds from --seed")
	f.Uint64Var(&steps, "steps", 0, "end the fault phase after this many events (0: after --time)")
	f.StringVar(&faults, "faults", "all", "faults to inject: all, none, or a list of "+strings.Join(sim.AllFaults, ","))
	f.StringVar(&traceFile, "trace", "", "write every event of the run to this file")
	f.IntVar(&nodes, "nodes", 3, "nodes in the simulated cluster")
	f.DurationVar(&safety, "time", 10*time.Second, "simulated time of the fault phase")
	f.StringVar(&mutationID, "mutation", "none", "run a deliberately broken variant (see sim/README.md)")
	return c
}

// reproCommand is the command line that replays cfg's run.
func reproCommand(cfg sim.Config, c *cobra.Command) string {
	args := []string{"troupe sim", fmt.Sprintf("--seed %d", cfg.Seed)}
	for _, name := range []string{"faults", "steps", "nodes", "time", "mutation"} {
		if fl := c.Flags().Lookup(name); fl != nil && fl.Changed {
			args = append(args, fmt.Sprintf("--%s %s", name, fl.Value.String()))
		}
	}
	return strings.Join(args, " ")
}
