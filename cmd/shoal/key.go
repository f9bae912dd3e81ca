package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/spf13/cobra"
)

func (a *app) keyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Create, list, export and import publisher keys",
		Long: `Publisher keys sign the records that bind a name to a model's CID. The
node's own identity is the key named "self" and is used by default; other
ed25519 keys let a team publish from several nodes. Keys live in the home
folder, readable only by their owner. A publisher is known to others by its
key ID.`,
		Example: exampleBlock("shoal key create team", "shoal key list", "shoal key export team -o team.key", "shoal key import team team.key"),
	}
	create := &cobra.Command{
		Use:     "create NAME",
		Short:   "Create a new ed25519 publisher key",
		Example: exampleBlock("shoal key create team"),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := a.home()
			if err != nil {
				return err
			}
			k, err := h.CreateKey(args[0])
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(k)
			}
			fmt.Fprintf(a.stdout, "%s %s\n", k.Name, k.ID)
			return nil
		},
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List publisher keys and their IDs",
		Example: exampleBlock("shoal key list", "shoal key list --json"),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := a.home()
			if err != nil {
				return err
			}
			keys, err := h.Keys()
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(keys)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKEY ID")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\n", k.Name, k.ID)
			}
			return tw.Flush()
		},
	}
	var out string
	export := &cobra.Command{
		Use:   "export NAME -o FILE",
		Short: "Write a private key to a file (mode 0600), for import on another node",
		Long: `Write a publisher's private key, base64, to FILE (created with mode 0600;
an existing file is not replaced). Anyone with the file can publish as this
key: move it as you would a password.`,
		Example: exampleBlock("shoal key export team -o team.key"),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("missing -o FILE")
			}
			h, err := a.home()
			if err != nil {
				return err
			}
			k, err := h.PublisherKey(args[0])
			if err != nil {
				return err
			}
			b, err := crypto.MarshalPrivateKey(k)
			if err != nil {
				return err
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			_, err = f.WriteString(base64.StdEncoding.EncodeToString(b) + "\n")
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		},
	}
	export.Flags().StringVarP(&out, "output", "o", "", "file to write (must not exist)")
	imp := &cobra.Command{
		Use:     "import NAME FILE",
		Short:   "Import a private key written by key export",
		Example: exampleBlock("shoal key import team team.key"),
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := a.home()
			if err != nil {
				return err
			}
			st, err := os.Stat(args[1])
			if err != nil {
				return err
			}
			if st.Size() > 16<<10 {
				return fmt.Errorf("%s: too large for a key file", args[1])
			}
			b, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
			if err != nil {
				return fmt.Errorf("%s: not a key file written by shoal key export", args[1])
			}
			k, err := crypto.UnmarshalPrivateKey(raw)
			if err != nil {
				return fmt.Errorf("%s: %w", args[1], err)
			}
			info, err := h.ImportKey(args[0], k)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(info)
			}
			fmt.Fprintf(a.stdout, "%s %s\n", info.Name, info.ID)
			return nil
		},
	}
	cmd.AddCommand(create, list, export, imp)
	return cmd
}
