package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
)

func (a *app) verifyCmd() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "verify CID",
		Short: "Re-hash a held model and report each file",
		Long: `Re-read every file of a model this node holds and check every chunk and
the whole-file sha256 against the manifest. Each file is reported as ok,
missing, changed (same bytes, but its modification time differs from when
it was added; such a file is not served) or corrupt (other bytes, or
another size). Then the signed publisher records
kept for the model are checked and their signers listed. Exits non-zero
unless every file is ok.`,
		Example: exampleBlock("shoal verify bafyrei...", "shoal verify --json bafyrei..."),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := content.ParseCID(args[0])
			if err != nil {
				return err
			}
			_, svc, _, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			b := &bar{}
			if !quiet {
				b = a.newBar("verifying", 0)
			}
			rep, err := svc.Verify(cmd.Context(), root, b.update)
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
				a.printSigners(rep.Signers, rep.OK)
			}
			if !rep.OK {
				return fmt.Errorf("%w: %s is not held intact: %s", api.ErrVerify, root, verdicts(rep.Files))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

// verdicts counts the files by verdict: "2 missing, 1 corrupt".
func verdicts(files []api.VerifyFile) string {
	n := map[string]int{}
	for _, f := range files {
		n[f.Status]++
	}
	var parts []string
	for _, st := range []string{"missing", "changed", "corrupt", "ok"} {
		if n[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[st], st))
		}
	}
	return strings.Join(parts, ", ")
}
