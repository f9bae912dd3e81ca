package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/node"
)

func (a *app) inspectCmd() *cobra.Command {
	var files bool
	var nf netFlags
	cmd := &cobra.Command{
		Use:   "inspect (CID | PUBLISHER/NAME | PATH)",
		Short: "List a model's files and tensors without fetching its weights",
		Long: `List the files of a model and, for each safetensors and GGUF file, its
tensors: name, dtype, shape and size. Only the manifest and the weights
files' headers are read (from this node, or asked of the peers that hold
the model): no weights move. For a CID or name it also says how much of
the model this node already holds under other roots (a fine-tune's base),
which a get would copy rather than fetch.

An existing file or folder is inspected on disk instead (nothing is
hashed, so no sha256 is shown). Tensor names are what --tensors matches.`,
		Example: exampleBlock("shoal inspect bafyrei...", "shoal inspect alice/llama-3-8b --files",
			"shoal inspect ./model.gguf", "shoal inspect bafyrei... --json"),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := os.Stat(args[0]); err == nil {
				views, skipped, err := content.DescribePath(args[0])
				if err != nil {
					return err
				}
				for _, sk := range skipped {
					fmt.Fprintf(a.stderr, "skipped %s: %s\n", content.Escape(sk.Path), sk.Reason)
				}
				if len(views) == 0 {
					return fmt.Errorf("%s: no file to inspect", content.Escape(args[0]))
				}
				if a.json {
					return a.printJSON(&content.ModelView{Files: views})
				}
				a.printViews(views, files)
				return nil
			}
			var req api.InspectRequest
			_, svc, _, err := a.connectFor(cmd.Context(), args[0], &req.Root, &req.Name)
			if errors.Is(err, content.ErrBadCID) {
				return fmt.Errorf("%w (and no file or folder of that name exists)", err)
			}
			if err != nil {
				return err
			}
			if l, ok := svc.(*node.Local); ok {
				nf.applyLocal(l)
			}
			v, err := svc.Inspect(cmd.Context(), req)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(v)
			}
			where := "not held here"
			if v.Local {
				where = "held here"
			}
			fmt.Fprintf(a.stdout, "%s: %s, %s, %s\n", v.Root, plural(len(v.Files), "file"), content.HumanBytes(v.Size), where)
			if !v.Local && v.Held > 0 {
				var with []string
				for _, sh := range v.Shares {
					with = append(with, sh.Root.String())
				}
				fmt.Fprintf(a.stdout, "shares %s with %s: %s to fetch\n", percent(v.Held, v.Distinct), strings.Join(with, ", "),
					content.HumanBytes(v.Distinct-v.Held))
			}
			a.printViews(v.Files, files)
			return nil
		},
	}
	cmd.Flags().BoolVar(&files, "files", false, "list files only, not their tensors")
	nf.register(cmd.Flags(), "without a daemon: ", "any free port on every interface")
	return cmd
}

// printViews prints files and, unless filesOnly, their tensors.
func (a *app) printViews(views []content.FileView, filesOnly bool) {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	for _, f := range views {
		kind := f.Format
		if len(f.Tensors) > 0 {
			kind += fmt.Sprintf(", %s", plural(len(f.Tensors), "tensor"))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", content.Escape(f.Path), content.HumanBytes(f.Size), kind, f.SHA256)
		if f.Problem != "" {
			fmt.Fprintf(tw, "  header not readable: %s\t\t\t\n", content.Escape(f.Problem))
		}
		if filesOnly {
			continue
		}
		for _, t := range f.Tensors {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%v\n", content.Escape(t.Name), content.HumanBytes(t.Size), content.Escape(t.DType), t.Shape)
		}
	}
	_ = tw.Flush()
}
