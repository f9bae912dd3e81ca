// Package httpx holds the rules every HTTP server of a node shares: the
// local API, the Hugging Face endpoint, the gateway.
package httpx

import (
	"net"
	"net/http"
	"strings"
)

// LoopbackHost reports whether a Host header names loopback: "localhost",
// an address in 127.0.0.0/8, or ::1, with or without a port.
func LoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// OnLoopback reports whether the request came in on a loopback address.
// A connection whose local address is unknown or not TCP counts as
// loopback: the Host rule then applies, which is the safe side.
func OnLoopback(r *http.Request) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return true
	}
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return true
	}
	return tcp.IP.IsLoopback()
}

// LoopbackOnly refuses (421, connection closed) a request that came in on
// loopback but names another Host: a web page whose name was rebound to
// 127.0.0.1 (DNS rebinding) cannot read from the server. what names the
// server in the refusal.
func LoopbackOnly(what string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if OnLoopback(r) && !LoopbackHost(r.Host) {
			w.Header().Set("Connection", "close")
			http.Error(w, "on loopback "+what+" answers only to a loopback Host (localhost, 127.0.0.1, ::1)", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}
