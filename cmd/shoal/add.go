package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
)

func (a *app) addCmd() *cobra.Command {
	var quiet, followExternal bool
	cmd := &cobra.Command{
		Use:   "add PATH",
		Short: "Add a file or folder; print its CID",
		Long: `Hash a file or a folder in place and print the model's CID (alone on the
last line of standard output). Nothing is copied: the files are served from
where they lie, so do not edit them afterwards (an edited file is noticed
and no longer served). Symlinks to files inside the folder are followed;
symlinks out of it (tokenizer.json -> /etc/shadow, as a cloned repository
can plant) are skipped unless --follow-external-links. What cannot be added
(links out, sockets, devices, symlinks to folders, .git) is listed on
stderr.

With a daemon running, the daemon adds and announces the folder. Without
one, the folder is recorded and announced when a daemon next starts.`,
		Example: exampleBlock("shoal add ./llama-3-8b", "CID=$(shoal add --quiet ./llama-3-8b)"),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			_, svc, daemon, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			opt := content.ImportOptions{FollowExternalLinks: followExternal}
			b := a.newBar("hashing", content.ImportSize(path, opt))
			if quiet {
				b = &bar{}
			}
			res, err := svc.Add(cmd.Context(), api.AddRequest{Path: path, FollowExternalLinks: followExternal}, b.update)
			b.finish()
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(res)
			}
			if quiet {
				fmt.Fprintln(a.stdout, res.Root)
				return nil
			}
			for _, s := range res.Skipped {
				fmt.Fprintf(a.stderr, "skipped %s: %s\n", content.Escape(s.Path), s.Reason)
			}
			for _, w := range res.Warnings {
				fmt.Fprintf(a.stderr, "note: %s: %s\n", content.Escape(w.Path), w.Reason)
			}
			a.notePickles(res.Pickle)
			state := "announced"
			if !res.Announced {
				state = "not announced yet (start `shoal daemon` to seed it)"
				if daemon {
					state = "not announced yet; the daemon keeps trying (shoal status)"
				}
			}
			fmt.Fprintf(a.stdout, "added %s: %d files, %s, %s\n%s\n", content.Escape(res.Name), res.Files, content.HumanBytes(res.Size), state, res.Root)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the CID")
	cmd.Flags().BoolVar(&followExternal, "follow-external-links", false, "also add what symlinks point at outside the folder")
	return cmd
}
