package main

import (
	"fmt"
	"sync/atomic"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/fetch"
	"github.com/shoal-p2p/shoal/node"
)

func (a *app) verifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify CID",
		Short: "Re-hash a held model and report each file",
		Long: `Re-read every file of a model this node holds and check every chunk and
the whole-file sha256 against the manifest. Each file is reported as ok,
missing, changed (size or modification time differ from when it was added;
such a file is not served) or corrupt. Then the signed publisher records
kept for the model are checked and their signers listed. Exits non-zero
unless every file is ok.`,
		Example: exampleBlock("shoal verify bafyrei...", "shoal verify --json bafyrei..."),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := content.ParseCID(args[0])
			if err != nil {
				return err
			}
			h, c, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			b := a.newBar("verifying", 0)
			var rep *node.VerifyReport
			if c != nil {
				rep, err = c.Verify(cmd.Context(), root.String(), b.update)
			} else {
				err = withIndex(h, func(idx *content.Index) error {
					if ri, err := idx.Root(root); err == nil {
						b.update(fetch.Progress{Total: ri.Size})
					}
					var done atomic.Int64
					rep, err = node.Verify(cmd.Context(), h, idx, root, func(n int64) { b.update(fetch.Progress{Done: done.Add(n)}) })
					return err
				})
			}
			b.finish()
			if err != nil {
				return err
			}
			if a.json {
				if err := a.printJSON(rep); err != nil {
					return err
				}
			} else {
				for _, f := range rep.Files {
					line := fmt.Sprintf("%-8s %s", f.Status, content.Escape(f.Path))
					if f.Detail != "" {
						line += ": " + f.Detail
					}
					fmt.Fprintln(a.stdout, line)
				}
				a.printSigners(rep.Signers)
			}
			if !rep.OK {
				return fmt.Errorf("%w: %s", node.ErrVerify, root)
			}
			return nil
		},
	}
}
