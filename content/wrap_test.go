package content

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// An error that names a content sentinel keeps its cause too: both are
// visible to errors.Is and errors.As (a "%w: %v" dropped the cause).
func TestErrorsKeepTheirCause(t *testing.T) {
	var r Record
	err := r.UnmarshalRecord([]byte{0xff, 0x00})
	if !errors.Is(err, ErrBadRecord) {
		t.Fatalf("err = %v, want ErrBadRecord", err)
	}
	var syn *cbor.SyntaxError
	var typ *cbor.UnmarshalTypeError
	if !errors.As(err, &syn) && !errors.As(err, &typ) && errors.Unwrap(err) == nil {
		t.Fatalf("the CBOR decoder's error is lost: %v (%T)", err, err)
	}
	if u, ok := err.(interface{ Unwrap() []error }); !ok || len(u.Unwrap()) != 2 {
		t.Fatalf("want the sentinel and the cause, got %T", err)
	}
}

// An index written before roots were typed holds each root as a string;
// it still reads, and a root reads back as written now.
func TestRootInfoReadsBothForms(t *testing.T) {
	c := SumCID(CodecDagCBOR, []byte("x"))
	for _, js := range []string{`{"root":"` + c.String() + `","name":"m"}`, `{"root":{"/":"` + c.String() + `"},"name":"m"}`} {
		var ri RootInfo
		if err := json.Unmarshal([]byte(js), &ri); err != nil || !ri.Root.Equals(c) || ri.Name != "m" {
			t.Fatalf("%s: %+v %v", js, ri, err)
		}
	}
	b, _ := json.Marshal(RootInfo{Root: c, Name: "m"})
	var back RootInfo
	if err := json.Unmarshal(b, &back); err != nil || !back.Root.Equals(c) {
		t.Fatalf("round trip %s: %v", b, err)
	}
}
