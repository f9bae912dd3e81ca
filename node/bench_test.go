package node

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/internal/testmodel"
)

// BenchmarkGet fetches a 256 MiB model from one seeder to a fresh fetcher
// over loopback (TCP+TLS): every chunk verified against its CID,
// fsynced and renamed. Compare with scripts/bench for the ratio against a
// plain TCP copy.
func BenchmarkGet(b *testing.B) {
	model := filepath.Join(b.TempDir(), "model")
	if _, err := testmodel.Folder(model, 256, 1); err != nil {
		b.Fatal(err)
	}
	seeder := newTestNode(b)
	ctx := context.Background()
	im, err := seeder.Add(ctx, model, content.ImportOptions{})
	if err != nil {
		b.Fatal(err)
	}
	boot := seeder.Addrs()[0].String()
	b.SetBytes(im.M.Size())
	for b.Loop() {
		b.StopTimer()
		fetcher := newTestNode(b, boot)
		if err := seeder.Announce(ctx, im.M.Root); err != nil {
			b.Fatal(err)
		}
		out := filepath.Join(b.TempDir(), "out")
		b.StartTimer()
		if _, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
