package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	compute "google.golang.org/api/compute/v1"

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
	defer func() {
		rep.ByMethod = gce.Diff(before, env.Cloud.Stats().Snapshot())
		rep.APICalls = 0
		for _, m := range rep.ByMethod {
			rep.APICalls += m.Count
		}
		rep.Duration = time.Since(start)
	}()

	p, err := prepare(ctx, env, cfg, opts, rep)
	if err != nil || opts.DryRun {
		return rep, err
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
	if err := execute(ctx, env, p, opts, rep); err != nil || p.plan.Mutations() == 0 {
		return rep, err
	}
	return rep, verify(ctx, env, p, opts.Command, changedParts(gce.Diff(before, env.Cloud.Stats().Snapshot())), rep)
}

// prepare checks the zone, observes (adopting the cluster's own record),
// plans, runs the preflight and shows the plan.
func prepare(ctx context.Context, env *Env, cfg *config.Config, opts RunOptions, rep *Report) (*planner, error) {
	if cfg.Zone != "" && !zones.Valid(cfg.Zone) {
		return nil, checkZone(ctx, env, cfg.Zone) // fails without a call
	}
	cfg, obs, err := observeAdopted(ctx, env.Cloud, cfg, opts.Command)
	if err != nil {
		return nil, err
	}
	// The zone must exist and be UP before anything changes (etcd's
	// access included). One that holds the cluster's VMs exists: it is
	// checked for being UP beside the preflight, and not at all by a run
	// that changes nothing.
	proven := cfg.Zone == "" || obs.inZone(cfg.Zone)
	if !proven {
		if err := checkZone(ctx, env, cfg.Zone); err != nil {
			return nil, err
		}
	}
	if needsEtcd(cfg, opts.Command, obs) {
		w, err := readEtcd(ctx, env, obs, opts.DryRun)
		rep.Warnings = append(rep.Warnings, w...)
		if err != nil {
			return nil, err
		}
	}
	if (opts.Command == "up" || needsEtcd(cfg, opts.Command, obs)) && len(obs.Masters) > 0 {
		readNodes(ctx, env, cfg, obs)
	}
	p, err := plan(ctx, env, cfg, obs, opts.Command)
	if err != nil {
		return nil, err
	}
	rep.Flow, rep.Plan, rep.Region = p.plan.Flow, p.plan, p.region()
	p.pre.region = p.region()
	var zoneErr, preErr error
	var wg sync.WaitGroup
	if cfg.Zone != "" && proven && p.plan.Mutations() > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); zoneErr = checkZone(ctx, env, cfg.Zone) }()
	}
	preErr = p.pre.check(ctx, env.Cloud, cfg)
	wg.Wait()
	if err := cmp.Or(zoneErr, preErr); err != nil {
		return nil, err
	}
	if opts.ShowPlan != nil {
		if err := opts.ShowPlan(p.plan); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// checkZone confirms the zone exists and is UP: a zone that does not is
// invalid input (exit 2).
func checkZone(ctx context.Context, env *Env, zone string) error {
	err := zones.Check(ctx, env.Cloud, zone)
	if errors.Is(err, zones.ErrZone) {
		return fmt.Errorf("%w: %v", config.ErrInvalidConfig, err)
	}
	return err
}

// execute runs the plan. A run that failed or was cancelled, or that has
// nothing to verify, releases the lock here; one that succeeded, once the
// verification has read the static IP.
func execute(ctx context.Context, env *Env, p *planner, opts RunOptions, rep *Report) error {
	res := Execute(ctx, p.plan, ExecuteOptions{Parallelism: env.Parallelism, Reporter: opts.Reporter, Log: env.Log})
	rep.Result = res
	moves, warnings := p.st.outcome()
	rep.Outages = moves
	rep.Warnings = append(rep.Warnings, warnings...)
	if res.Err != nil || p.plan.Mutations() == 0 {
		release(ctx, env, p, nil)
	}
	return res.Err
}

// release drops the run's lock, even when the run was cancelled: a stale
// lock would block the re-run meant to finish the job. seen is the
// verification's observation (nil when there is none): its static IP,
// read after the lock was taken, saves the read before the write, and a
// static IP it found gone took the lock with it. It returns the lock it
// released (nil: none, or it could not).
func release(ctx context.Context, env *Env, p *planner, seen *Observed) *gce.Lock {
	lock := p.st.heldLock()
	if lock == nil {
		return nil
	}
	var a *compute.Address
	if seen != nil {
		if a = seen.Address; a == nil && seen.holds(readAddresses) {
			return lock
		}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := lock.ReleaseSeen(rctx, a); err != nil {
		env.Log.Warn("could not release the cluster lock; the next run may need --break-lock")
		return nil
	}
	return lock
}

// verify observes again and plans again: a converged cluster needs nothing
// more. It re-reads only the parts of the observation the run's mutations
// could have changed; the others are the plan's observation, which the
// lock kept every other run from changing.
func verify(ctx context.Context, env *Env, p *planner, command string, changed reads, rep *Report) error {
	cfg := p.cfg
	obs, err := observe(ctx, env.Cloud, cfg, p.obs, changed)
	if err != nil {
		release(ctx, env, p, nil)
		return fmt.Errorf("verify: %w", err)
	}
	released := release(ctx, env, p, obs)
	rep.Status = statusOf(cfg, obs)
	if l := rep.Status.Lock; l != nil && released != nil && released.Holds(*l) {
		rep.Status.Lock = nil // the cluster as the run leaves it: unlocked
	}
	if again, err := plan(ctx, env, cfg, obs, command); err == nil && again.plan.Mutations() > 0 {
		var left []string
		for _, s := range again.plan.Steps {
			if s.Mutating {
				left = append(left, s.Action+" "+s.Resource)
			}
		}
		return fmt.Errorf("verify: the cluster has not converged; still to do: %v (re-run to finish)", left)
	}
	return nil
}

// needsEtcd reports whether the flow changes etcd's membership.
func needsEtcd(cfg *config.Config, command string, obs *Observed) bool {
	if len(obs.Masters) == 0 {
		return false
	}
	switch command {
	case "up":
		return cfg.ReplicateMaster
	case "down":
		return cfg.Replica != "" || !cfg.DeleteNodes || (cfg.Zone != "" && !cfg.UseExistingMaster && len(obs.MasterIn(cfg.Zone)) < len(obs.Masters))
	}
	return false
}

// readEtcd reads etcd's membership into obs, first adding hakube's SSH key
// to the running masters that lack it (not in a dry run, which changes
// nothing: its plan then says the membership is not known yet).
func readEtcd(ctx context.Context, env *Env, obs *Observed, dryRun bool) ([]string, error) {
	if env.SSH.Signer == nil {
		obs.Etcd = &membership{err: errors.New("hakube has no SSH key to reach the masters with")}
		return nil, nil
	}
	var warnings []string
	if dryRun {
		if len(mastersWithoutKey(env, obs)) > 0 {
			obs.Etcd = &membership{unknown: true, err: errors.New("hakube's SSH key is not on the masters yet (the run adds it)")}
			return nil, nil
		}
	} else {
		added, err := sshAccess(ctx, env, obs)
		if len(added) > 0 {
			warnings = append(warnings, fmt.Sprintf("added hakube's SSH key (%s) to the ssh-keys metadata of %v, to reach etcd there", env.SSHUser, added))
		}
		if err != nil {
			return warnings, err
		}
	}
	obs.Etcd = observeEtcd(ctx, env, obs)
	return warnings, nil
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
	if err := env.Cloud.ClearStaleLock(ctx, p.addressKey(), held); err != nil {
		return []string{fmt.Sprintf("could not clear the lock left by %s: %v; the next run may need --break-lock", held, err)}
	}
	if req.Gone(held) {
		return []string{fmt.Sprintf("cleared the cluster lock left by %s, a run that is gone", held)}
	}
	return []string{fmt.Sprintf("cleared the cluster lock of %s (--break-lock)", held)}
}

// plan builds and checks the plan of a command on what was observed.
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
