package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/node"
)

func (a *app) pinCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pin",
		Short: "Keep models from gc",
		Long: `A pinned model is kept: shoal gc never collects it. Pinning a model this
node does not hold fetches it first, verified, into the node's own store
(HOME/store/CID), within the store's disk budget (storage_max). Models a
mirror fetches for the publishers it follows are pinned for them.`,
		Example: exampleBlock("shoal pin add bafyrei...", "shoal pin ls", "shoal pin rm bafyrei..."),
	}
	var nf netFlags
	var quiet bool
	add := &cobra.Command{
		Use:   "add CID",
		Short: "Pin a model, fetching it into the store if it is not held",
		Example: exampleBlock("shoal pin add bafyrei...",
			"shoal pin add bafyrei... --bootstrap /ip4/192.0.2.7/tcp/4001/p2p/12D3KooW..."),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := content.ParseCID(args[0])
			if err != nil {
				return err
			}
			_, svc, _, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			if l, ok := svc.(*node.Local); ok {
				nf.applyLocal(l)
			}
			p := a.getProgress(quiet)
			res, err := svc.Pin(cmd.Context(), api.PinRequest{Root: root}, p.update)
			p.finish()
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(res)
			}
			switch {
			case res.Fetched != nil:
				fmt.Fprintf(a.stdout, "pinned %s (fetched %s into %s)\n", root, content.HumanBytes(res.Fetched.Size), res.Fetched.Dir)
			case res.Already:
				fmt.Fprintf(a.stdout, "%s was already pinned\n", root)
			default:
				fmt.Fprintf(a.stdout, "pinned %s\n", root)
			}
			return nil
		},
	}
	nf.register(add.Flags(), "without a daemon: ", "any free port")
	add.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	rm := &cobra.Command{
		Use:     "rm CID",
		Short:   "Unpin a model (it stays until shoal gc)",
		Example: exampleBlock("shoal pin rm bafyrei..."),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := content.ParseCID(args[0])
			if err != nil {
				return err
			}
			return runOp(a, cmd, func(ctx context.Context, svc api.Service) (*api.UnpinResult, error) {
				return svc.Unpin(ctx, api.PinRequest{Root: root})
			}, func(_ api.Service, res *api.UnpinResult) error {
				if !res.Unpinned {
					return fmt.Errorf("%w: %s is not pinned", content.ErrNotFound, root)
				}
				fmt.Fprintf(a.stdout, "unpinned %s (shoal gc may now collect it)\n", root)
				return nil
			})
		},
	}
	ls := &cobra.Command{
		Use:     "ls",
		Short:   "List pinned models",
		Example: exampleBlock("shoal pin ls", "shoal pin ls --json"),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runOp(a, cmd, func(ctx context.Context, svc api.Service) ([]content.Pin, error) {
				return svc.Pins(ctx)
			}, func(svc api.Service, pins []content.Pin) error {
				return a.printPins(cmd.Context(), svc, pins)
			})
		},
	}
	cmd.AddCommand(add, rm, ls)
	return cmd
}

// printPins lists pins with whether each root is held.
func (a *app) printPins(ctx context.Context, svc api.Service, pins []content.Pin) error {
	roots, err := svc.Ls(ctx)
	if err != nil {
		return err
	}
	held := map[cid.Cid]bool{}
	for _, r := range roots {
		held[r.Root] = true
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROOT\tHELD\tSINCE\tWHY")
	for _, p := range pins {
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\n", p.Root, held[p.Root], p.Time.Local().Format(time.DateTime), content.Escape(p.Reason))
	}
	return tw.Flush()
}

// runOp runs one call on the node's Service (the daemon's, or one in
// process) and prints its result: as JSON with --json, else by human.
func runOp[R any](a *app, cmd *cobra.Command, op func(context.Context, api.Service) (R, error), human func(api.Service, R) error) error {
	_, svc, _, err := a.connect(cmd.Context())
	if err != nil {
		return err
	}
	res, err := op(cmd.Context(), svc)
	if err != nil {
		return err
	}
	if a.json {
		return a.printJSON(res)
	}
	return human(svc, res)
}

func (a *app) gcCmd() *cobra.Command {
	var dry bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Collect the models that are neither pinned nor being fetched",
		Long: `Collect every held model that is not pinned and not being fetched. Its
copies in the node's own store (HOME/store) are deleted, except files a
kept model also uses. Folders you added or fetched into are yours: gc
only forgets them (they are no longer served or announced) and never
deletes a file there. Copies whose folder is gone are forgotten too.
shoal add pins what it adds; shoal get does not pin (pin add does).`,
		Example: exampleBlock("shoal gc --dry-run", "shoal gc"),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runOp(a, cmd, func(ctx context.Context, svc api.Service) (*api.GCReport, error) {
				return svc.GC(ctx, api.GCRequest{DryRun: dry})
			}, func(_ api.Service, rep *api.GCReport) error {
				a.printGC(rep, dry)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&dry, "dry-run", false, "say what would be collected; touch nothing")
	return cmd
}

// printGC says what gc did, or would do.
func (a *app) printGC(rep *api.GCReport, dry bool) {
	verb := map[string]string{"deleted": "deleted", "forgotten": "forgot"}
	if dry {
		verb = map[string]string{"deleted": "would delete", "forgotten": "would forget"}
	}
	for _, it := range rep.Items {
		root := "(no model: a fetch that did not finish, or a stranger's)"
		if it.Root.Defined() {
			root = it.Root.String()
		}
		if it.Action == "deleted" {
			fmt.Fprintf(a.stdout, "%s %s  %s (%s)\n", verb[it.Action], root, content.Escape(it.Dir), content.HumanBytes(it.Bytes))
		} else {
			fmt.Fprintf(a.stdout, "%s %s  %s (%s; no file touched)\n", verb[it.Action], root, content.Escape(it.Dir), it.Source)
		}
	}
	budget := "no budget"
	if rep.Budget > 0 {
		budget = "budget " + content.HumanBytes(rep.Budget)
	}
	fmt.Fprintf(a.stdout, "%d collected, %s freed, %d kept; the store holds %s (%s)\n",
		len(rep.Items), content.HumanBytes(rep.Freed), rep.Kept, content.HumanBytes(rep.Used), budget)
}

func (a *app) mirrorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mirror",
		Short: "Follow publishers: fetch, pin and serve what they sign",
		Long: `A daemon that follows a publisher hears of each record it signs within
seconds (gossipsub, one topic a publisher; every record is checked
before it is kept or passed on), fetches the model it names into the
store, pins it, and keeps it announced; the model an older record of the
same name pointed to is unpinned (gc may then collect it). Every
follow_check (config, default 10m) it also asks the DHT for the names it
knows of, to catch what it missed while offline.`,
		Example: exampleBlock("shoal mirror follow alice", "shoal mirror follow 12D3KooW...", "shoal mirror ls", "shoal mirror unfollow alice"),
	}
	follow := &cobra.Command{
		Use:     "follow PUBLISHER",
		Short:   "Follow a publisher (key ID or trusted petname)",
		Example: exampleBlock("shoal mirror follow alice", "shoal mirror follow 12D3KooW..."),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, svc, daemon, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			fi, err := svc.Follow(cmd.Context(), api.FollowRequest{Publisher: args[0]})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(fi)
			}
			fmt.Fprintf(a.stdout, "following %s\n", who(fi))
			if !daemon {
				fmt.Fprintln(a.stdout, "no daemon runs: it follows from when one starts (shoal daemon)")
			}
			return nil
		},
	}
	unfollow := &cobra.Command{
		Use:     "unfollow PUBLISHER",
		Short:   "Stop following a publisher (its models stay pinned)",
		Example: exampleBlock("shoal mirror unfollow alice"),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOp(a, cmd, func(ctx context.Context, svc api.Service) (*api.FollowInfo, error) {
				return svc.Unfollow(ctx, api.FollowRequest{Publisher: args[0]})
			}, func(_ api.Service, fi *api.FollowInfo) error {
				fmt.Fprintf(a.stdout, "no longer following %s (its models stay pinned: shoal pin rm to let gc collect them)\n", fi.Key)
				return nil
			})
		},
	}
	ls := &cobra.Command{
		Use:     "ls",
		Short:   "List followed publishers and their names",
		Example: exampleBlock("shoal mirror ls", "shoal mirror ls --json"),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runOp(a, cmd, func(ctx context.Context, svc api.Service) ([]api.FollowInfo, error) {
				return svc.Follows(ctx)
			}, func(_ api.Service, fs []api.FollowInfo) error {
				return a.printFollows(fs)
			})
		},
	}
	cmd.AddCommand(follow, unfollow, ls)
	return cmd
}

// printFollows lists followed publishers and their names.
func (a *app) printFollows(fs []api.FollowInfo) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PUBLISHER\tNAME\tSEQ\tROOT\tHELD")
	var errs []string
	for _, f := range fs {
		if len(f.Names) == 0 {
			fmt.Fprintf(tw, "%s\t-\t\t\t\n", who(&f))
		}
		for _, n := range f.Names {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%v\n", who(&f), content.Escape(n.Name), n.Seq, n.Root, n.Held)
			if n.Error != "" {
				errs = append(errs, fmt.Sprintf("%s: fetch failed (retried at the next check): %s", content.Escape(n.Name), content.Escape(n.Error)))
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, e := range errs {
		fmt.Fprintln(a.stdout, e)
	}
	return nil
}

// who names a followed publisher: petname (key), or the key.
func who(f *api.FollowInfo) string {
	if f.Name != "" {
		return content.Escape(f.Name) + " (" + f.Key + ")"
	}
	return f.Key
}

func (a *app) scrubCmd() *cobra.Command {
	var quiet bool
	var nf netFlags
	cmd := &cobra.Command{
		Use:   "scrub [CID]...",
		Short: "Re-hash held models; heal what Shoal fetched, stop announcing what cannot be served",
		Long: `Re-read every copy of the held models (or of those named) and check each
chunk and each whole file against its manifest, as verify does. A file
that no longer matches (bit rot, an edit, a deletion) is reported:
- in a folder Shoal fetched into (get -o, the store), it is deleted and
  fetched again from peers, verified;
- in a folder you added, it is yours: the copy is marked damaged.
A model with no intact copy left is no longer announced nor offered to
peers as complete; a later scrub that finds it mended puts it back. Its
good chunks are still served; a rotten chunk never is. A daemon also
scrubs everything every scrub_interval (config; off by default). Exits
non-zero when something is left damaged.`,
		Example: exampleBlock("shoal scrub", "shoal scrub bafyrei...", "shoal scrub --json"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var roots []cid.Cid
			for _, s := range args {
				r, err := content.ParseCID(s)
				if err != nil {
					return err
				}
				roots = append(roots, r)
			}
			_, svc, _, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			if l, ok := svc.(*node.Local); ok {
				nf.applyLocal(l)
			}
			b := &bar{}
			if !quiet && !a.json {
				b = a.newBar("scrubbing", 0)
			}
			rep, err := svc.Scrub(cmd.Context(), api.ScrubRequest{Roots: roots}, b.update)
			b.finish()
			if err != nil {
				return err
			}
			if a.json {
				if err := a.printJSON(rep); err != nil {
					return err
				}
			} else {
				a.printScrub(rep)
			}
			if !rep.OK {
				return fmt.Errorf("%w: some copies do not match their models and could not be healed", api.ErrVerify)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	nf.register(cmd.Flags(), "without a daemon (to heal): ", "any free port")
	return cmd
}

func (a *app) printScrub(rep *api.ScrubReport) {
	intact := 0
	for _, r := range rep.Roots {
		clean := true
		for _, p := range r.Places {
			if len(p.Bad) == 0 {
				continue
			}
			clean = clean && p.Healed
			what := "damaged (your folder: not touched)"
			switch {
			case p.Healed:
				what = "healed from peers"
			case p.Error != "":
				what = "not healed: " + content.Escape(p.Error)
			}
			fmt.Fprintf(a.stdout, "%s  %s: %d bad file(s), %s\n", r.Root, content.Escape(p.Dir), len(p.Bad), what)
			for _, f := range p.Bad {
				fmt.Fprintf(a.stdout, "    %-8s %s: %s\n", f.Status, content.Escape(f.Path), f.Detail)
			}
		}
		if !r.Servable {
			fmt.Fprintf(a.stdout, "%s  no intact copy left: no longer announced\n", r.Root)
		}
		if clean {
			intact++
		}
	}
	fmt.Fprintf(a.stdout, "%d of %d models intact (or healed)\n", intact, len(rep.Roots))
}
