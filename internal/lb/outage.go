package lb

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// WatchEvery is how often an IP move probes the static IP: the resolution
// of the outage it reports, and what a client polling the API would see.
const WatchEvery = 100 * time.Millisecond

// Measured is how a move's outage is measured (Move.Measured).
const Measured = "static IP probed every 100 ms"

// outageWatch probes an IP every WatchEvery from just before a move's first
// disruptive call until the IP serves again. Each probe runs on its own, so
// one that hangs until its timeout does not delay the next: the outage is
// then known to WatchEvery, not to the probe timeout.
type outageWatch struct {
	p      *Prober
	ip     string
	start  time.Time
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	results []probeResult
	lastOK  time.Time     // the latest sending of an answered probe
	lastErr error         // the latest failure to arrive
	changed chan struct{} // a result arrived (buffered 1)
}

// probeResult is one probe: when it was sent, when it came back, and
// whether it was answered.
type probeResult struct {
	at, done time.Time
	err      error
}

// watch starts probing ip; stop ends it.
func (p *Prober) watch(ctx context.Context, ip string) *outageWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &outageWatch{p: p, ip: ip, start: time.Now(), cancel: cancel, changed: make(chan struct{}, 1)}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(WatchEvery)
		defer t.Stop()
		for {
			w.wg.Add(1)
			go w.probe(ctx, time.Now())
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *outageWatch) probe(ctx context.Context, at time.Time) {
	defer w.wg.Done()
	err := w.p.Probe(ctx, w.ip)
	if ctx.Err() != nil {
		return // cut short by stop: no evidence either way
	}
	w.mu.Lock()
	w.results = append(w.results, probeResult{at: at, done: time.Now(), err: err})
	if err == nil && at.After(w.lastOK) {
		w.lastOK = at
	} else if err != nil {
		w.lastErr = err
	}
	w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// stop ends the probing and waits for the probes in flight to return.
func (w *outageWatch) stop() {
	w.cancel()
	w.wg.Wait()
}

// waitServing waits until a probe sent at or after since is answered, or
// deadline passes, reporting the time waited through progress about once a
// second.
func (w *outageWatch) waitServing(ctx context.Context, since time.Time, deadline time.Duration, progress func(time.Duration)) error {
	begin := time.Now()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	report := time.NewTicker(time.Second)
	defer report.Stop()
	for {
		ok, last := w.servedSince(since)
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return fmt.Errorf("%s:%d not serving after %s (last error: %v)", w.ip, w.p.Port, deadline, last)
		case <-report.C:
			if progress != nil {
				progress(time.Since(begin))
			}
		case <-w.changed:
		}
	}
}

// servedSince reports whether a probe sent at or after since was answered,
// and the latest failure otherwise.
func (w *outageWatch) servedSince(since time.Time) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.lastOK.Before(since) {
		return true, nil
	}
	return false, w.lastErr
}

// outage is how long the IP did not answer: the longest time between two
// answers arriving, less the spacing of the probes (answers of a serving IP
// arrive every WatchEvery). Arrival, not sending, counts: while a rule
// propagates GCE drops the connection attempts, and a probe sent then is
// answered only when its SYN is retransmitted, after the IP serves again.
// Both ends are known to WatchEvery, so an outage shorter than that can go
// unseen (0). note says when the IP was not answering as the watch began:
// the outage then counts from the watch's start.
func (w *outageWatch) outage() (d time.Duration, note string) {
	w.mu.Lock()
	var answers []time.Time
	for _, r := range w.results {
		if r.err == nil {
			answers = append(answers, r.done)
		}
	}
	w.mu.Unlock()
	if len(answers) == 0 {
		return time.Since(w.start), "it was not answering when probing began"
	}
	slices.SortFunc(answers, func(a, b time.Time) int { return a.Compare(b) })
	if answers[0].Sub(w.start) > 2*WatchEvery {
		note = "it was not answering when probing began"
	}
	prev, longest := w.start, time.Duration(0)
	for _, a := range answers {
		longest, prev = max(longest, a.Sub(prev)), a
	}
	return max(longest-WatchEvery, 0), note
}
