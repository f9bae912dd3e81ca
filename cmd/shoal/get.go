package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/hf"
	"github.com/shoal-p2p/shoal/home"
	"github.com/shoal-p2p/shoal/node"
)

type getFlags struct {
	netFlags
	out       string
	force     bool
	timeout   time.Duration
	publisher string
	quiet     bool
	include   []string
	exclude   []string
	tensors   []string
	hfRepo    string
}

func (a *app) getCmd() *cobra.Command {
	var g getFlags
	cmd := &cobra.Command{
		Use:   "get (CID | PUBLISHER/NAME) (-o DIR | --hf-cache ORG/NAME)",
		Short: "Fetch a model by CID or by published name into a folder, verified",
		Long: `Find who holds the model on the DHT (the providers of its root and of each
of its files, looked up again while the fetch runs), fetch its manifest,
then fetch chunks from every provider at once, rarest first, verifying each
chunk's hash before it is written. A peer that sends a bad chunk is dropped;
a peer that stops answering has its chunks asked of others. Each file is
written under a temporary name and renamed into place once all its chunks
are in (shoal verify re-hashes whole files on demand). While fetching, this node already serves the
chunks it has to other fetchers; afterwards it serves the folder.

Interrupted (Ctrl-C, kill -9, a crash), run the same command again: it
fetches only what is missing. Progress is kept in DIR/.shoal-fetch until
the fetch completes; while it runs, another get into DIR is refused.

With a daemon running, the daemon fetches (and keeps seeding). Without one,
an in-process node runs for the length of the command: give it
--bootstrap (or set bootstrap in config.toml).

By name (PUBLISHER/NAME, PUBLISHER a petname from shoal trust or a key
ID), the name is resolved to the newest valid signed record first, and the
fetch refuses a root that publisher did not sign. --publisher KEY does the
same for a CID: no chunk moves unless a valid record of KEY names it. The
summary says who signed the root, or that nobody you trust did.

DIR must be missing, empty, or hold an unfinished fetch of the same CID,
unless --force. With --json, progress events and then the result are
printed one JSON object per line.

Part of a model: --include and --exclude take file patterns ('*' does not
cross '/'; a pattern without '/' matches a file's name in any folder),
--tensors takes tensor-name patterns: of each safetensors or GGUF file
only the chunks of matching tensors move, and the file written is a valid
file of its format holding exactly those tensors (header rewritten,
offsets fixed; GGUF metadata kept); a shard holding none is not written,
and model.safetensors.index.json names only the tensors written. Other
files come whole (config, tokenizer): add --include to narrow them.
Patterns are Go's path.Match: '*' never crosses '/', and '**' is refused.
shoal inspect lists the tensor names. A pattern that matches
nothing is an error, and nothing is written. A part is not the model: it
is not seeded afterwards.

Into the Hugging Face cache: --hf-cache ORG/NAME writes the model as
from_pretrained("ORG/NAME") finds it offline ($HF_HUB_CACHE, $HF_HOME/hub
or ~/.cache/huggingface/hub): blobs/SHA256, snapshots/COMMIT/ links and
refs/main (moved to this snapshot), COMMIT derived from the root CID.
Blobs already there, whose bytes hash to their name, are reused, not
fetched. A snapshot holds the whole model: no --include, --exclude or
--tensors with --hf-cache.

What this node already holds under other roots (a fine-tune's base model)
is copied, not fetched; get says how much before it starts.`,
		Example: exampleBlock(
			"shoal get bafyrei... -o ./model",
			"shoal get bafyrei... -o ./model --bootstrap /ip4/198.51.100.4/tcp/4001/p2p/12D3KooW...",
			"shoal get bafyrei... -o ./model --max-download 50MB/s --json",
			"shoal get alice/llama-3-8b -o ./model",
			"shoal get bafyrei... -o ./model --publisher alice",
			"shoal get bafyrei... -o ./cfg --include '*.json'",
			"shoal get bafyrei... -o ./stage1 --tensors 'model.layers.1[0-5].*'",
			"shoal get alice/llama-3-8b --hf-cache alice/llama-3-8b"),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.GetRequest{Force: g.force, Include: g.include, Exclude: g.exclude, Tensors: g.tensors}
			switch {
			case g.hfRepo != "" && g.out != "":
				return fmt.Errorf("-o and --hf-cache: give one (--hf-cache writes into the Hugging Face cache)")
			case g.hfRepo != "":
				cache, err := hf.CacheDir()
				if err != nil {
					return err
				}
				if req.HFRepo, err = hf.RepoDir(cache, g.hfRepo); err != nil {
					return err
				}
			case g.out == "":
				return fmt.Errorf("missing -o DIR: where to write the model (or --hf-cache ORG/NAME)")
			default:
				dir, err := filepath.Abs(g.out)
				if err != nil {
					return err
				}
				req.Dir = dir
			}
			if err := content.CheckGlobs(append(append(append([]string(nil), g.include...), g.exclude...), g.tensors...)); err != nil {
				return err
			}
			for _, r := range []string{g.maxUp, g.maxDown} {
				if _, err := home.ParseRate(r); err != nil {
					return err
				}
			}
			h, svc, daemon, err := a.connectFor(cmd.Context(), args[0], &req.Root, &req.Name)
			if err != nil {
				return err
			}
			if g.publisher != "" {
				if req.Publisher, err = h.ResolvePublisher(g.publisher); err != nil {
					return err
				}
			}
			if daemon && (g.set() || g.timeout > 0) {
				fmt.Fprintln(a.stderr, "note: a daemon is running: --bootstrap, --listen, --timeout, rate limits and mDNS come from its configuration")
			}
			if l, ok := svc.(*node.Local); ok {
				g.applyLocal(l)
				if g.timeout > 0 {
					l.Config.FindTimeout = home.Duration(g.timeout)
				}
			}
			progress := a.getProgress(g.quiet)
			res, err := svc.Get(cmd.Context(), req, progress.update)
			progress.finish()
			if errors.Is(err, context.Canceled) && cmd.Context().Err() != nil {
				where := req.Dir
				if req.HFRepo != "" {
					where = filepath.Join(req.HFRepo, ".shoal-incoming")
				}
				return resumeHint{err, fmt.Sprintf("run the same command again to resume: what arrived stays in %s", content.Escape(where))}
			}
			if err != nil {
				return err
			}
			if a.json {
				return a.printEvent(api.Event{Event: "result", Result: mustJSON(res)})
			}
			a.notePickles(res.Pickle)
			if res.Held {
				fmt.Fprintf(a.stdout, "already complete: %s, %s, %s, unchanged since it was fetched here; nothing moved (shoal verify re-hashes it)\n",
					res.Root, plural(res.Files, "file"), content.HumanBytes(res.Size))
			} else {
				// The rate counts what moved in this run, not what an
				// earlier run or this node already had.
				var moved int64
				for _, s := range res.Sources {
					moved += s.Bytes
				}
				moved -= res.Local // copied here, not moved
				secs := res.Elapsed.Seconds()
				resumed, copied := "", ""
				if res.Resumed > 0 {
					resumed = fmt.Sprintf(", %d were already there from an earlier run", res.Resumed)
				}
				if res.Local > 0 {
					copied = fmt.Sprintf(", and copied %s from what this node already held", content.HumanBytes(res.Local))
				}
				fmt.Fprintf(a.stdout, "fetched %s: %s, %s; moved %s in %.1fs (%s/s) from %s%s; %d chunks moved%s, %d re-fetched\n",
					res.Root, plural(res.Files, "file"), content.HumanBytes(res.Size), content.HumanBytes(moved), secs, content.HumanBytes(int64(float64(moved)/max(secs, 1e-3))),
					plural(res.Peers, "peer"), copied, res.Chunks, resumed, res.Refetch)
			}
			if res.Partial {
				fmt.Fprintf(a.stdout, "wrote part of the model, as asked: %s, %s (every chunk verified; a part is not seeded)\n", plural(res.Files, "file"), content.HumanBytes(res.Size))
			}
			if res.HF != nil {
				fmt.Fprintf(a.stdout, "hugging face cache: snapshot %s of %s (%d blobs were already there); refs/main points at it\n",
					res.HF.Commit, content.Escape(g.hfRepo), res.HF.Reused)
			}
			a.printSigners(res.Signers, true)
			fmt.Fprintln(a.stdout, res.Dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&g.out, "output", "o", "", "folder to write the model to (required, unless --hf-cache)")
	f.BoolVar(&g.force, "force", false, "write into an existing non-empty folder")
	g.register(f, "without a daemon: ", "any free port on every interface")
	f.DurationVar(&g.timeout, "timeout", 0, "without a daemon: how long to look for providers (default from config, 30s)")
	f.BoolVarP(&g.quiet, "quiet", "q", false, "no progress; print only the summary")
	f.StringVar(&g.publisher, "publisher", "", "refuse the root unless this publisher (petname or key ID) signed it")
	f.StringArrayVar(&g.include, "include", nil, "fetch only the files matching this pattern (repeatable)")
	f.StringArrayVar(&g.exclude, "exclude", nil, "leave out the files matching this pattern (repeatable)")
	f.StringArrayVar(&g.tensors, "tensors", nil, "of safetensors and GGUF files, fetch only the tensors matching this pattern (repeatable)")
	f.StringVar(&g.hfRepo, "hf-cache", "", "write into the Hugging Face cache as repo ORG/NAME, instead of -o")
	return cmd
}

// getProgress is a bar on a terminal, NDJSON events with --json, a plain
// line every few seconds when stderr is not a terminal (a CI log is not
// silent for minutes), or nothing with --quiet.
type getProgress struct {
	bar   *bar
	a     *app
	quiet bool
	last  time.Time
}

// progressEvery is how often a get whose stderr is not a terminal prints
// a progress line.
const progressEvery = 5 * time.Second

func (a *app) getProgress(quiet bool) *getProgress {
	p := &getProgress{a: a, quiet: quiet, bar: &bar{}, last: time.Now()}
	if !quiet {
		p.bar = a.newBar("fetching", 0)
	}
	return p
}

func (p *getProgress) update(pr api.Progress) {
	if pr.Phase == "plan" && pr.Held > 0 && pr.Total > 0 && !p.a.json && !p.quiet {
		p.a.noteShares(pr)
	}
	switch {
	case p.a.json:
		_ = p.a.printEvent(api.Event{Event: "progress", Progress: &pr})
	case p.quiet:
	case p.bar.pb != nil:
		p.bar.update(pr)
	case pr.Phase == "fetching" && time.Since(p.last) >= progressEvery && pr.Total > 0:
		p.last = time.Now()
		fmt.Fprintf(p.a.stderr, "fetching: %s of %s (%d%%) from %s\n", content.HumanBytes(pr.Done), content.HumanBytes(pr.Total),
			100*pr.Done/pr.Total, plural(pr.Peers, "peer"))
	}
}

func (p *getProgress) finish() { p.bar.finish() }

// noteShares says how much of a model this node holds under other roots.
func (a *app) noteShares(pr api.Progress) {
	with := ""
	for i, sh := range pr.Shares {
		if i == 2 {
			with += fmt.Sprintf(" and %d more", len(pr.Shares)-2)
			break
		}
		if i > 0 {
			with += ", "
		}
		with += sh.Root.String()
	}
	fmt.Fprintf(a.stderr, "shares %s with %s: copied from there; %s to fetch\n", percent(pr.Held, pr.Total), with, content.HumanBytes(max(pr.Total-pr.Held, 0)))
}

// percent is n of total as a whole percentage, never 0 % or 100 % unless
// exactly so.
func percent(n, total int64) string {
	if total <= 0 {
		return "0 %"
	}
	n = min(n, total)
	p := 100 * n / total
	if p == 0 && n > 0 {
		p = 1
	}
	if p == 100 && n < total {
		p = 99
	}
	return fmt.Sprintf("%d %%", p)
}

// connectFor reads a model named on the command line (CID or
// PUBLISHER/NAME) and connects: a malformed CID, or a chunk's, is refused
// before anything starts; a name's publisher is resolved to a key ID
// (root or name is set).
func (a *app) connectFor(ctx context.Context, arg string, root *cid.Cid, name *string) (home.Home, api.Service, bool, error) {
	pub, nm, byName := home.SplitName(arg)
	if !byName {
		c, err := content.ParseCID(arg)
		if err != nil {
			return home.Home{}, nil, false, err
		}
		if err := content.CheckRoot(c); err != nil {
			return home.Home{}, nil, false, err
		}
		*root = c
	}
	h, svc, daemon, err := a.connect(ctx)
	if err != nil || !byName {
		return h, svc, daemon, err
	}
	keyID, err := h.ResolvePublisher(pub)
	if err != nil {
		return h, nil, false, err
	}
	if err := content.CheckName(nm); err != nil {
		return h, nil, false, err
	}
	*name = keyID + "/" + nm
	return h, svc, daemon, nil
}

func mustJSON(v any) json.RawMessage {
	b, _ := edgeJSON(v)
	return b
}

// printSigners says who vouches for a root, trusted names first.
// intact says whether the bytes are known to match the CID (after a
// fetch, or a verify that found every file ok).
func (a *app) printSigners(ss []api.Signer, intact bool) {
	trusted := false
	for _, s := range ss {
		who := s.Key
		if s.Petname != "" {
			who = s.Petname + " (" + s.Key + ")"
			trusted = true
		}
		fmt.Fprintf(a.stdout, "signed by %s as %s, sequence %d, %s\n", who, s.Name, s.Seq, s.Time.Format(time.RFC3339))
	}
	switch {
	case len(ss) == 0 && intact:
		fmt.Fprintln(a.stdout, "no publisher record names this root: the bytes match the CID, and nobody vouches for them")
	case len(ss) == 0:
		fmt.Fprintln(a.stdout, "no publisher record names this root")
	case !trusted:
		fmt.Fprintln(a.stdout, "none of these publishers is one you trust (shoal trust add)")
	}
}
