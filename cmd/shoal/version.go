package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/node"
)

// versionInfo is what `shoal version` reports, from the build info (so
// `go install …@v1.2.3` and a build in a checkout both say the truth).
type versionInfo struct {
	Version  string   `json:"version"`   // module version, or "(devel)"
	Commit   string   `json:"commit"`    // VCS revision, when built from a checkout
	Dirty    bool     `json:"dirty"`     // built with uncommitted changes
	Go       string   `json:"go"`        // Go version it was built with
	Protocol []string `json:"protocols"` // libp2p protocol IDs it speaks
	Manifest int      `json:"manifest_format"`
	Chunker  int      `json:"chunker"` // chunking rule version
}

func currentVersion() versionInfo {
	v := versionInfo{Version: "(unknown)", Go: runtime.Version(), Protocol: node.Protocols(),
		Manifest: content.FormatVersion, Chunker: content.ChunkerVersion}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v.Version = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.modified":
				v.Dirty = s.Value == "true"
			}
		}
	}
	return v
}

func (v versionInfo) String() string {
	commit := v.Commit
	if commit == "" {
		commit = "unknown"
	}
	if v.Dirty {
		commit += " (modified)"
	}
	return fmt.Sprintf("shoal %s\ncommit %s\ngo %s\nprotocols %v\nmanifest format %d, chunker %d\n",
		v.Version, commit, v.Go, v.Protocol, v.Manifest, v.Chunker)
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Show the version, commit, Go version, protocols and chunking rules",
		Example: exampleBlock("shoal version", "shoal --version", "shoal version --json"),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := currentVersion()
			if a.json {
				return a.printJSON(v)
			}
			fmt.Fprint(a.stdout, v)
			return nil
		},
	}
}
