package fetch

import (
	"errors"
	"fmt"
	"testing"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/protocol"
)

func TestScheduler(t *testing.T) {
	mk := func(n int) []*job {
		var js []*job
		for i := range n {
			js = append(js, &job{cid: content.SumCID(content.CodecRaw, []byte(fmt.Sprint(i))), len: 1})
		}
		return js
	}
	a, b := &source{name: "a"}, &source{name: "b"}

	// A chunk one source lacks goes to the other, never back to the first.
	s := newScheduler(mk(2))
	s.addSource(a)
	s.addSource(b)
	j1, _ := s.take(a)
	if _, err := s.fail(j1, a, protocol.ErrNotFound, false); err != nil {
		t.Fatal(err)
	}
	j2, _ := s.take(a)
	if j2 == j1 {
		t.Fatal("failed job handed back to the source that failed it")
	}
	s.complete(j2, a)
	if j, wait := s.take(a); j != nil || wait == nil {
		t.Fatal("source a should wait: only a job it failed is left")
	}
	if j, _ := s.take(b); j != j1 {
		t.Fatal("the other source did not get the failed job")
	}
	s.complete(j1, b)
	select {
	case <-s.done:
	default:
		t.Fatal("not done after every job completed")
	}

	// Every source sends bad data: an integrity error once the search ends.
	s = newScheduler(mk(1))
	s.addSource(a)
	s.addSource(b)
	j, _ := s.take(a)
	bad := fmt.Errorf("%w: x", content.ErrHashMismatch)
	if dropped, err := s.fail(j, a, bad, true); err != nil || !dropped {
		t.Fatal("failed while another source could still try")
	}
	j, _ = s.take(b)
	if _, err := s.fail(j, b, bad, true); err != nil {
		t.Fatal("failed while the search could still find sources")
	}
	s.roundDone(false)
	if err := s.err(); !errors.Is(err, ErrIntegrity) {
		t.Fatalf("err = %v, want ErrIntegrity", err)
	}
	if j, wait := s.take(a); j != nil || wait != nil {
		t.Fatal("a dropped source still gets work")
	}
}
