package main

import (
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/content"
)

func (a *app) trustCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trust",
		Short: "Bind local petnames to publisher key IDs",
		Long: `A petname is your own short name for a publisher's key ID: after
"shoal trust add alice 12D3KooW...", "shoal get alice/llama-3-8b" fetches
what that key published as llama-3-8b, and fetch summaries say when a
root is signed by someone you trust. Petnames are local: nobody else sees
them.`,
		Example: exampleBlock("shoal trust add alice 12D3KooW...", "shoal trust list", "shoal trust rm alice"),
	}
	var force bool
	add := &cobra.Command{
		Use:     "add PETNAME KEY-ID",
		Short:   "Trust a key under a petname",
		Long:    "Trust a key under a petname. A petname that already names another key is\nre-pointed only with --force.",
		Example: exampleBlock("shoal trust add alice 12D3KooW...", "shoal trust add --force alice 12D3KooW..."),
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := a.home()
			if err != nil {
				return err
			}
			if err := h.Trust(args[0], args[1], force); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "trusted %s as %s (in %s)\n", args[1], content.Escape(args[0]), h.TrustPath())
			return nil
		},
	}
	add.Flags().BoolVar(&force, "force", false, "re-point a petname that names another key")
	rm := &cobra.Command{
		Use:     "rm PETNAME",
		Short:   "Forget a petname",
		Example: exampleBlock("shoal trust rm alice"),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := a.home()
			if err != nil {
				return err
			}
			if _, ok := h.Trusted()[args[0]]; !ok {
				return fmt.Errorf("no petname %q", args[0])
			}
			if err := h.Trust(args[0], "", false); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "no longer trusting %s\n", content.Escape(args[0]))
			return nil
		},
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List petnames",
		Example: exampleBlock("shoal trust list --json"),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := a.home()
			if err != nil {
				return err
			}
			m := h.Trusted()
			if a.json {
				return a.printJSON(m)
			}
			names := make([]string, 0, len(m))
			for n := range m {
				names = append(names, n)
			}
			sort.Strings(names)
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PETNAME\tKEY ID")
			for _, n := range names {
				fmt.Fprintf(tw, "%s\t%s\n", n, m[n])
			}
			return tw.Flush()
		},
	}
	cmd.AddCommand(add, rm, list)
	return cmd
}
