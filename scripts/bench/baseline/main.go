// Command baseline measures the yardsticks the benchmarks compare Shoal
// against, on the same machine in the same run:
//
//	baseline sha256 FILE         Go crypto/sha256 over FILE on one core
//	baseline tcpcopy FILE DEST   a plain TCP copy of FILE to DEST over loopback
//
// Each prints one line: "<what> <bytes> <seconds> <MB/s>".
package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: baseline sha256 FILE | baseline tcpcopy FILE DEST")
		os.Exit(2)
	}
	var n int64
	var err error
	start := time.Now()
	switch os.Args[1] {
	case "sha256":
		n, err = hashFile(os.Args[2])
	case "tcpcopy":
		if len(os.Args) < 4 {
			err = fmt.Errorf("tcpcopy needs FILE DEST")
			break
		}
		n, err = tcpCopy(os.Args[2], os.Args[3])
	default:
		err = fmt.Errorf("unknown baseline %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("%s %d %.3f %.1f\n", os.Args[1], n, secs, float64(n)/secs/1e6)
}

func hashFile(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	h := sha256.New()
	return io.CopyBuffer(h, f, make([]byte, 1<<20))
}

// tcpCopy sends src over a loopback TCP connection to a receiver that
// writes it to dst and fsyncs, as a file transfer would.
func tcpCopy(src, dst string) (int64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	done := make(chan error, 1)
	var got int64
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		f, err := os.Create(dst)
		if err != nil {
			done <- err
			return
		}
		got, err = io.CopyBuffer(f, c, make([]byte, 1<<20))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	f, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := io.CopyBuffer(c, f, make([]byte, 1<<20)); err != nil {
		return 0, err
	}
	c.Close()
	// Receive first: the order in which a return statement evaluates a
	// plain variable and a receive is not fixed, and got is written by
	// the receiver before it sends.
	err = <-done
	return got, err
}
