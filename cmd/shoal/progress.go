package main

import (
	"strconv"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/shoal-p2p/shoal/api"
)

// bar draws a progress bar on a terminal; elsewhere it draws nothing.
type bar struct {
	pb   *progressbar.ProgressBar
	desc string
}

func (a *app) newBar(desc string, total int64) *bar {
	b := &bar{desc: desc}
	if a.json || !a.isTerminal() {
		return b
	}
	if total <= 0 {
		total = -1
	}
	b.pb = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(a.stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionUseIECUnits(true), // KiB, MiB, GiB: as the summary prints
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionFullWidth(),
		progressbar.OptionClearOnFinish(),
	)
	return b
}

// update moves the bar to a snapshot.
func (b *bar) update(p api.Progress) {
	if b.pb == nil {
		return
	}
	if p.Total > 0 && b.pb.GetMax64() != p.Total {
		b.pb.ChangeMax64(p.Total)
	}
	desc := b.desc
	switch p.Phase {
	case "finding":
		desc = "finding providers"
	case "manifest":
		desc = "fetching manifest"
	case "fetching":
		desc = b.desc + " · " + plural(p.Peers, "peer")
	}
	b.pb.Describe(desc)
	_ = b.pb.Set64(p.Done)
}

func (b *bar) finish() {
	if b.pb != nil {
		_ = b.pb.Finish()
		_ = b.pb.Clear()
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
