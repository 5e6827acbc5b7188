package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	// An interrupt cancels the command's context so that, for example,
	// consume can stop cleanly and report its count.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one troupe invocation and returns the process exit status.
// It is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, errorLine(err))
		return 1
	}
	return 0
}

// oneLine folds any line breaks an error message carries (some broker
// messages have them) so the report stays a single line.
var oneLine = strings.NewReplacer("\r\n", "; ", "\n", "; ", "\r", "; ")

// errorLine formats err as the single line troupe prints on failure.
func errorLine(err error) string {
	return "troupe: " + oneLine.Replace(err.Error())
}

// streams are the process's standard streams, injected so that tests can
// run commands in-process.
type streams struct {
	in  io.Reader
	out io.Writer
	err io.Writer
}

// newRootCmd builds the whole command tree reading from stdin and writing to
// stdout and stderr. Errors are returned, never printed: run prints them.
func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "troupe",
		Short: "Troupe, a Kafka-compatible message broker, and its client tools",
		// We print errors ourselves, as one line, and a usage dump would
		// bury the reason.
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%s: %w (see --help)", commandName(c), err)
	})

	s := &streams{in: stdin, out: stdout, err: stderr}
	root.AddCommand(
		newTopicsCmd(s),
		newProduceCmd(s),
		newConsumeCmd(s),
		newGroupsCmd(s),
		newLeaderElectionCmd(s),
		newReassignPartitionsCmd(s),
		newMetadataQuorumCmd(s),
		newClusterCmd(s),
		newPerfCmd(s),
		newBrokerCmd(s),
		newDevCmd(s),
		newSimCmd(s),
		newVersionCmd(s),
	)
	return root
}

// commandName is c's path without the binary name, e.g. "topics create".
func commandName(c *cobra.Command) string {
	return strings.TrimPrefix(c.CommandPath(), "troupe ")
}

// newGroupCmd returns a command that only holds subcommands. Run without
// one it prints its help; run with an unknown one it fails, where cobra on
// its own would print the help and succeed.
func newGroupCmd(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%s: unknown command %q (see --help)", commandName(c), args[0])
			}
			return c.Help()
		},
	}
	c.AddCommand(subs...)
	return c
}
