package node

import "errors"

// Errors of the node. Those of the fetch engine are in package fetch, of
// the home in package home; Codes carries them all across the local API.
var (
	// ErrNotSigned reports a root that the required publisher has not
	// signed (no valid record of that key names it).
	ErrNotSigned = errors.New("not signed by the required publisher")
	// ErrNoRecord reports a name nobody has published.
	ErrNoRecord = errors.New("no record found")
	// ErrBadTTL reports a record life that is negative or under MinTTL.
	ErrBadTTL = errors.New("bad record TTL")
	// ErrDaemonRunning reports a home whose index another process holds.
	ErrDaemonRunning = errors.New("another shoal process is using this home (is a daemon running?)")
)
