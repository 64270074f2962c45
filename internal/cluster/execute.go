package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Reporter hears about steps as they run (the CLI prints one line per step
// with its duration).
type Reporter interface {
	StepStarted(s *Step)
	StepDone(s *Step, err error, took time.Duration)
}

// stepKey carries the running step's id in the context its Run gets, so
// progress from deep inside a step (an IP move, a wait) is reported under
// the id the CLI's display knows.
type stepKey struct{}

func withStep(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, stepKey{}, id)
}

// stepOf returns the id of the step ctx was handed to ("" outside a step).
func stepOf(ctx context.Context) string {
	id, _ := ctx.Value(stepKey{}).(string)
	return id
}

// awaitKey carries, in the context a step's Run gets, the executor's way
// to wait for a step it Awaits.
type awaitKey struct{}

// awaitStep waits, inside a running step, until the step id (one it
// Awaits) is done. It fails when that step failed or was skipped, and when
// the step was not run by Execute.
func awaitStep(ctx context.Context, id string) error {
	await, _ := ctx.Value(awaitKey{}).(func(context.Context, string) error)
	if await == nil {
		return fmt.Errorf("await %s: the step is not run by a plan's execution", id)
	}
	return await(ctx, id)
}

// StepResult is what happened to one step.
type StepResult struct {
	ID       string        `json:"id"`
	Action   string        `json:"action"`
	Resource string        `json:"resource"`
	Status   string        `json:"status"` // done, failed, skipped, not-started
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"durationNs"`
}

// Result is the outcome of executing a plan: what was done, what failed and
// what is left.
type Result struct {
	Steps    []StepResult  `json:"steps"`
	Duration time.Duration `json:"durationNs"`
	Err      error         `json:"-"`
}

// Count returns the number of steps with the given status.
func (r *Result) Count(status string) int {
	n := 0
	for _, s := range r.Steps {
		if s.Status == status {
			n++
		}
	}
	return n
}

// Summary is a one-line account: "5 done, 1 failed, 2 skipped".
func (r *Result) Summary() string {
	var parts []string
	for _, st := range []string{"done", "failed", "skipped", "not-started"} {
		if n := r.Count(st); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	if len(parts) == 0 {
		return "nothing to do"
	}
	return strings.Join(parts, ", ")
}

// ExecuteOptions tune Execute.
type ExecuteOptions struct {
	Parallelism int // steps running at once, at most (0: 1)
	Reporter    Reporter
	// Log hears, every WaitLog while a run lasts (at info level, shown by
	// -v), which steps wait for which: terraform's walker does the same, and
	// it is what tells a slow run's critical path.
	Log     *zap.Logger
	WaitLog time.Duration // 0: 5 s
}

// Step states while a plan executes.
const (
	stRunning    = "running"
	stDone       = "done"
	stFailed     = "failed"
	stSkipped    = "skipped"
	stNotStarted = "not-started"
)

// executor is one Execute: the states of the steps, guarded by mu.
type executor struct {
	plan    *Plan
	opts    ExecuteOptions
	mu      sync.Mutex
	state   map[string]string
	results map[string]*StepResult
	errs    []error
	running int
	sem     chan struct{}
	changed chan struct{}
	// finished is closed once its step is done, failed, skipped or will
	// not start (awaitStep waits on it).
	finished map[string]chan struct{}
	wg       sync.WaitGroup
}

// Execute runs the plan: every step whose dependencies are done, up to
// Parallelism at a time. A failed step's dependents are skipped while
// independent branches keep going; cancellation stops new steps from
// starting. The result says what is done, failed and left, so a re-run can
// pick up from there.
func Execute(ctx context.Context, p *Plan, opts ExecuteOptions) *Result {
	if opts.Parallelism < 1 {
		opts.Parallelism = 1
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.WaitLog <= 0 {
		opts.WaitLog = 5 * time.Second
	}
	start := time.Now()
	x := &executor{plan: p, opts: opts, state: map[string]string{}, results: map[string]*StepResult{},
		sem: make(chan struct{}, opts.Parallelism), changed: make(chan struct{}, len(p.Steps)+1),
		finished: map[string]chan struct{}{}}
	for _, s := range p.Steps {
		x.results[s.ID] = &StepResult{ID: s.ID, Action: s.Action, Resource: s.Resource, Status: stNotStarted}
		x.finished[s.ID] = make(chan struct{})
	}
	tick := time.NewTicker(opts.WaitLog)
	defer tick.Stop()
	for {
		x.mu.Lock()
		x.skipBlocked()
		var ready []*Step
		if ctx.Err() == nil {
			ready = x.readySteps()
		}
		idle := x.running == 0
		x.mu.Unlock()
		if idle && len(ready) == 0 {
			break
		}
		for _, s := range ready {
			x.wg.Add(1)
			go x.runStep(ctx, s)
		}
		select {
		case <-x.changed:
		case <-tick.C:
			x.logWaits()
		case <-ctx.Done():
			// Let running steps observe the cancellation and finish.
			select {
			case <-x.changed:
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	x.wg.Wait()
	res := &Result{Duration: time.Since(start)}
	for _, s := range p.Steps {
		res.Steps = append(res.Steps, *x.results[s.ID])
	}
	if ctx.Err() != nil {
		x.errs = append(x.errs, ctx.Err())
	}
	res.Err = errors.Join(x.errs...)
	return res
}

// skipBlocked marks the steps not started yet that need a failed or
// skipped step (before they start or while they run) skipped, as far as
// that reaches. Called with mu held.
func (x *executor) skipBlocked() {
	for progress := true; progress; {
		progress = false
		for _, s := range x.plan.Steps {
			if x.state[s.ID] != "" {
				continue
			}
			for _, d := range s.waitsFor() {
				if st := x.state[d]; st == stFailed || st == stSkipped {
					x.state[s.ID] = stSkipped
					x.results[s.ID].Status, x.results[s.ID].Error = stSkipped, "needs "+d
					close(x.finished[s.ID])
					progress = true
					break
				}
			}
		}
	}
}

// await is awaitStep for the running step s. The step hands its
// parallelism slot back while it waits: the step it awaits may need it.
func (x *executor) await(ctx context.Context, s *Step, id string) error {
	if !slices.Contains(s.Awaits, id) {
		return fmt.Errorf("plan: step %q awaits %q, which it does not declare", s.ID, id)
	}
	<-x.sem
	select {
	case <-x.finished[id]:
	case <-ctx.Done():
	}
	x.sem <- struct{}{}
	if err := ctx.Err(); err != nil {
		return err
	}
	x.mu.Lock()
	st := x.state[id]
	x.mu.Unlock()
	switch st {
	case stDone:
		return nil
	case stFailed:
		return fmt.Errorf("needs %s, which failed", id)
	case stSkipped:
		return fmt.Errorf("needs %s, which was skipped", id)
	}
	return fmt.Errorf("needs %s, which did not start", id)
}

// readySteps claims the steps whose dependencies are all done. Called with
// mu held.
func (x *executor) readySteps() []*Step {
	var ready []*Step
	for _, s := range x.plan.Steps {
		if x.state[s.ID] != "" {
			continue
		}
		if slices.ContainsFunc(s.DependsOn, func(d string) bool { return x.state[d] != stDone }) {
			continue
		}
		x.state[s.ID] = stRunning
		x.running++
		ready = append(ready, s)
	}
	return ready
}

// runStep runs one step once a parallelism slot is free (or not at all when
// the run is cancelled first) and records what happened.
func (x *executor) runStep(ctx context.Context, s *Step) {
	defer x.wg.Done()
	acquired := false
	select {
	case x.sem <- struct{}{}:
		acquired = true
	case <-ctx.Done():
	}
	t0 := time.Now()
	var err error
	ran := acquired && ctx.Err() == nil
	if ran {
		if rep := x.opts.Reporter; rep != nil {
			rep.StepStarted(s)
		}
		await := func(ctx context.Context, id string) error { return x.await(ctx, s, id) }
		err = s.Run(context.WithValue(withStep(ctx, s.ID), awaitKey{}, await))
		if rep := x.opts.Reporter; rep != nil {
			rep.StepDone(s, err, time.Since(t0))
		}
	}
	if acquired {
		<-x.sem
	}
	x.mu.Lock()
	x.running--
	r := x.results[s.ID]
	r.Duration = time.Since(t0)
	switch {
	case !ran:
		x.state[s.ID], r.Status = stNotStarted, stNotStarted
	case err != nil:
		x.state[s.ID], r.Status, r.Error = stFailed, stFailed, err.Error()
		x.errs = append(x.errs, fmt.Errorf("%s %s: %w", s.Action, s.Resource, err))
	default:
		x.state[s.ID], r.Status = stDone, stDone
	}
	close(x.finished[s.ID])
	x.mu.Unlock()
	x.changed <- struct{}{}
}

// logWaits says which pending steps wait for which unfinished ones.
func (x *executor) logWaits() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, s := range x.plan.Steps {
		if x.state[s.ID] != "" && x.state[s.ID] != stRunning {
			continue
		}
		if x.state[s.ID] == stRunning {
			x.opts.Log.Info("step is running", zap.String("step", s.ID))
			continue
		}
		var waits []string
		for _, d := range s.DependsOn {
			if x.state[d] != stDone {
				waits = append(waits, d)
			}
		}
		x.opts.Log.Info("step is waiting", zap.String("step", s.ID), zap.Strings("for", waits))
	}
}
