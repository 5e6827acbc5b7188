package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// newVersionCmd returns `troupe version`: the module version and VCS
// revision the binary was built from, and the Go version.
func newVersionCmd(s *streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			version, revision := "(devel)", ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				if bi.Main.Version != "" {
					version = bi.Main.Version
				}
				for _, kv := range bi.Settings {
					if kv.Key == "vcs.revision" {
						revision = kv.Value
					}
				}
			}
			line := "troupe " + version
			if revision != "" {
				line += " " + revision
			}
			_, err := fmt.Fprintf(s.out, "%s %s %s/%s\n", line, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
