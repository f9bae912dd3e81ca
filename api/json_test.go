package api

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
)

// A request's root may be sent as Go writes a cid.Cid or as a plain
// string; a bad one is a bad request, and unknown fields are refused.
func TestRequestRoots(t *testing.T) {
	c, _ := cid.Decode("bafyreihbaalxste2yrujwekedtfkiabskfjub73k4to3krynw7syxi5n7q")
	link, _ := json.Marshal(GetRequest{Root: c, Dir: "/x"})
	for _, js := range []string{string(link), `{"root":"` + c.String() + `","dir":"/x"}`} {
		var r GetRequest
		if err := json.Unmarshal([]byte(js), &r); err != nil || !r.Root.Equals(c) || r.Dir != "/x" {
			t.Errorf("%s: %+v %v", js, r, err)
		}
	}
	var r GetRequest
	if err := json.Unmarshal([]byte(`{"root":"nonsense","dir":"/x"}`), &r); !errors.Is(err, ErrBadRequest) {
		t.Errorf("bad root: %v", err)
	}
	if err := json.Unmarshal([]byte(`{"cid":"x","dir":"/x"}`), &r); err == nil {
		t.Error("unknown field accepted")
	}
	var n GetRequest
	if err := json.Unmarshal([]byte(`{"name":"k/n","dir":"/x"}`), &n); err != nil || n.Root.Defined() || n.Name != "k/n" {
		t.Errorf("no root: %+v %v", n, err)
	}
	var p PublishRequest
	if err := json.Unmarshal([]byte(`{"name":"m","root":"`+c.String()+`"}`), &p); err != nil || !p.Root.Equals(c) {
		t.Errorf("publish: %+v %v", p, err)
	}
	var v verifyRequest
	if err := json.Unmarshal([]byte(`{"root":"`+c.String()+`"}`), &v); err != nil || !v.Root.Equals(c) {
		t.Errorf("verify: %+v %v", v, err)
	}
}
