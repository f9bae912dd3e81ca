package node

import (
	"context"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/fetch"
)

// GetOptions tune a fetch.
type GetOptions struct {
	// Force writes into an existing non-empty folder, replacing files of
	// the same names.
	Force bool
	// Progress, if set, is called now and then with a snapshot.
	Progress func(fetch.Progress)
	// Publisher, if set, is a key ID that must have signed a record
	// naming the root; otherwise the fetch stops before any chunk moves.
	Publisher string
	// Records are signed records to consider beside those peers hand
	// over (the one a name resolved to).
	Records [][]byte
	// Stored and Admit: see fetch.Options (a fetch into the node's store).
	Stored bool
	Admit  func(*content.Manifest) error
	// Choice, WholeFile and Have: see fetch.Options (part of a model; a
	// Hugging Face cache, whose blobs are named by their hash).
	Choice    fetch.Choice
	WholeFile bool
	Have      func(content.File) bool
}

// GetResult describes a finished fetch and who vouches for its root.
type GetResult struct {
	fetch.Result
	Signers []api.Signer `json:"signers"` // valid records naming the root
}

// Get fetches the model root into dir (fetch.Engine.Get), keeping the
// signed records the sources hold for it, and refuses it before any chunk
// moves unless opt.Publisher (if set) signed a live record naming it.
func (n *Node) Get(ctx context.Context, root cid.Cid, dir string, opt GetOptions) (*GetResult, error) {
	n.takeRecords(root, opt.Records)
	res, err := n.fetcher.Get(ctx, root, dir, fetch.Options{
		Force:       opt.Force,
		Progress:    opt.Progress,
		Records:     func(envs [][]byte) { n.takeRecords(root, envs) },
		Vouch:       func() error { return n.checkSigned(root, opt.Publisher) },
		WaitRecords: opt.Publisher != "",
		Stored:      opt.Stored,
		Admit:       opt.Admit,
		Choice:      opt.Choice,
		WholeFile:   opt.WholeFile,
		Have:        opt.Have,
	})
	if err != nil {
		return nil, err
	}
	return &GetResult{Result: *res, Signers: signers(n.Home, n.Index, root)}, nil
}

// CheckGet checks, before any network traffic, that root can be fetched
// into dir. It reports done when this node already holds root in dir,
// every file unchanged: then Get has nothing to do.
func (n *Node) CheckGet(root cid.Cid, dir string, force bool) (done bool, err error) {
	return n.fetcher.CheckGet(root, dir, force)
}

// checkSigned fails with ErrNotSigned unless publisher (if set) has a
// valid, live record naming root kept here.
func (n *Node) checkSigned(root cid.Cid, publisher string) error {
	if publisher == "" {
		return nil
	}
	for _, s := range n.Index.RecordsFor(root) {
		if s.Key == publisher && s.Live(time.Now()) == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: no valid record of %s names %s; nothing was fetched", ErrNotSigned, publisher, root)
}
