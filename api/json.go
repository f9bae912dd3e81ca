package api

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/content"
)

// readCID reads a CID sent either as Go writes a cid.Cid (the dag-json
// link {"/": "bafy…"}) or as a plain string, as a script with curl would
// send it; absent or null is no CID.
func readCID(raw json.RawMessage, into *cid.Cid) error {
	if err := content.CIDFromJSON(raw, into); err != nil {
		return fmt.Errorf("%w: root %w", ErrBadRequest, err)
	}
	return nil
}

// UnmarshalJSON reads a GetRequest whose root is a link or a string.
func (r *GetRequest) UnmarshalJSON(b []byte) error {
	type plain GetRequest
	var v struct {
		plain
		Root json.RawMessage `json:"root"`
	}
	if err := strict(b, &v); err != nil {
		return err
	}
	*r = GetRequest(v.plain)
	return readCID(v.Root, &r.Root)
}

// UnmarshalJSON reads a PublishRequest whose root is a link or a string.
func (r *PublishRequest) UnmarshalJSON(b []byte) error {
	type plain PublishRequest
	var v struct {
		plain
		Root json.RawMessage `json:"root"`
	}
	if err := strict(b, &v); err != nil {
		return err
	}
	*r = PublishRequest(v.plain)
	return readCID(v.Root, &r.Root)
}

// UnmarshalJSON reads a verify request whose root is a link or a string.
func (r *verifyRequest) UnmarshalJSON(b []byte) error {
	var v struct {
		Root json.RawMessage `json:"root"`
	}
	if err := strict(b, &v); err != nil {
		return err
	}
	return readCID(v.Root, &r.Root)
}

// strict decodes refusing unknown fields, as the handler does for every
// request (a custom UnmarshalJSON would otherwise lose that).
func strict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
