package cluster

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// recorder is a Reporter that remembers the order steps finished in.
type recorder struct {
	mu   sync.Mutex
	done []string
}

func (r *recorder) StepStarted(*Step) {}
func (r *recorder) StepDone(s *Step, _ error, _ time.Duration) {
	r.mu.Lock()
	r.done = append(r.done, s.ID)
	r.mu.Unlock()
}

func step(id string, run func(ctx context.Context) error, deps ...string) *Step {
	return &Step{ID: id, Action: ActCreate, Resource: id, Run: run, DependsOn: deps, Mutating: true}
}

func ok(context.Context) error { return nil }

func statuses(r *Result) map[string]string {
	out := map[string]string{}
	for _, s := range r.Steps {
		out[s.ID] = s.Status
	}
	return out
}

func TestExecuteOrderAndFailures(t *testing.T) {
	boom := errors.New("boom")
	fail := func(context.Context) error { return boom }
	tests := []struct {
		name  string
		steps []*Step
		want  map[string]string
		err   bool
	}{
		{
			name:  "chain runs in order",
			steps: []*Step{step("a", ok), step("b", ok, "a"), step("c", ok, "b")},
			want:  map[string]string{"a": "done", "b": "done", "c": "done"},
		},
		{
			name: "failure skips dependents and keeps independent branches going",
			steps: []*Step{
				step("net", ok), step("fw", fail, "net"), step("vm", ok, "fw"), step("verify", ok, "vm"),
				step("disk", ok), step("mig", ok, "disk"),
			},
			want: map[string]string{"net": "done", "fw": "failed", "vm": "skipped", "verify": "skipped", "disk": "done", "mig": "done"},
			err:  true,
		},
		{
			name:  "diamond waits for both parents",
			steps: []*Step{step("a", ok), step("b", ok, "a"), step("c", ok, "a"), step("d", ok, "b", "c")},
			want:  map[string]string{"a": "done", "b": "done", "c": "done", "d": "done"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Plan{Steps: tt.steps}
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			res := Execute(context.Background(), p, ExecuteOptions{Parallelism: 4, Reporter: rec})
			if diff := cmp.Diff(tt.want, statuses(res)); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
			if (res.Err != nil) != tt.err {
				t.Errorf("err = %v, want error %v", res.Err, tt.err)
			}
			if tt.err && !errors.Is(res.Err, boom) {
				t.Errorf("err = %v, want it to wrap the step's error", res.Err)
			}
			pos := map[string]int{}
			for i, id := range rec.done {
				pos[id] = i
			}
			for _, s := range tt.steps {
				for _, d := range s.DependsOn {
					if _, ran := pos[s.ID]; ran && pos[d] > pos[s.ID] {
						t.Errorf("%s finished before its dependency %s", s.ID, d)
					}
				}
			}
		})
	}
}

func TestExecuteBoundsParallelism(t *testing.T) {
	var cur, peak atomic.Int32
	run := func(context.Context) error {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		cur.Add(-1)
		return nil
	}
	p := &Plan{}
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		p.Steps = append(p.Steps, step(id, run))
	}
	res := Execute(context.Background(), p, ExecuteOptions{Parallelism: 3})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if got := peak.Load(); got != 3 {
		t.Errorf("peak parallelism = %d, want 3 (8 independent steps, limit 3)", got)
	}
}

func TestExecuteCancellationLeavesRestNotStarted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	slow := func(ctx context.Context) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}
	p := &Plan{Steps: []*Step{step("a", slow), step("b", ok, "a"), step("c", ok, "b")}}
	res := Execute(ctx, p, ExecuteOptions{Parallelism: 2})
	want := map[string]string{"a": "failed", "b": "skipped", "c": "skipped"}
	if diff := cmp.Diff(want, statuses(res)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if !errors.Is(res.Err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", res.Err)
	}
}

func TestPlanValidate(t *testing.T) {
	cyc := &Plan{Steps: []*Step{step("a", ok, "b"), step("b", ok, "a")}}
	if err := cyc.Validate(); err == nil {
		t.Error("cycle not detected")
	}
	missing := &Plan{Steps: []*Step{step("a", ok, "nope")}}
	if err := missing.Validate(); err == nil {
		t.Error("unknown dependency not detected")
	}
	// A step that awaits one that waits for it would never finish.
	awaits := step("a", ok)
	awaits.Awaits = []string{"b"}
	if err := (&Plan{Steps: []*Step{awaits, step("b", ok, "a")}}).Validate(); err == nil {
		t.Error("cycle through an await not detected")
	}
	awaits.Awaits = []string{"nope"}
	if err := (&Plan{Steps: []*Step{awaits}}).Validate(); err == nil {
		t.Error("unknown awaited step not detected")
	}
}

func TestResultSummary(t *testing.T) {
	r := &Result{Steps: []StepResult{{Status: "done"}, {Status: "done"}, {Status: "failed"}, {Status: "skipped"}}}
	if got, want := r.Summary(), "2 done, 1 failed, 1 skipped"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
}

// While a run lasts, the executor logs which steps wait for which, as
// terraform's walker does: at -v it shows a slow run's critical path.
func TestExecuteLogsWhatWaitsForWhat(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	release := make(chan struct{})
	slow := func(ctx context.Context) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
	p := &Plan{Steps: []*Step{step("vm", slow), step("pool", ok, "vm"), step("verify", ok, "pool")}}
	done := make(chan *Result)
	go func() {
		done <- Execute(context.Background(), p, ExecuteOptions{Parallelism: 2, Log: zap.New(core), WaitLog: 10 * time.Millisecond})
	}()
	deadline := time.After(10 * time.Second)
	for logs.FilterMessage("step is waiting").FilterField(zap.Strings("for", []string{"vm"})).Len() == 0 {
		select {
		case <-deadline:
			t.Fatalf("no wait logged; logs: %v", logs.All())
		case <-time.After(5 * time.Millisecond):
		}
	}
	close(release)
	if res := <-done; res.Err != nil {
		t.Fatal(res.Err)
	}
	if logs.FilterMessage("step is running").FilterField(zap.String("step", "vm")).Len() == 0 {
		t.Errorf("the running step was not logged: %v", logs.All())
	}
	if logs.FilterMessage("step is waiting").FilterField(zap.String("step", "verify")).Len() == 0 {
		t.Errorf("the step two edges away was not logged: %v", logs.All())
	}
}

// A step that Awaits another starts without it, waits for it partway
// through its Run and hears how it ended; a step not started yet that
// awaits a failed one is skipped.
func TestExecuteAwait(t *testing.T) {
	boom := errors.New("boom")
	fail := func(context.Context) error { return boom }
	tests := []struct {
		name  string
		pool  []*Step // "pool" and what it needs
		heard string  // what the move's await returns ("": nil)
		want  map[string]string
	}{
		{
			name:  "done",
			pool:  []*Step{step("pool", ok)},
			heard: "",
			want:  map[string]string{"move": "done", "pool": "done"},
		},
		{
			name:  "failed",
			pool:  []*Step{step("pool", fail)},
			heard: "needs pool, which failed",
			want:  map[string]string{"move": "done", "pool": "failed"},
		},
		{
			name:  "skipped",
			pool:  []*Step{step("hc", fail), step("pool", ok, "hc")},
			heard: "needs pool, which was skipped",
			want:  map[string]string{"move": "done", "hc": "failed", "pool": "skipped"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			awaiting := make(chan struct{})
			var heard error
			move := step("move", func(ctx context.Context) error {
				close(awaiting)
				heard = awaitStep(ctx, "pool")
				return nil
			})
			move.Awaits = []string{"pool"}
			// The pool's step ends only once the move waits for it.
			for _, s := range tt.pool {
				if s.ID == "pool" {
					run := s.Run
					s.Run = func(ctx context.Context) error { <-awaiting; return run(ctx) }
				}
			}
			p := &Plan{Steps: append([]*Step{move}, tt.pool...)}
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res := Execute(ctx, p, ExecuteOptions{Parallelism: 2})
			if diff := cmp.Diff(tt.want, statuses(res)); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
			got := ""
			if heard != nil {
				got = heard.Error()
			}
			if got != tt.heard {
				t.Errorf("await = %q, want %q", got, tt.heard)
			}
		})
	}

	t.Run("not started after a failure", func(t *testing.T) {
		move := step("move", ok, "slow")
		move.Awaits = []string{"pool"}
		slow := step("slow", func(context.Context) error { time.Sleep(50 * time.Millisecond); return nil })
		p := &Plan{Steps: []*Step{move, slow, step("pool", fail)}}
		res := Execute(context.Background(), p, ExecuteOptions{Parallelism: 2})
		want := map[string]string{"move": "skipped", "slow": "done", "pool": "failed"}
		if diff := cmp.Diff(want, statuses(res)); diff != "" {
			t.Errorf("statuses (-want +got):\n%s", diff)
		}
	})

	t.Run("undeclared", func(t *testing.T) {
		var heard error
		p := &Plan{Steps: []*Step{step("pool", ok), step("move", func(ctx context.Context) error {
			heard = awaitStep(ctx, "pool")
			return nil
		})}}
		Execute(context.Background(), p, ExecuteOptions{Parallelism: 2})
		if heard == nil || !strings.Contains(heard.Error(), "does not declare") {
			t.Errorf("await of an undeclared step = %v", heard)
		}
		if err := awaitStep(context.Background(), "pool"); err == nil {
			t.Error("await outside an execution succeeded")
		}
	})
}

// One parallelism slot: a step that waits for another hands its slot
// over, whichever of the two starts first (repeated to see both orders).
func TestExecuteAwaitHandsItsSlotOver(t *testing.T) {
	for i := range 10 {
		move := step("move", func(ctx context.Context) error { return awaitStep(ctx, "pool") })
		move.Awaits = []string{"pool"}
		p := &Plan{Steps: []*Step{step("first", ok), step("pool", ok, "first"), move}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res := Execute(ctx, p, ExecuteOptions{Parallelism: 1})
		cancel()
		if res.Err != nil {
			t.Fatalf("run %d: %v", i, res.Err)
		}
	}
}
