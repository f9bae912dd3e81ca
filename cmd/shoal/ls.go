package main

import (
	"encoding/hex"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/content"
)

func (a *app) lsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ls [CID]",
		Short: "List the models this node holds, or the files of one",
		Long: `List the models this node holds (added or fetched): root CID, name, size,
number of files, and where they came from. Given a CID, list that model's
files; pickle files (.bin, .pt, .pkl, ...), which can run code when
loaded, are marked.`,
		Example: exampleBlock("shoal ls", "shoal ls --json", "shoal ls bafyrei..."),
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, svc, _, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			if len(args) == 1 {
				root, err := content.ParseCID(args[0])
				if err != nil {
					return err
				}
				files, err := svc.Files(cmd.Context(), root)
				if err != nil {
					return err
				}
				return a.printFiles(files)
			}
			roots, err := svc.Ls(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				if roots == nil {
					roots = []content.RootInfo{}
				}
				return a.printJSON(roots)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ROOT\tNAME\tSIZE\tFILES\tPIN\tSOURCE\tWHERE")
			for _, r := range roots {
				pin := "-"
				if r.Pin != nil {
					pin = content.Escape(r.Pin.Reason)
				}
				places := r.Places
				if len(places) == 0 {
					places = []content.Place{{Dir: r.Dir, Source: r.Source}}
				}
				for i, p := range places {
					if i == 0 {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Root, content.Escape(r.Name), content.HumanBytes(r.Size), r.Files, pin, p.Source, content.Escape(p.Dir))
					} else {
						fmt.Fprintf(tw, "\t\t\t\t\t%s\t%s\n", p.Source, content.Escape(p.Dir))
					}
				}
			}
			return tw.Flush()
		},
	}
}

// notePickles warns of files that may run code when loaded.
func (a *app) notePickles(ps []content.Pickle) {
	for _, p := range ps {
		fmt.Fprintf(a.stderr, "note: %s may run code when loaded: %s\n", content.Escape(p.Path), p.Reason)
	}
}

func (a *app) printFiles(files []content.FileInfo) error {
	type row struct {
		content.FileInfo
		SHA256 string `json:"sha256"` // hex, as sha256sum prints it
		Pickle string `json:"pickle,omitempty"`
	}
	why := map[string]string{}
	for _, p := range content.PickleFiles(files) {
		why[p.Path] = p.Reason
	}
	rows := make([]row, len(files))
	for i, f := range files {
		rows[i] = row{f, hex.EncodeToString(f.SHA256), why[f.Rel]}
	}
	if a.json {
		return a.printJSON(rows)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tSIZE\tSHA256\tNOTE")
	for _, r := range rows {
		mark := ""
		if r.Pickle != "" {
			mark = "pickle: can run code when loaded (" + r.Pickle + ")"
		}
		fmt.Fprintln(tw, strings.TrimRight(fmt.Sprintf("%s\t%s\t%s\t%s", content.Escape(r.Rel), content.HumanBytes(r.Size), r.SHA256, mark), "\t "))
	}
	return tw.Flush()
}
