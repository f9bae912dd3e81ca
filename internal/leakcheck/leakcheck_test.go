package leakcheck

import (
	"fmt"
	"strings"
	"testing"
)

// fakeTB runs Check's cleanup on demand and records its verdict.
type fakeTB struct {
	testing.TB
	cleanups []func()
	errs     []string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Cleanup(fn func())              { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Errorf(format string, a ...any) { f.errs = append(f.errs, fmt.Sprintf(format, a...)) }

func (f *fakeTB) end() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func leaky(stop chan struct{}) { <-stop }

func TestCheck(t *testing.T) {
	// A goroutine that ends in time passes.
	ok := &fakeTB{TB: t}
	Check(ok)
	done := make(chan struct{})
	go leaky(done)
	close(done)
	ok.end()
	if len(ok.errs) != 0 {
		t.Fatalf("a goroutine that ended was reported: %v", ok.errs)
	}
	// One still running is reported with its stack.
	bad := &fakeTB{TB: t}
	Check(bad)
	stop := make(chan struct{})
	go leaky(stop)
	bad.end()
	close(stop)
	if len(bad.errs) != 1 || !strings.Contains(bad.errs[0], "leakcheck.leaky") {
		t.Fatalf("a leaked goroutine was not reported: %v", bad.errs)
	}
}
