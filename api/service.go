package api

import (
	"context"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/content"
)

// Service is everything a node does for its user. Progress callbacks may
// be nil.
type Service interface {
	// ID says who the node is and where others reach it.
	ID(ctx context.Context) (*IDInfo, error)
	// Status says where the node stands (a running daemon only).
	Status(ctx context.Context) (*Status, error)
	// Ls lists the held roots.
	Ls(ctx context.Context) ([]content.RootInfo, error)
	// Files lists the files of a held root.
	Files(ctx context.Context, root cid.Cid) ([]content.FileInfo, error)
	// Add imports a file or folder in place and announces it.
	Add(ctx context.Context, req AddRequest, progress func(Progress)) (*AddResult, error)
	// Get fetches a model into a folder, verified.
	Get(ctx context.Context, req GetRequest, progress func(Progress)) (*GetResult, error)
	// Inspect describes a model from its manifest and the headers of its
	// weights files: no weights move.
	Inspect(ctx context.Context, req InspectRequest) (*content.ModelView, error)
	// Verify re-hashes a held root. A report with OK false comes with an
	// error wrapping ErrVerify.
	Verify(ctx context.Context, root cid.Cid, progress func(Progress)) (*VerifyReport, error)
	// Publish signs a record binding a name to a root and puts it on the
	// DHT. A record signed and kept here but not stored on the DHT is a
	// result with OnDHT false, not an error.
	Publish(ctx context.Context, req PublishRequest) (*PublishResult, error)
	// Resolve finds the newest valid record of a publisher's name.
	Resolve(ctx context.Context, req ResolveRequest) (*Signer, error)
	// Pin keeps a root from gc, fetching it into the node's store first
	// when it is not held.
	Pin(ctx context.Context, req PinRequest, progress func(Progress)) (*PinResult, error)
	// Unpin lets gc collect a root.
	Unpin(ctx context.Context, req PinRequest) (*UnpinResult, error)
	// Pins lists the pins.
	Pins(ctx context.Context) ([]content.Pin, error)
	// GC collects the roots neither pinned nor being fetched: it deletes
	// their files from the node's store and forgets them elsewhere.
	GC(ctx context.Context, req GCRequest) (*GCReport, error)
	// Follow follows a publisher: a daemon fetches and pins what it signs.
	Follow(ctx context.Context, req FollowRequest) (*FollowInfo, error)
	// Unfollow stops following a publisher (its pins stay).
	Unfollow(ctx context.Context, req FollowRequest) (*FollowInfo, error)
	// Scrub re-hashes held roots: it reports what no longer matches,
	// fetches again from peers what Shoal fetched, and stops announcing a
	// root with no intact place left.
	Scrub(ctx context.Context, req ScrubRequest, progress func(Progress)) (*ScrubReport, error)
	// Follows lists the followed publishers.
	Follows(ctx context.Context) ([]FollowInfo, error)
}
