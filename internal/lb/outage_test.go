package lb_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/lb"
)

// clientView is an independent client of the static IP: a request every
// 100 ms, each on its own (a slow one does not delay the next), as many
// clients of the API would send them. What it sees of an outage is the
// longest time between two answers arriving.
type clientView struct {
	mu      sync.Mutex
	answers []time.Time
	failed  bool
}

// poll probes until ctx ends.
func (v *clientView) poll(ctx context.Context, p *lb.Prober, ip string) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := p.Probe(ctx, ip)
			if ctx.Err() != nil {
				return
			}
			v.mu.Lock()
			if err == nil {
				v.answers = append(v.answers, time.Now())
			} else {
				v.failed = true
			}
			v.mu.Unlock()
		}()
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// outage is the longest time between two answers less the 100 ms between
// requests; ok is false until a request failed and answers came again.
func (v *clientView) outage() (d time.Duration, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	ts := slices.SortedFunc(slices.Values(v.answers), func(a, b time.Time) int { return a.Compare(b) })
	longest := time.Duration(0)
	for i := 1; i < len(ts); i++ {
		longest = max(longest, ts[i].Sub(ts[i-1]))
	}
	if !v.failed || longest < 200*time.Millisecond || time.Since(ts[len(ts)-1]) > 150*time.Millisecond {
		return 0, false
	}
	return longest - 100*time.Millisecond, true
}

// TestOutageIsWhatAClientSees moves the IP to the load balancer and back
// while an independent client probes it every 100 ms, and checks each
// reported outage is the client's within 300 ms (both ends of both figures
// are known to 100 ms; the rest is slack for a loaded machine). The
// emulator runs at a fifth of real time during the moves, so the calls
// before the IP stops answering (deleting the master's access config:
// 0.6–1.6 s; deleting the forwarding rule: 1–3 s) are long enough that
// counting them as outage, as the moves once did, fails the check.
func TestOutageIsWhatAClientSees(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.emu.Control.SetLatency(ctx, emulator.Latency{Preset: emulator.LatencyRealistic, TimeScale: 0.2}); err != nil {
		t.Fatal(err)
	}
	f.spec.Deadline = time.Minute // propagation takes 8–16 s at this scale
	const tolerance = 300 * time.Millisecond
	for _, tt := range []struct {
		name string
		move func(context.Context, lb.Cloud, *lb.Spec, lb.Master) (lb.Move, error)
	}{
		{"promote", lb.Promote},
		{"demote", lb.Demote},
	} {
		t.Run(tt.name, func(t *testing.T) {
			view := &clientView{}
			pctx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); view.poll(pctx, &lb.Prober{Port: port, Timeout: time.Second}, f.ip) }()
			defer func() { stop(); wg.Wait() }()
			mv, err := tt.move(ctx, f.c, f.spec, f.m)
			if err != nil {
				t.Fatal(err)
			}
			// The client's outage is known once it has seen an answer again.
			deadline := time.Now().Add(10 * time.Second)
			seen, ok := view.outage()
			for ; !ok && time.Now().Before(deadline); seen, ok = view.outage() {
				time.Sleep(50 * time.Millisecond)
			}
			if !ok {
				t.Fatalf("the client saw no outage that ended (reported %+v)", mv)
			}
			if diff := mv.Outage - seen; diff > tolerance || diff < -tolerance {
				t.Errorf("reported outage %s, the client saw %s (difference %s, tolerance %s)", mv.Outage, seen, diff, tolerance)
			}
			if mv.Measured != lb.Measured {
				t.Errorf("measured = %q, want %q", mv.Measured, lb.Measured)
			}
			t.Logf("%s: reported %s, client saw %s", tt.name, mv.Outage.Round(time.Millisecond), seen.Round(time.Millisecond))
		})
	}
}
