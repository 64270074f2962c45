// Package lb owns the masters' load balancer — a legacy HTTP health check, a
// target pool holding the master replicas and a forwarding rule on the
// cluster's static IP — and the dangerous step of moving that IP between the
// first master VM and the forwarding rule. Everything reversible happens
// before the move, or beside its first call (the pool, which the rule's
// insert waits for); the move itself is kept to "delete the static access
// config → insert the forwarding rule", measured, and reverted when it takes
// longer than allowed or the pool fails.
package lb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/gce"
)

// Cloud is what the load balancer needs from GCE (gce.Cloud implements it).
type Cloud interface {
	GetHTTPHealthCheck(ctx context.Context, k gce.Key) (*compute.HttpHealthCheck, error)
	InsertHTTPHealthCheck(ctx context.Context, k gce.Key, hc *compute.HttpHealthCheck) error
	PatchHTTPHealthCheck(ctx context.Context, k gce.Key, hc *compute.HttpHealthCheck) error
	DeleteHTTPHealthCheck(ctx context.Context, k gce.Key) error
	GetTargetPool(ctx context.Context, k gce.Key) (*compute.TargetPool, error)
	InsertTargetPool(ctx context.Context, k gce.Key, tp *compute.TargetPool) error
	DeleteTargetPool(ctx context.Context, k gce.Key) error
	AddTargetPoolInstances(ctx context.Context, pool gce.Key, instances ...string) error
	RemoveTargetPoolInstances(ctx context.Context, pool gce.Key, instances ...string) error
	GetForwardingRule(ctx context.Context, k gce.Key) (*compute.ForwardingRule, error)
	InsertForwardingRule(ctx context.Context, k gce.Key, fr *compute.ForwardingRule) error
	DeleteForwardingRule(ctx context.Context, k gce.Key) error
	SetForwardingRuleLabels(ctx context.Context, k gce.Key, labels map[string]string, fingerprint string) error
	GetInstance(ctx context.Context, k gce.Key) (*compute.Instance, error)
	AddAccessConfig(ctx context.Context, instance gce.Key, name, natIP string) error
	DeleteAccessConfig(ctx context.Context, instance gce.Key, name string) error
	GetAddress(ctx context.Context, k gce.Key) (*compute.Address, error)
}

// AccessConfigName is the name hakube gives every access config (GCE's own
// default, sent explicitly).
const AccessConfigName = "external-nat"

// Spec names the load balancer of one cluster.
type Spec struct {
	Cluster     string
	Address     gce.Key // the static address (regional)
	IP          string  // its IP
	Pool        gce.Key // the target pool (regional)
	Rule        gce.Key // the forwarding rule (regional)
	HealthCheck gce.Key // the legacy HTTP health check (global; no Name: none)
	// LinkPrefix is the project's part of an observed selfLink
	// (gce.ProjectPrefix): with it the pool, check and masters are named
	// by the links GCE gives them, without reading them back first. ""
	// reads them.
	LinkPrefix string
	APIPort    int
	HealthPort int
	// Deadline bounds the wait for the IP to serve after a move (kube-up: 30 min).
	Deadline time.Duration
	// MaxDowntime reverts a move whose outage exceeds it (0: never revert).
	MaxDowntime time.Duration
	// PoolReady, when set, waits until the target pool exists and holds
	// the masters, made meanwhile by someone else: Promote detaches the IP
	// while it waits and inserts the rule once it returns; its error
	// reverts the move. nil: the pool is ready already.
	PoolReady func(ctx context.Context) error
	Prober    *Prober
	// Progress receives human progress lines during long waits.
	Progress func(msg string)
}

func (s *Spec) progress(format string, args ...any) {
	if s.Progress != nil {
		s.Progress(fmt.Sprintf(format, args...))
	}
}

// Master is one master VM as the load balancer sees it.
type Master struct {
	gce.Key        // zonal
	Link    string // selfLink
}

// MasterOf makes a Master from an instance.
func MasterOf(in *compute.Instance) Master {
	return Master{Key: gce.KeyOf(in.SelfLink), Link: in.SelfLink}
}

// The masters' health check. A halted replica keeps its share of
// connections until the check marks it down, after unhealthyThreshold
// failed probes checkIntervalSec apart: with three replicas it costs a third
// of the traffic for that long. GCE's defaults (5 s, 2) lose 3–6% of a
// minute; probing every second (the shortest interval GCE allows, with the
// longest timeout it allows for it) and dropping a member at its first
// failure keeps the loss under 1%. A member that fails one probe by
// accident is back after healthyThreshold passes (2 s), and the others
// serve meanwhile (with none healthy GCE sends to all).
const (
	healthInterval  = 1 // checkIntervalSec: GCE allows 1–300
	healthTimeout   = 1 // timeoutSec: at most the interval
	healthyAfter    = 2 // healthyThreshold: 1–10
	unhealthyAfter  = 1 // unhealthyThreshold: 1–10
	healthCheckPath = "/healthz"
)

// healthCheck is the legacy HTTP health check hakube wants.
func healthCheck(s *Spec) *compute.HttpHealthCheck {
	return &compute.HttpHealthCheck{
		Name:               s.HealthCheck.Name,
		Description:        gce.Description(s.Cluster, gce.RoleHealthCheck, "apiserver /healthz of the masters"),
		Port:               int64(s.HealthPort),
		RequestPath:        healthCheckPath,
		CheckIntervalSec:   healthInterval,
		TimeoutSec:         healthTimeout,
		HealthyThreshold:   healthyAfter,
		UnhealthyThreshold: unhealthyAfter,
	}
}

// HealthCheckChanges lists how an existing check differs from the one
// hakube wants on port ("checkIntervalSec 5 → 1"); none means it is current.
// Clusters made by older versions or by kube-up have GCE's defaults.
func HealthCheckChanges(hc *compute.HttpHealthCheck, port int) []string {
	want := healthCheck(&Spec{HealthPort: port})
	var out []string
	for _, f := range []struct {
		name       string
		have, want any
	}{
		{"port", hc.Port, want.Port},
		{"requestPath", hc.RequestPath, want.RequestPath},
		{"checkIntervalSec", hc.CheckIntervalSec, want.CheckIntervalSec},
		{"timeoutSec", hc.TimeoutSec, want.TimeoutSec},
		{"healthyThreshold", hc.HealthyThreshold, want.HealthyThreshold},
		{"unhealthyThreshold", hc.UnhealthyThreshold, want.UnhealthyThreshold},
	} {
		if f.have != f.want {
			out = append(out, fmt.Sprintf("%s %v → %v", f.name, f.have, f.want))
		}
	}
	return out
}

// CreateHealthCheck makes the health check the observation found missing;
// one that appeared since is brought to hakube's parameters as
// EnsureHealthCheck does.
func CreateHealthCheck(ctx context.Context, c Cloud, s *Spec) error {
	err := c.InsertHTTPHealthCheck(ctx, s.HealthCheck, healthCheck(s))
	if gce.IsAlreadyExists(err) {
		return EnsureHealthCheck(ctx, c, s)
	}
	return wrapf(err, "create health check %s", s.HealthCheck)
}

func wrapf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// EnsureHealthCheck creates the legacy HTTP health check on the masters'
// health port if it is missing, and brings an existing one of the cluster's
// to the parameters hakube wants.
func EnsureHealthCheck(ctx context.Context, c Cloud, s *Spec) error {
	want := healthCheck(s)
	hc, err := c.GetHTTPHealthCheck(ctx, s.HealthCheck)
	switch {
	case gce.IsNotFound(err):
		if err := c.InsertHTTPHealthCheck(ctx, s.HealthCheck, want); err != nil && !gce.IsAlreadyExists(err) {
			return fmt.Errorf("create health check %s: %w", s.HealthCheck, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("read health check %s: %w", s.HealthCheck, err)
	}
	changes := HealthCheckChanges(hc, s.HealthPort)
	if len(changes) == 0 {
		return nil
	}
	if !gce.OwnedByDescription(s.Cluster, hc.Description) {
		return fmt.Errorf("health check %s is not cluster %q's; not changing it (%s)", s.HealthCheck, s.Cluster, strings.Join(changes, ", "))
	}
	want.Description = hc.Description
	if err := c.PatchHTTPHealthCheck(ctx, s.HealthCheck, want); err != nil {
		return fmt.Errorf("update health check %s (%s): %w", s.HealthCheck, strings.Join(changes, ", "), err)
	}
	return nil
}

// EnsurePool creates the target pool with the health check and the given
// masters, or adds the masters that are missing from an existing pool.
func EnsurePool(ctx context.Context, c Cloud, s *Spec, masters []Master) error {
	tp, err := c.GetTargetPool(ctx, s.Pool)
	if gce.IsNotFound(err) {
		return CreatePool(ctx, c, s, masters)
	}
	if err != nil {
		return fmt.Errorf("read target pool %s: %w", s.Pool, err)
	}
	return addMissing(ctx, c, s, tp, masters)
}

// CreatePool makes the target pool the observation found missing, holding
// the masters: GCE's DONE insert is the proof it does, so it is not read
// back. A pool that appeared since gets the masters it lacks.
func CreatePool(ctx context.Context, c Cloud, s *Spec, masters []Master) error {
	tp := &compute.TargetPool{
		Name:            s.Pool.Name,
		Description:     gce.Description(s.Cluster, gce.RoleTargetPool, "master replicas"),
		SessionAffinity: "NONE",
	}
	if s.HealthCheck.Name != "" {
		link := s.HealthCheck.Link(s.LinkPrefix, "httpHealthChecks")
		if link == "" {
			hc, err := c.GetHTTPHealthCheck(ctx, s.HealthCheck)
			if err != nil {
				return fmt.Errorf("read health check %s: %w", s.HealthCheck, err)
			}
			link = hc.SelfLink
		}
		tp.HealthChecks = []string{link}
	}
	for _, m := range masters {
		tp.Instances = append(tp.Instances, m.Link)
	}
	err := c.InsertTargetPool(ctx, s.Pool, tp)
	if !gce.IsAlreadyExists(err) {
		return wrapf(err, "create target pool %s", s.Pool)
	}
	got, err := c.GetTargetPool(ctx, s.Pool)
	if err != nil {
		return fmt.Errorf("read target pool %s: %w", s.Pool, err)
	}
	return addMissing(ctx, c, s, got, masters)
}

// holds reports whether the pool lists the master. Members are compared by
// what they name: a link the flow built and GCE's own may differ in host.
func holds(tp *compute.TargetPool, m Master) bool {
	return slices.ContainsFunc(tp.Instances, func(link string) bool { return gce.KeyOf(link) == m.Key })
}

func addMissing(ctx context.Context, c Cloud, s *Spec, tp *compute.TargetPool, masters []Master) error {
	var missing []string
	for _, m := range masters {
		if !holds(tp, m) {
			missing = append(missing, m.Link)
		}
	}
	if len(missing) > 0 {
		if err := c.AddTargetPoolInstances(ctx, s.Pool, missing...); err != nil {
			return fmt.Errorf("add masters to target pool %s: %w", s.Pool, err)
		}
	}
	return nil
}

// JoinPool adds a master to the pool that exists under the run's lock,
// as observed (tp) or made by this run without it (tp nil): nothing when
// tp holds it, else addInstance without reading the pool first. If GCE
// refuses (a member it already holds, say), the pool is read and only
// what it lacks is added.
func JoinPool(ctx context.Context, c Cloud, s *Spec, tp *compute.TargetPool, m Master) error {
	if tp != nil && holds(tp, m) {
		return nil
	}
	err := c.AddTargetPoolInstances(ctx, s.Pool, m.Link)
	if err == nil || !(gce.IsBadRequest(err) || gce.IsAlreadyExists(err)) {
		return wrapf(err, "add %s to target pool %s", m.Name, s.Pool)
	}
	return EnsurePool(ctx, c, s, []Master{m})
}

// RemoveFromPool takes a master out of the pool if it is in it.
func RemoveFromPool(ctx context.Context, c Cloud, s *Spec, m Master) error {
	tp, err := c.GetTargetPool(ctx, s.Pool)
	if gce.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read target pool %s: %w", s.Pool, err)
	}
	if !holds(tp, m) {
		return nil
	}
	if err := c.RemoveTargetPoolInstances(ctx, s.Pool, m.Link); err != nil {
		return fmt.Errorf("remove %s from target pool %s: %w", m.Name, s.Pool, err)
	}
	return nil
}

// Owner says who holds the static IP now.
type Owner struct {
	Kind     string // "master", "forwarding-rule" or "none"
	Instance string // the master holding it, when Kind is "master"
}

// Owners of the static IP.
const (
	OwnerMaster = "master"
	OwnerLB     = "forwarding-rule"
	OwnerNone   = "none"
)

// IPOwner works out who holds the IP from the address's users.
func IPOwner(addr *compute.Address) Owner {
	if addr == nil {
		return Owner{Kind: OwnerNone}
	}
	for _, u := range addr.Users {
		switch {
		case strings.Contains(u, "/forwardingRules/"):
			return Owner{Kind: OwnerLB}
		case strings.Contains(u, "/instances/"):
			return Owner{Kind: OwnerMaster, Instance: gce.KeyOf(u).Name}
		}
	}
	return Owner{Kind: OwnerNone}
}

// Move is the outcome of an IP move.
type Move struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Outage is how long the static IP did not answer, as Measured says.
	Outage   time.Duration `json:"outageNs"`
	Measured string        `json:"measured,omitempty"`
	Reverted bool          `json:"reverted"`
}

// measure records the watch's outage on the move.
func (mv *Move) measure(w *outageWatch) {
	d, note := w.outage()
	mv.Outage, mv.Measured = d, Measured
	if note != "" {
		mv.Measured += "; " + note
	}
}

// ErrReverted means a move was rolled back: it exceeded MaxDowntime, or
// the target pool it waited for did not come.
var ErrReverted = errors.New("IP move reverted")

// poolError is PoolReady's failure, which reverts the move.
type poolError struct{ err error }

func (e *poolError) Error() string { return e.err.Error() }
func (e *poolError) Unwrap() error { return e.err }

// externalIP returns the instance's access config on nic0, if any.
func externalIP(in *compute.Instance) *compute.AccessConfig {
	if len(in.NetworkInterfaces) == 0 || len(in.NetworkInterfaces[0].AccessConfigs) == 0 {
		return nil
	}
	return in.NetworkInterfaces[0].AccessConfigs[0]
}

// Promote moves the static IP from the master to a forwarding rule in front
// of the target pool. The pool must exist (EnsurePool), or be on its way
// (Spec.PoolReady). It resumes from any point: IP still on the master, on
// nobody, or already on the rule.
func Promote(ctx context.Context, c Cloud, s *Spec, m Master) (Move, error) {
	mv := Move{From: "instance " + m.Name, To: "forwarding rule " + s.Rule.Name}
	addr, err := c.GetAddress(ctx, s.Address)
	if err != nil {
		return mv, fmt.Errorf("read address %s: %w", s.Address, err)
	}
	owner := IPOwner(addr)
	in, err := c.GetInstance(ctx, m.Key)
	if err != nil {
		return mv, fmt.Errorf("read master %s: %w", m.Name, err)
	}
	switch owner.Kind {
	case OwnerLB:
		mv.From = "forwarding rule " + s.Rule.Name
		// Already moved; make sure the old master has an IP of its own.
		if externalIP(in) == nil {
			if err := attach(ctx, c, m, ""); err != nil {
				return mv, fmt.Errorf("give %s an ephemeral IP: %w", m.Name, err)
			}
		}
		if _, err := s.Prober.WaitServing(ctx, s.IP, s.Deadline, s.waitProgress("load balancer")); err != nil {
			return mv, err
		}
		return mv, nil
	case OwnerMaster:
		if owner.Instance != m.Name {
			return mv, fmt.Errorf("static IP %s is on %s, not on %s", s.IP, owner.Instance, m.Name)
		}
	case OwnerNone:
		mv.From = "nobody (an earlier move was interrupted)"
	}
	// Clients see the outage from here on: the IP is probed as they would.
	start := time.Now()
	w := s.Prober.watch(ctx, s.IP)
	defer w.stop()
	ac := externalIP(in)
	if owner.Kind == OwnerMaster && ac != nil {
		// The outage starts here: the IP stops answering once this is done.
		if err := detach(ctx, c, m, ac.Name); err != nil {
			mv.measure(w)
			return mv, fmt.Errorf("detach static IP from %s: %w", m.Name, err)
		}
		ac = nil
	}
	if err := ruleAndEphemeral(ctx, c, s, m, ac); err != nil {
		var pe *poolError
		if !errors.As(err, &pe) || ctx.Err() != nil {
			mv.measure(w)
			return mv, err
		}
		s.progress("the target pool is not ready (%v): moving the IP back to %s", pe.err, m.Name)
		return mv, revert(ctx, c, s, m, w, &mv, err, fmt.Sprintf("the target pool %s is not ready", s.Pool))
	}
	deadline := s.Deadline
	if s.MaxDowntime > 0 {
		if left := s.MaxDowntime - time.Since(start); left < deadline {
			deadline = left
		}
	}
	if deadline <= 0 {
		deadline = time.Millisecond
	}
	err = w.waitServing(ctx, time.Now(), deadline, s.waitProgress("load balancer"))
	mv.measure(w)
	if err == nil {
		return mv, nil
	}
	if s.MaxDowntime == 0 || ctx.Err() != nil {
		return mv, err
	}
	s.progress("outage %s exceeded --max-downtime %s: moving the IP back to %s", mv.Outage.Round(time.Second), s.MaxDowntime, m.Name)
	return mv, revert(ctx, c, s, m, w, &mv, err, fmt.Sprintf("%s did not serve through the load balancer within --max-downtime %s", s.IP, s.MaxDowntime))
}

// revert gives the static IP back to the master after a move that could
// not finish (cause; why says it for the user). The move's watch goes on:
// the outage reported spans the revert.
func revert(ctx context.Context, c Cloud, s *Spec, m Master, w *outageWatch, mv *Move, cause error, why string) error {
	rerr := demote(ctx, c, s, m, w)
	mv.measure(w)
	if rerr != nil {
		return fmt.Errorf("revert after %s: %w (the move failed first: %v)", mv.Outage.Round(time.Second), rerr, cause)
	}
	mv.Reverted = true
	return fmt.Errorf("%w: %s; the IP is back on %s", ErrReverted, why, m.Name)
}

// ruleAndEphemeral inserts the forwarding rule on the static IP (once the
// pool is ready) and, in parallel, gives the old master an ephemeral IP of
// its own; ac is the master's access config as Promote last knew it. Each
// runs to its end whatever the other does, so that a revert finds the
// master as GCE has it.
func ruleAndEphemeral(ctx context.Context, c Cloud, s *Spec, m Master, ac *compute.AccessConfig) error {
	var ruleErr, ipErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if s.PoolReady != nil {
			if err := s.PoolReady(ctx); err != nil {
				ruleErr = &poolError{err}
				return
			}
		}
		ruleErr = insertRule(ctx, c, s)
	}()
	switch {
	case ac != nil && ac.NatIP != s.IP:
	case ac != nil:
		if err := detach(ctx, c, m, ac.Name); err != nil {
			ipErr = fmt.Errorf("detach static IP from %s: %w", m.Name, err)
			break
		}
		fallthrough
	default:
		if err := attach(ctx, c, m, ""); err != nil {
			ipErr = fmt.Errorf("give %s an ephemeral IP: %w", m.Name, err)
		}
	}
	wg.Wait()
	return errors.Join(ruleErr, ipErr)
}

func (s *Spec) waitProgress(via string) func(time.Duration) {
	return func(elapsed time.Duration) {
		s.progress("waiting for https://%s:%d to answer via the %s: %s elapsed of %s",
			s.IP, s.APIPort, via, elapsed.Round(time.Second), s.Deadline)
	}
}

// insertRule creates the forwarding rule on the static IP and labels it.
func insertRule(ctx context.Context, c Cloud, s *Spec) error {
	target := s.Pool.Link(s.LinkPrefix, "targetPools")
	if target == "" {
		tp, err := c.GetTargetPool(ctx, s.Pool)
		if err != nil {
			return fmt.Errorf("read target pool %s: %w", s.Pool, err)
		}
		target = tp.SelfLink
	}
	fr := &compute.ForwardingRule{
		Name:        s.Rule.Name,
		Description: gce.Description(s.Cluster, gce.RoleLB, "the masters' API on the cluster's static IP"),
		IPAddress:   s.IP,
		IPProtocol:  "TCP",
		PortRange:   strconv.Itoa(s.APIPort),
		Target:      target,
	}
	if err := c.InsertForwardingRule(ctx, s.Rule, fr); err != nil && !gce.IsAlreadyExists(err) {
		return fmt.Errorf("create forwarding rule %s: %w", s.Rule, err)
	}
	// GCE drops labels given at insert on forwarding rules. A stale
	// fingerprint (412: an earlier attempt's operation failed after the
	// fingerprint moved, or another writer) means read again and retry.
	for attempt := 1; ; attempt++ {
		got, err := c.GetForwardingRule(ctx, s.Rule)
		if err != nil {
			return fmt.Errorf("read forwarding rule %s: %w", s.Rule, err)
		}
		if got.Labels[gce.LabelCluster] == s.Cluster {
			return nil
		}
		err = c.SetForwardingRuleLabels(ctx, s.Rule, gce.Labels(s.Cluster, gce.RoleLB), got.LabelFingerprint)
		if err == nil {
			return nil
		}
		if !gce.IsPrecondition(err) || attempt == 5 {
			return fmt.Errorf("label forwarding rule %s: %w", s.Rule, err)
		}
	}
}

// EnsureRule creates the forwarding rule on the static IP when the IP is
// free (LB-first clusters never put it on a VM).
func EnsureRule(ctx context.Context, c Cloud, s *Spec) error { return insertRule(ctx, c, s) }

// Demote gives the static IP back to the master: the forwarding rule goes
// (in parallel with the master's ephemeral access config), then the master
// gets an access config with the static IP and the IP serves again. It
// resumes from any point.
func Demote(ctx context.Context, c Cloud, s *Spec, m Master) (Move, error) {
	mv := Move{From: "forwarding rule " + s.Rule.Name, To: "instance " + m.Name}
	// Probing starts before the rule's deletion, the first disruptive call.
	w := s.Prober.watch(ctx, s.IP)
	defer w.stop()
	err := demote(ctx, c, s, m, w)
	mv.measure(w)
	return mv, err
}

// demote is Demote's work, its outage observed by w (a revert of Promote
// passes the promotion's watch).
func demote(ctx context.Context, c Cloud, s *Spec, m Master, w *outageWatch) error {
	var ac *compute.AccessConfig // the master's, once the rule is gone
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := c.DeleteForwardingRule(gctx, s.Rule); err != nil {
			return fmt.Errorf("delete forwarding rule %s: %w", s.Rule, err)
		}
		return nil
	})
	g.Go(func() error {
		in, err := c.GetInstance(gctx, m.Key)
		if err != nil {
			return fmt.Errorf("read master %s: %w", m.Name, err)
		}
		if ac = externalIP(in); ac != nil && ac.NatIP != s.IP {
			if err := detach(gctx, c, m, ac.Name); err != nil {
				return fmt.Errorf("drop %s's ephemeral IP: %w", m.Name, err)
			}
			ac = nil
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	if ac == nil {
		if err := attachStatic(ctx, c, s, m); err != nil {
			return err
		}
	}
	return w.waitServing(ctx, time.Now(), s.Deadline, s.waitProgress("master "+m.Name))
}

// attachStatic gives the master the static IP. When GCE refuses because
// the master has an access config again (an earlier, interrupted run's
// ephemeral IP came back meanwhile), that one goes first.
//
// One read after a refusal tells the three cases apart (attach's own
// check would be a second): the static IP there already (an earlier
// attempt's), another access config, or none.
func attachStatic(ctx context.Context, c Cloud, s *Spec, m Master) error {
	err := c.AddAccessConfig(ctx, m.Key, AccessConfigName, s.IP)
	if err == nil || ctx.Err() != nil {
		return wrapf(err, "attach static IP %s to %s", s.IP, m.Name)
	}
	in, gerr := c.GetInstance(ctx, m.Key)
	if gerr != nil {
		return fmt.Errorf("attach static IP %s to %s: %w", s.IP, m.Name, err)
	}
	ac := externalIP(in)
	switch {
	case ac == nil:
		return fmt.Errorf("attach static IP %s to %s: %w", s.IP, m.Name, err)
	case ac.NatIP == s.IP:
		return nil
	}
	if err := detach(ctx, c, m, ac.Name); err != nil {
		return fmt.Errorf("drop %s's ephemeral IP: %w", m.Name, err)
	}
	return wrapf(attach(ctx, c, m, s.IP), "attach static IP %s to %s", s.IP, m.Name)
}

// Teardown deletes the pool and then the health check (the rule must be
// gone already). Missing pieces are fine.
func Teardown(ctx context.Context, c Cloud, s *Spec) error {
	if err := c.DeleteTargetPool(ctx, s.Pool); err != nil {
		return fmt.Errorf("delete target pool %s: %w", s.Pool, err)
	}
	if s.HealthCheck.Name != "" {
		if err := c.DeleteHTTPHealthCheck(ctx, s.HealthCheck); err != nil {
			return fmt.Errorf("delete health check %s: %w", s.HealthCheck, err)
		}
	}
	return nil
}

// detach removes the master's access config. An operation of an earlier,
// interrupted attempt may have removed it meanwhile: that is success.
func detach(ctx context.Context, c Cloud, m Master, name string) error {
	err := c.DeleteAccessConfig(ctx, m.Key, name)
	if err == nil || ctx.Err() != nil {
		return err
	}
	if in, gerr := c.GetInstance(ctx, m.Key); gerr == nil && externalIP(in) == nil {
		return nil
	}
	return err
}

// attach gives the master an access config (natIP "" for an ephemeral IP).
// If an earlier, interrupted attempt already did, that is success.
func attach(ctx context.Context, c Cloud, m Master, natIP string) error {
	err := c.AddAccessConfig(ctx, m.Key, AccessConfigName, natIP)
	if err == nil || ctx.Err() != nil {
		return err
	}
	if in, gerr := c.GetInstance(ctx, m.Key); gerr == nil {
		if ac := externalIP(in); ac != nil && (natIP == "" || ac.NatIP == natIP) {
			return nil
		}
	}
	return err
}
