package protocol

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-p2p/shoal/content"
)

// A server closes an idle stream; a reopening client opens another at its
// next request instead of failing.
func TestIdleClosedStreamReopened(t *testing.T) {
	data := []byte("some block")
	c := content.SumCID(content.CodecRaw, data)
	srv := &Server{Store: mapStore{c: data}, IdleTimeout: 100 * time.Millisecond}
	a, b := newHost(t), newHost(t)
	b.SetStreamHandler(ID, srv.Handle)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	opened := 0
	open := func(ctx context.Context) (Stream, error) {
		opened++
		return a.NewStream(ctx, b.ID(), ID)
	}
	s, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cl := NewReopeningClient(s, open)
	defer cl.Close()
	for i := range 3 {
		if _, err := cl.Get(ctx, c, content.MaxBlock); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		// Wait (bounded) until the server has closed the stream idle.
		for j := 0; j < 200 && cl.cur.failure() == nil; j++ {
			time.Sleep(20 * time.Millisecond)
		}
		if cl.cur.failure() == nil {
			t.Fatal("the server did not close an idle stream")
		}
		if err := cl.Err(); err != nil {
			t.Fatalf("client ended by an idle close: %v", err)
		}
	}
	if opened != 3 {
		t.Fatalf("%d streams opened, want 3", opened)
	}
}
