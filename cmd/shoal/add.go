package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/hf"
)

func (a *app) addCmd() *cobra.Command {
	var quiet, followExternal bool
	var hfCache string
	cmd := &cobra.Command{
		Use:   "add PATH | add --hf-cache [ORG/NAME[@REV]]",
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
one, the folder is recorded and announced when a daemon next starts.

--hf-cache seeds models straight from the Hugging Face cache
($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub), no copy: the
snapshot of ORG/NAME at REV (a branch, default main, or a commit), or
with no argument the main snapshot of every model in the cache, one CID
each. The snapshot's links into the repo's blobs/ are followed, and no
other link out; a dangling link is skipped and named. Each file's sha256
in the manifest is the Hub's LFS oid (shoal ls CID shows it).`,
		Example: exampleBlock("shoal add ./llama-3-8b", "CID=$(shoal add --quiet ./llama-3-8b)",
			"shoal add --hf-cache openai-community/gpt2", "shoal add --hf-cache"),
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var reqs []api.AddRequest
			if hfCache != "" {
				repos := args // --hf-cache ORG/NAME, --hf-cache=ORG/NAME, or alone: all
				if hfCache != hfAll {
					repos = append([]string{hfCache}, args...)
				}
				var err error
				if reqs, err = a.hfAddRequests(repos); err != nil {
					return err
				}
			} else {
				if len(args) != 1 {
					return fmt.Errorf("add PATH: which file or folder to add (or --hf-cache)")
				}
				path, err := filepath.Abs(args[0])
				if err != nil {
					return err
				}
				reqs = []api.AddRequest{{Path: path}}
			}
			_, svc, daemon, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			for _, req := range reqs {
				req.FollowExternalLinks = followExternal
				if err := a.addOne(cmd, svc, req, quiet, daemon); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the CID")
	cmd.Flags().BoolVar(&followExternal, "follow-external-links", false, "also add what symlinks point at outside the folder")
	cmd.Flags().StringVar(&hfCache, "hf-cache", "", "add from the Hugging Face cache: ORG/NAME[@REV], or alone (or *) every model in it")
	cmd.Flags().Lookup("hf-cache").NoOptDefVal = hfAll
	return cmd
}

// hfAll is --hf-cache given alone: every model in the cache.
const hfAll = "*"

// hfAddRequests finds the snapshots to add from the Hugging Face cache.
// With no repo named, every repo in the cache; one whose snapshot cannot
// be found is named on stderr and passed over, not the end of the rest.
func (a *app) hfAddRequests(args []string) ([]api.AddRequest, error) {
	cache, err := hf.CacheDir()
	if err != nil {
		return nil, err
	}
	repos, all := args, len(args) == 0
	if all {
		if repos, err = hf.Repos(cache); err != nil {
			return nil, err
		}
		if len(repos) == 0 {
			return nil, fmt.Errorf("no model in the Hugging Face cache %s", content.Escape(cache))
		}
	}
	var reqs []api.AddRequest
	for _, r := range repos {
		repo, rev, _ := strings.Cut(r, "@")
		snap, repoDir, err := hf.Snapshot(cache, repo, rev)
		if err != nil && all {
			fmt.Fprintf(a.stderr, "skipped %s: %v\n", content.Escape(r), err)
			continue
		}
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, api.AddRequest{Path: snap, LinksWithin: repoDir, Name: repo})
	}
	return reqs, nil
}

// addOne adds one file or folder and prints what came of it.
func (a *app) addOne(cmd *cobra.Command, svc api.Service, req api.AddRequest, quiet, daemon bool) error {
	opt := content.ImportOptions{FollowExternalLinks: req.FollowExternalLinks, LinksWithin: req.LinksWithin, Name: req.Name}
	b := a.newBar("hashing", content.ImportSize(req.Path, opt))
	if quiet {
		b = &bar{}
	}
	res, err := svc.Add(cmd.Context(), req, b.update)
	b.finish()
	if errors.Is(err, content.ErrNothingToAdd) && req.LinksWithin == "" && strings.Contains(filepath.ToSlash(req.Path), "/snapshots/") {
		return fmt.Errorf("%w\nthis looks like a Hugging Face cache snapshot, whose files are links into its repo's blobs/: shoal add --hf-cache ORG/NAME[@REV] adds it", err)
	}
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
}
