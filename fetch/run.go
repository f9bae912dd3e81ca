package fetch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/protocol"
)

// run fetches every chunk still missing and finishes every file.
func (f *fetch) run(ctx context.Context, early []*source, disc *discovery, stopDiscovery func()) (*Result, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	total := f.total()
	s := newScheduler(f.jobs)
	defer s.closeSources()
	f.mu.Lock()
	f.sched = s
	f.mu.Unlock()
	var hashers sync.WaitGroup
	f.startHashing()
	for range hashWorkers {
		hashers.Go(func() {
			if err := f.hashLoop(ctx); err != nil {
				cancel(err)
			}
		})
	}
	allHashed := f.hashed
	var workers sync.WaitGroup
	start := func(src *source) {
		if !s.addSource(src) {
			return
		}
		if src.conn != nil && src.files == nil {
			workers.Go(func() { f.watchHave(ctx, s, src) })
		}
		for range src.workers {
			workers.Go(func() {
				if err := f.work(ctx, s, src); err != nil {
					cancel(err)
				}
			})
		}
	}
	for _, src := range early {
		start(src)
	}
	disc.onRound(s.roundDone)
	searching := make(chan struct{})
	go func() {
		defer close(searching)
		for src := range disc.out {
			start(src)
		}
	}()

	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	stallAfter := 2*f.e.cfg.RequestTimeout + f.e.cfg.FindTimeout
	lastDone, lastMove := f.done.Load(), time.Now()
	lastFlush, lastSort := time.Now(), time.Now()
	recvAt, recvNAt := map[*source]int64{}, map[*source]int64{}
	var err error
	chunksIn, hashed := s.done, (chan struct{})(nil)
	for loop := true; loop; {
		select {
		case <-chunksIn:
			// Every chunk is in (or the fetch failed); the hashers finish
			// the last files.
			chunksIn, hashed = nil, allHashed
			if s.err() != nil {
				loop = false
			}
		case <-hashed:
			loop = false
		case <-ctx.Done():
			loop = false
		case now := <-tick.C:
			d := f.done.Load()
			f.report(Progress{Phase: "fetching", Done: d, Total: total, Peers: s.active(), Files: f.nfiles()})
			if d != lastDone {
				lastDone, lastMove = d, now
			} else if now.Sub(lastMove) > stallAfter {
				s.stall(fmt.Errorf("%w: nothing arrived for %s (waiting for chunk %s)", ErrStalled, stallAfter, s.firstMissing()))
			}
			if now.Sub(lastSort) >= sortEvery(len(f.jobs)) {
				s.resort()
				for _, src := range s.sources() {
					if src.peer == "" {
						continue
					}
					r, rn := src.recv.Load(), src.recvN.Load()
					secs := now.Sub(lastSort).Seconds()
					rate, perSec := float64(r-recvAt[src])/secs, float64(rn-recvNAt[src])/secs
					recvAt[src], recvNAt[src] = r, rn
					s.pace(src, paceLimit(rate, perSec, src.workers))
				}
				lastSort = now
			}
			if now.Sub(lastFlush) >= time.Second {
				if err = f.flush(); err != nil {
					s.stall(err)
				}
				lastFlush = now
			}
		}
	}
	if err == nil {
		err = s.err()
	}
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	// Stop whatever still runs: workers racing chunks already in, have-map
	// watchers (which would otherwise wait for peers that wait for us).
	cancel(err)
	stopDiscovery()
	<-searching
	workers.Wait()
	hashers.Wait()
	f.bg.Wait()
	if ferr := f.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return nil, err
	}
	for _, of := range f.files {
		if !of.done {
			return nil, fmt.Errorf("%s: not complete after every chunk arrived", content.Quote(of.rel))
		}
	}
	if err := syncTree(f.dir, f.m, f.files); err != nil {
		return nil, err
	}
	var size int64
	for i, of := range f.files {
		if of.skip {
			continue
		}
		abs := filepath.Join(f.dir, of.rel)
		st, err := os.Stat(abs)
		if err != nil {
			return nil, err
		}
		f.infos = append(f.infos, content.FileInfo{Rel: f.m.Files[i].Path, Path: abs, Size: st.Size(), MtimeNs: st.ModTime().UnixNano(),
			SHA256: f.m.Files[i].SHA256, Unchecked: !of.check})
		size += st.Size()
	}
	res := &Result{Files: len(f.infos), Size: size, Refetch: int(f.refetch.Load()),
		Chunks: f.moved.Load(), Resumed: f.resumed.Load()}
	for _, src := range s.sources() {
		st := SourceStat{Peer: src.name, Bytes: src.bytes.Load(), Chunks: src.chunks.Load(), Relayed: src.relayed}
		if st.Chunks == 0 {
			continue
		}
		res.Sources = append(res.Sources, st)
		if src.peer == "" {
			res.Local += st.Bytes
		} else {
			res.Peers++
		}
	}
	return res, nil
}

// busyPause is how long a worker waits after its source said it is busy.
const busyPause = 250 * time.Millisecond

// sortEvery is how often chunks are re-sorted by rarity and partial
// holders' have-maps are asked again: often for the usual model, so a
// crowd learns quickly who has what, less for one of many chunks.
func sortEvery(chunks int) time.Duration {
	return min(time.Duration(chunks/20_000+1)*250*time.Millisecond, 4*time.Second)
}

// watchHave keeps a partial holder's have-map fresh.
func (f *fetch) watchHave(ctx context.Context, s *scheduler, src *source) {
	for {
		hm, err := src.conn.Have(ctx, f.m.Root)
		switch {
		case err == nil:
			s.setHave(src, hm)
			if hm.Complete {
				return
			}
		case errors.Is(err, protocol.ErrNotFound):
			// Found as a provider, holds nothing yet: ask again later.
		default:
			return // the stream broke; the workers will notice
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(sortEvery(len(f.jobs))):
		}
	}
}

// work is one worker of a source: take a job, fetch, verify, write.
func (f *fetch) work(ctx context.Context, s *scheduler, src *source) error {
	for {
		j, wait := s.take(src)
		if j == nil {
			if wait == nil {
				return nil
			}
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil
			}
		}
		data, err := src.get(ctx, j.cid, j.len)
		if err == nil && len(data) != j.len {
			err = fmt.Errorf("%w: chunk %s is %d bytes, manifest says %d", content.ErrHashMismatch, j.cid, len(data), j.len)
		}
		if err == nil {
			err = content.VerifyBlock(j.cid, data)
		}
		if err == nil {
			src.recv.Add(int64(j.len))
			src.recvN.Add(1)
		}
		if err != nil {
			protocol.Recycle(data)
			if ctx.Err() != nil {
				s.release(j, src)
				return nil
			}
			if errors.Is(err, protocol.ErrBusy) {
				// Overloaded, not wrong: the chunk goes back to the
				// queue, and this worker pauses before asking again.
				s.release(j, src)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(busyPause):
				}
				continue
			}
			// Wrong bytes, or more bytes than the manifest declares, or a
			// garbled reply: the peer misbehaved, not just failed.
			bad := errors.Is(err, content.ErrHashMismatch) || errors.Is(err, protocol.ErrTooLong) || errors.Is(err, protocol.ErrMalformed)
			f.refetch.Add(1)
			// A chunk the source lacks is asked of others; a source that
			// lied, broke or timed out is dropped from this fetch.
			drop := bad || !(errors.Is(err, protocol.ErrNotFound) || errors.Is(err, protocol.ErrUnavailable) ||
				errors.Is(err, content.ErrNotFound) || errors.Is(err, content.ErrChanged))
			dropped, ferr := s.fail(j, src, err, drop)
			if dropped && bad {
				f.e.log.Warn("peer sent a bad chunk; dropped", "peer", src.name, "cid", j.cid)
				f.e.net.Strike(src.peer)
			} else if dropped {
				f.e.log.Info("peer dropped from fetch", "peer", src.name, "err", err)
			}
			if ferr != nil {
				return ferr
			}
			if drop {
				return nil
			}
			continue
		}
		if !s.claim(j) {
			// Raced in the end game and another source won.
			s.lost(j, src)
			protocol.Recycle(data)
			continue
		}
		werr := f.write(j, data)
		protocol.Recycle(data)
		if werr != nil {
			return werr
		}
		s.complete(j, src)
		src.bytes.Add(int64(j.len))
		src.chunks.Add(1)
		f.moved.Add(1)
		if f.announced.CompareAndSwap(false, true) {
			// Able to serve part of the model: tell the swarm, within
			// the fetch (its end cancels the announce).
			f.bg.Go(func() {
				if err := f.e.net.Provide(ctx, f.m.Root); err != nil {
					f.e.log.Debug("announcing a partial root", "root", f.m.Root, "err", err)
				}
			})
		}
	}
}
