// Package api is the one way into a Shoal node: the Service interface
// (add, get, ls, files, verify, publish, resolve, id, status), its request,
// result and event types, the HTTP handler that serves a Service on the
// daemon's local API, and the typed client of that API (itself a
// Service). The CLI talks only to a Service: the daemon's client, or an
// in-process node when no daemon runs.
//
// Errors cross the API with a code: the handler names the sentinel an
// error wraps (from a Codes table), and the client hands back an *Error
// that unwraps to the same sentinel, so errors.Is holds through a daemon
// as it does in process.
package api
