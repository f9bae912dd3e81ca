package hf

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/shoal-p2p/shoal/content"
)

// Errors of hf. A Models implementation returns errors that wrap one of
// these so that the endpoint answers with the Hub's error code.
var (
	// ErrRepoNotFound reports a repo id that names no model this node
	// knows of (the Hub's RepoNotFound).
	ErrRepoNotFound = errors.New("repository not found")
	// ErrRevisionNotFound reports a revision that is not a known root or
	// commit of the repo (the Hub's RevisionNotFound).
	ErrRevisionNotFound = errors.New("revision not found")
)

// The Hub's error codes, sent in the X-Error-Code header; clients turn
// them into their own errors (a missing file is not an exception to the
// JavaScript client's fileDownloadInfo, for one).
const (
	codeRepoNotFound     = "RepoNotFound"
	codeRevisionNotFound = "RevisionNotFound"
	codeEntryNotFound    = "EntryNotFound"
)

// maxErrorHeader caps the X-Error-Message header.
const maxErrorHeader = 300

// hubError is an error answered to a client as the Hub answers it.
type hubError struct {
	status int
	code   string // X-Error-Code, if any
	msg    string
}

func (e *hubError) Error() string { return e.msg }

func hubBadRequest(msg string) *hubError {
	return &hubError{status: http.StatusBadRequest, msg: msg}
}

func hubRepoNotFound(repo string) *hubError {
	return &hubError{status: http.StatusNotFound, code: codeRepoNotFound,
		msg: "Repository not found: " + content.Quote(repo) + " names no model this Shoal node can find"}
}

func hubEntryNotFound(path, rev string) *hubError {
	return &hubError{status: http.StatusNotFound, code: codeEntryNotFound,
		msg: "Entry not found: " + content.Quote(path) + " at revision " + content.Quote(rev)}
}

// writeHubError sends e: the status, X-Error-Code, X-Error-Message and a
// JSON body {"error": message}.
func writeHubError(w http.ResponseWriter, e *hubError) {
	h := w.Header()
	for _, k := range []string{"ETag", "X-Linked-Etag", "X-Linked-Size", "X-Repo-Commit", "Accept-Ranges", "Content-Range", "Link"} {
		h.Del(k)
	}
	if e.code != "" {
		h.Set("X-Error-Code", e.code)
	}
	h.Set("X-Error-Message", headerSafe(e.msg))
	writeHubJSON(w, e.status, map[string]string{"error": e.msg})
}

// writeHubJSON sends v as a JSON body with status.
func writeHubJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // the endpoint's own types always encode
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// headerSafe makes msg fit a header value: printable ASCII only, capped.
func headerSafe(msg string) string {
	b := make([]byte, 0, min(len(msg), maxErrorHeader))
	for i := 0; i < len(msg) && len(b) < maxErrorHeader; i++ {
		c := msg[i]
		if c < 0x20 || c >= 0x7f {
			c = '?'
		}
		b = append(b, c)
	}
	return string(b)
}
