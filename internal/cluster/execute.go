package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
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

// Execute runs the plan: every step whose dependencies are done, up to
// parallelism at a time. A failed step's dependents are skipped while
// independent branches keep going; cancellation stops new steps from
// starting. The result says what is done, failed and left, so a re-run can
// pick up from there.
func Execute(ctx context.Context, p *Plan, parallelism int, rep Reporter) *Result {
	if parallelism < 1 {
		parallelism = 1
	}
	start := time.Now()
	status := map[string]string{}
	results := map[string]*StepResult{}
	for _, s := range p.Steps {
		results[s.ID] = &StepResult{ID: s.ID, Action: s.Action, Resource: s.Resource, Status: "not-started"}
	}
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		errs    []error
		sem     = make(chan struct{}, parallelism)
		changed = make(chan struct{}, len(p.Steps)+1)
	)
	running := 0
	for {
		mu.Lock()
		// Skip the dependents of failed or skipped steps.
		for progress := true; progress; {
			progress = false
			for _, s := range p.Steps {
				if status[s.ID] != "" {
					continue
				}
				for _, d := range s.DependsOn {
					if st := status[d]; st == "failed" || st == "skipped" {
						status[s.ID] = "skipped"
						results[s.ID].Status = "skipped"
						results[s.ID].Error = "needs " + d
						progress = true
						break
					}
				}
			}
		}
		var ready []*Step
		if ctx.Err() == nil {
			for _, s := range p.Steps {
				if status[s.ID] != "" {
					continue
				}
				ok := true
				for _, d := range s.DependsOn {
					if status[d] != "done" {
						ok = false
						break
					}
				}
				if ok {
					ready = append(ready, s)
				}
			}
		}
		for _, s := range ready {
			status[s.ID] = "running"
			running++
		}
		idle := running == 0
		mu.Unlock()
		if idle && len(ready) == 0 {
			break
		}
		for _, s := range ready {
			wg.Add(1)
			go func(s *Step) {
				defer wg.Done()
				acquired := false
				select {
				case sem <- struct{}{}:
					acquired = true
				case <-ctx.Done():
				}
				t0 := time.Now()
				var err error
				ran := false
				if ctx.Err() != nil {
					err = ctx.Err()
				} else {
					ran = true
					if rep != nil {
						rep.StepStarted(s)
					}
					err = s.Run(withStep(ctx, s.ID))
					if rep != nil {
						rep.StepDone(s, err, time.Since(t0))
					}
				}
				if acquired {
					<-sem
				}
				took := time.Since(t0)
				mu.Lock()
				running--
				r := results[s.ID]
				r.Duration = took
				if !ran {
					status[s.ID] = "not-started"
					r.Status = "not-started"
				} else if err != nil {
					status[s.ID] = "failed"
					r.Status = "failed"
					r.Error = err.Error()
					errs = append(errs, fmt.Errorf("%s %s: %w", s.Action, s.Resource, err))
				} else {
					status[s.ID] = "done"
					r.Status = "done"
				}
				mu.Unlock()
				changed <- struct{}{}
			}(s)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			// Let running steps observe the cancellation and finish.
			select {
			case <-changed:
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	wg.Wait()
	res := &Result{Duration: time.Since(start)}
	for _, s := range p.Steps {
		res.Steps = append(res.Steps, *results[s.ID])
	}
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	res.Err = errors.Join(errs...)
	return res
}
