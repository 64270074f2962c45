package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/lb"
	"github.com/hakube/hakube/internal/zones"
)

// RunOptions control one run of a flow.
type RunOptions struct {
	Command string // "up" or "down"
	DryRun  bool
	// Confirm is asked before a destructive plan runs (nil: proceed).
	Confirm func(p *Plan) (bool, error)
	// ShowPlan receives the plan before it runs (and in dry runs).
	ShowPlan func(p *Plan) error
	Reporter Reporter
}

// Report is the outcome of a run, for people and for -o json.
type Report struct {
	Flow        string            `json:"flow"`
	Cluster     string            `json:"cluster"`
	Project     string            `json:"project"`
	Region      string            `json:"region,omitempty"`
	Zone        string            `json:"zone,omitempty"`
	DryRun      bool              `json:"dryRun"`
	Plan        *Plan             `json:"plan"`
	Result      *Result           `json:"result,omitempty"`
	Outages     []lb.Move         `json:"outages,omitempty"`
	APICalls    int               `json:"apiCalls"`
	ByMethod    []gce.MethodCount `json:"apiCallsByMethod,omitempty"`
	Duration    time.Duration     `json:"durationNs"`
	NothingToDo bool              `json:"nothingToDo"`
	// Warnings are things the user should know that did not stop the run:
	// a lock taken over or left by a run that is gone, a lock held by another.
	Warnings []string `json:"warnings,omitempty"`
	Status   *Status  `json:"status,omitempty"`
}

// ErrAborted means the user declined the plan.
var ErrAborted = errors.New("aborted: nothing was changed")

// Run observes the cluster, plans the flow, shows the plan, takes the lock,
// executes, and verifies by planning again: a converged cluster needs no
// further change.
func Run(ctx context.Context, env *Env, cfg *config.Config, opts RunOptions) (*Report, error) {
	env.defaults()
	start := time.Now()
	before := env.Cloud.Stats().Snapshot()
	rep := &Report{Cluster: cfg.ClusterName(), Project: cfg.Project, Zone: cfg.Zone, DryRun: opts.DryRun}
	finish := func() {
		after := env.Cloud.Stats().Snapshot()
		rep.ByMethod = gce.Diff(before, after)
		rep.APICalls = 0
		for _, m := range rep.ByMethod {
			rep.APICalls += m.Count
		}
		rep.Duration = time.Since(start)
	}
	defer finish()

	if cfg.Zone != "" {
		if err := zones.Check(ctx, env.Cloud, cfg.Zone); err != nil {
			if errors.Is(err, zones.ErrZone) {
				return rep, fmt.Errorf("%w: %v", config.ErrInvalidConfig, err)
			}
			return rep, err
		}
	}
	cfg, obs, err := observeAdopted(ctx, env.Cloud, cfg, opts.Command)
	if err != nil {
		return rep, err
	}
	p, err := plan(ctx, env, cfg, obs, opts.Command)
	if err != nil {
		return rep, err
	}
	rep.Flow, rep.Plan, rep.Region = p.plan.Flow, p.plan, p.region()
	if err := p.plan.Validate(); err != nil {
		return rep, err
	}
	p.pre.region = p.region()
	if err := p.pre.check(ctx, env.Cloud, cfg); err != nil {
		return rep, err
	}
	if opts.ShowPlan != nil {
		if err := opts.ShowPlan(p.plan); err != nil {
			return rep, err
		}
	}
	if opts.DryRun {
		return rep, nil
	}
	if p.plan.Mutations() == 0 {
		rep.NothingToDo = true
		rep.Warnings = append(rep.Warnings, settleLock(ctx, env, p)...)
		if len(p.plan.Steps) == 0 {
			return rep, nil
		}
	} else if opts.Confirm != nil {
		ok, err := opts.Confirm(p.plan)
		if err != nil {
			return rep, err
		}
		if !ok {
			return rep, ErrAborted
		}
	}
	res := Execute(ctx, p.plan, env.Parallelism, opts.Reporter)
	rep.Result = res
	rep.Outages = p.moves
	rep.Warnings = append(rep.Warnings, p.warnings...)
	if p.lock != nil {
		// Release even when the run was cancelled: a stale lock would block
		// the re-run that is meant to finish the job.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		if rerr := p.lock.Release(rctx); rerr != nil {
			env.Log.Warn("could not release the cluster lock; the next run may need --break-lock")
		}
		cancel()
	}
	if res.Err != nil {
		return rep, res.Err
	}
	if p.plan.Mutations() == 0 {
		return rep, nil
	}
	// Verify: observed again, the cluster must need nothing more.
	obs2, err := Observe(ctx, env.Cloud, cfg)
	if err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	rep.Status, _ = statusOf(ctx, env, cfg, obs2, false)
	if p2, err := plan(ctx, env, cfg, obs2, opts.Command); err == nil && p2.plan.Mutations() > 0 {
		var left []string
		for _, s := range p2.plan.Steps {
			if s.Mutating {
				left = append(left, s.Action+" "+s.Resource)
			}
		}
		return rep, fmt.Errorf("verify: the cluster has not converged; still to do: %v (re-run to finish)", left)
	}
	return rep, nil
}

// settleLock deals with a lock found by a run that changes nothing: the
// lock of a dead run of this identity (or the one --break-lock names) is
// cleared, so the next command is not refused; another's is reported.
func settleLock(ctx context.Context, env *Env, p *planner) []string {
	held := p.observedLock()
	if !held.Held() {
		return nil
	}
	req := env.lockRequest(p.plan.Flow, held)
	if !req.Gone(held) && req.Break == nil {
		return []string{(&gce.LockedError{Address: p.cfg.StaticIPName(), Info: held}).Error()}
	}
	if err := env.Cloud.ClearStaleLock(ctx, p.region(), p.cfg.StaticIPName(), held); err != nil {
		return []string{fmt.Sprintf("could not clear the lock left by %s: %v; the next run may need --break-lock", held, err)}
	}
	if req.Gone(held) {
		return []string{fmt.Sprintf("cleared the cluster lock left by %s, a run that is gone", held)}
	}
	return []string{fmt.Sprintf("cleared the cluster lock of %s (--break-lock)", held)}
}

// MakePlan observes and plans without changing anything.
func MakePlan(ctx context.Context, env *Env, cfg *config.Config, command string) (*Plan, error) {
	env.defaults()
	obs, err := Observe(ctx, env.Cloud, cfg)
	if err != nil {
		return nil, err
	}
	p, err := plan(ctx, env, cfg, obs, command)
	if err != nil {
		return nil, err
	}
	return p.plan, nil
}

func plan(ctx context.Context, env *Env, cfg *config.Config, obs *Observed, command string) (*planner, error) {
	var p *planner
	var err error
	switch command {
	case "up":
		p, err = planUp(ctx, env, cfg, obs)
	case "down":
		p, err = planDown(ctx, env, cfg, obs)
	default:
		return nil, fmt.Errorf("unknown command %q", command)
	}
	if err != nil {
		return nil, err
	}
	return p, p.finish().Validate()
}
