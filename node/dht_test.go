package node

import (
	"context"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio/pbio"

	"github.com/shoal-p2p/shoal/content"
)

// sendKad sends one raw DHT message from `from` to `to` on its own stream,
// skipping from's own checks, and returns once `to` has handled it (closed
// or reset the stream).
func sendKad(t *testing.T, from, to *Node, msg *pb.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := from.Host.Connect(ctx, peer.AddrInfo{ID: to.Host.ID(), Addrs: to.Host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := from.Host.NewStream(ctx, to.Host.ID(), DHTPrefix+"/lan/kad/1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := pbio.NewDelimitedWriter(s).WriteMsg(msg); err != nil {
		t.Fatal(err)
	}
	s.CloseWrite()
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = s.Read(make([]byte, 1))
	s.Close()
}

// sendAddProvider sends raw ADD_PROVIDER messages, each claiming that a
// peer provides key.
func sendAddProvider(t *testing.T, from, to *Node, key cid.Cid, claimed ...peer.AddrInfo) {
	t.Helper()
	for _, c := range claimed {
		msg := pb.NewMessage(pb.Message_ADD_PROVIDER, key.Hash(), 0)
		msg.ProviderPeers = pb.RawPeerInfosToPBPeers([]peer.AddrInfo{c})
		sendKad(t, from, to, msg)
	}
}

func providers(t *testing.T, n *Node, key cid.Cid) map[peer.ID]bool {
	t.Helper()
	ais, err := n.DHT.LAN.ProviderStore().GetProviders(context.Background(), key.Hash())
	if err != nil {
		t.Fatal(err)
	}
	out := map[peer.ID]bool{}
	for _, ai := range ais {
		out[ai.ID] = true
	}
	return out
}

// Threat 10: a provider record announced on behalf of another peer is not
// stored; the same message announcing the sender itself is.
func TestProviderRecordForAnotherPeerRefused(t *testing.T) {
	nodes := cluster(t, 3)
	store, liar, victim := nodes[0], nodes[1], nodes[2]
	key := content.SumCID(content.CodecDagCBOR, []byte("some model"))
	// The false claim first, then an honest one on the same stream: once
	// the honest one is stored, the false one has been handled.
	sendAddProvider(t, liar, store, key,
		peer.AddrInfo{ID: victim.Host.ID(), Addrs: victim.Host.Addrs()},
		peer.AddrInfo{ID: liar.Host.ID(), Addrs: liar.Host.Addrs()})
	deadline := time.Now().Add(5 * time.Second)
	for !providers(t, store, key)[liar.Host.ID()] {
		if time.Now().After(deadline) {
			t.Fatal("an honest provider record was not stored either: the test proves nothing")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if providers(t, store, key)[victim.Host.ID()] {
		t.Fatal("stored a provider record sent on behalf of another peer")
	}
}
