package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/lb"
	"github.com/hakube/hakube/internal/zones"
)

// Flows.
const (
	FlowFreshUp       = "create cluster"
	FlowNodePool      = "add node pool"
	FlowReplica       = "add master replica"
	FlowRemoveReplica = "remove master replica"
	FlowRemovePool    = "remove node pool"
	FlowRemoveZone    = "remove zone"
	FlowTeardown      = "tear down cluster"
)

// ErrRefused marks a request hakube will not carry out as given (the
// cluster is in a state that makes it unsafe or ambiguous); nothing was
// changed. The CLI exits 2.
var ErrRefused = errors.New("refused")

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// planner builds a plan whose steps close over shared run state.
type planner struct {
	env  *Env
	cfg  *config.Config
	obs  *Observed
	plan *Plan

	lockID string
	// Run state, written by earlier steps and read by later ones (the
	// executor orders them).
	mu       sync.Mutex
	ip       string // the static IP
	certs    string // kube-master-certs of the masters
	ca       []byte
	lock     *gce.Lock
	moves    []lb.Move
	lbMode   string
	warnings []string

	// pre is what the plan creates from settings, checked before it runs.
	pre preflight
}

// observedLock is the lock on the static IP as observed before planning.
func (p *planner) observedLock() gce.LockInfo {
	if p.obs.Address == nil {
		return gce.LockInfo{}
	}
	return gce.LockInfoOf(p.obs.Address.Labels)
}

func newPlanner(env *Env, cfg *config.Config, obs *Observed, flow string) *planner {
	p := &planner{env: env, cfg: cfg, obs: obs, plan: &Plan{Flow: flow, Cluster: cfg.ClusterName(), Project: cfg.Project, Region: obs.Region}}
	if cfg.Zone != "" {
		p.plan.Zone = cfg.Zone
	}
	if obs.Address != nil {
		p.ip = obs.Address.Address
		p.lbMode = obs.Address.Labels[labelMode]
	}
	for _, m := range obs.Masters {
		if v := metadataValue(m, MetaMasterCerts); v != "" {
			p.certs = v
			p.ca, _ = caFromMetadata(v)
			break
		}
	}
	return p
}

// labelMode on the static IP records how the cluster fronts its API.
const (
	labelMode    = "hakube-mode"
	modeLBFirst  = "lb-first"
	modeStandard = "standard"
)

func (p *planner) region() string {
	if p.obs.Region != "" {
		return p.obs.Region
	}
	return p.cfg.Region()
}

func (p *planner) lbFirst() bool {
	if p.lbMode != "" {
		return p.lbMode == modeLBFirst
	}
	return p.cfg.LBFirst
}

// step adds a mutating step that also waits for the lock.
func (p *planner) step(action, resource, reason string, run func(ctx context.Context) error, deps ...string) string {
	if p.lockID != "" {
		deps = append([]string{p.lockID}, deps...)
	}
	return p.plan.add(&Step{Action: action, Resource: resource, Reason: reason, DependsOn: compact(deps), Run: run, Mutating: true})
}

func compact(ids []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// addLock adds the lock step. With create, the static IP is reserved first
// (a fresh cluster): the address both holds the API's IP and the lock.
func (p *planner) addLock(create bool) {
	name := p.cfg.StaticIPName()
	res := fmt.Sprintf("address %s (%s)", name, p.region())
	action, reason := ActLock, "hold the cluster lock (labels on the static IP) so no other run changes the cluster meanwhile"
	if create {
		action, reason = ActCreate, "reserve the static IP the API will live on; it also holds the cluster lock"
	}
	if p.obs.Address == nil && !create {
		p.plan.Notes = append(p.plan.Notes, "the cluster has no static IP left to hold the lock; running unlocked")
		return
	}
	p.lockID = p.plan.add(&Step{Action: action, Resource: res, Reason: reason, Run: func(ctx context.Context) error {
		return p.takeLock(ctx, create)
	}, Mutating: create})
}

func (p *planner) takeLock(ctx context.Context, create bool) error {
	c := p.env.Cloud
	region, name := p.region(), p.cfg.StaticIPName()
	if create && p.obs.Address == nil {
		addr := &compute.Address{Name: name, Description: gce.Description(p.cfg.ClusterName(), gce.RoleStaticIP, "the Kubernetes API's IP")}
		err := c.InsertAddress(ctx, region, addr)
		if err != nil && !gce.IsAlreadyExists(err) {
			return fmt.Errorf("reserve static IP %s: %w", name, err)
		}
	}
	a, err := c.GetAddress(ctx, region, name)
	if err != nil {
		return fmt.Errorf("read static IP %s: %w", name, err)
	}
	if !gce.Owned(p.cfg.ClusterName(), a.Labels, a.Description) {
		return refuse("address %s in %s exists but does not belong to cluster %q; choose another --prefix", name, region, p.cfg.ClusterName())
	}
	if a.Labels[gce.LabelCluster] != p.cfg.ClusterName() || a.Labels[labelMode] == "" {
		// GCE ignores labels given when an address is reserved.
		labels := gce.Labels(p.cfg.ClusterName(), gce.RoleStaticIP)
		for k, v := range a.Labels {
			labels[k] = v
		}
		mode := modeStandard
		if p.cfg.LBFirst {
			mode = modeLBFirst
		}
		if labels[labelMode] == "" {
			labels[labelMode] = mode
		}
		if err := c.SetAddressLabels(ctx, region, name, labels, a.LabelFingerprint); err != nil && !gce.IsPrecondition(err) {
			return fmt.Errorf("label static IP %s: %w", name, err)
		}
		if a, err = c.GetAddress(ctx, region, name); err != nil {
			return fmt.Errorf("read static IP %s: %w", name, err)
		}
	}
	lock, err := c.AcquireLock(ctx, region, name, p.env.lockRequest(p.plan.Flow, p.observedLock()))
	if err != nil {
		return err
	}
	p.mu.Lock()
	if r := lock.Replaced; r != nil {
		how := "that run is gone (its process no longer runs here)"
		if p.env.BreakLock && r.Holder != gce.LabelValue(p.env.Holder) {
			how = "broken with --break-lock"
		}
		p.warnings = append(p.warnings, fmt.Sprintf("took over the cluster lock from %s: %s", r, how))
	}
	p.lock = lock
	p.ip = a.Address
	p.lbMode = a.Labels[labelMode]
	if p.lbMode == "" {
		p.lbMode = modeStandard
		if p.cfg.LBFirst {
			p.lbMode = modeLBFirst
		}
	}
	p.mu.Unlock()
	return nil
}

func (p *planner) staticIP() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ip
}

// finish drops the lock step when nothing changes: a run with nothing to do
// makes no mutation at all, not even lock labels.
func (p *planner) finish() *Plan {
	if p.lockID != "" && p.plan.Mutations() == 0 {
		var steps []*Step
		for _, s := range p.plan.Steps {
			if s.ID == p.lockID {
				continue
			}
			var deps []string
			for _, d := range s.DependsOn {
				if d != p.lockID {
					deps = append(deps, d)
				}
			}
			s.DependsOn = deps
			steps = append(steps, s)
		}
		p.plan.Steps = steps
		p.lockID = ""
	}
	return p.plan
}

// lbSpec describes the load balancer for a step's Run; its progress lines
// go to that step (ctx carries its id).
func (p *planner) lbSpec(ctx context.Context) *lb.Spec {
	return &lb.Spec{
		Cluster:     p.cfg.ClusterName(),
		Region:      p.region(),
		Address:     p.cfg.StaticIPName(),
		IP:          p.staticIP(),
		Pool:        p.cfg.TargetPoolName(),
		Rule:        p.cfg.ForwardingRuleName(),
		HealthCheck: p.cfg.HealthCheckName(),
		APIPort:     p.cfg.APIServerPort,
		HealthPort:  p.cfg.HealthCheckPort,
		Deadline:    p.env.APIDeadline,
		MaxDowntime: p.cfg.MaxDowntime,
		Prober:      p.env.prober(p.cfg, p.caPEM()),
		Progress:    func(msg string) { p.env.progress(ctx, "%s", msg) },
	}
}

func (p *planner) caPEM() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ca
}

// record keeps an IP move's measurement for the report.
func (p *planner) record(mv lb.Move) {
	p.mu.Lock()
	p.moves = append(p.moves, mv)
	p.mu.Unlock()
}

// --- shared steps ---

// ensureNetworkAndFirewalls adds the network (if missing) and the missing
// firewall rules; it returns the step ids later steps wait for.
func (p *planner) ensureNetworkAndFirewalls() (network string, fws []string) {
	if p.obs.Network == nil {
		name := p.cfg.Network
		network = p.step(ActCreate, "network "+name, "the cluster's VPC does not exist yet (auto mode, as kube-up creates it)",
			func(ctx context.Context) error {
				err := p.env.Cloud.InsertAutoNetwork(ctx, name, gce.Description(p.cfg.ClusterName(), gce.RoleNetwork, "created for the cluster"))
				if err != nil && !gce.IsAlreadyExists(err) {
					return fmt.Errorf("create network %s: %w", name, err)
				}
				return nil
			})
	}
	for _, fw := range firewalls(p.cfg) {
		if _, ok := p.obs.Firewalls[fw.Name]; ok {
			continue
		}
		fw := fw
		fws = append(fws, p.step(ActCreate, "firewall "+fw.Name, "kube-up's rule: "+strings.TrimPrefix(fw.Description, gce.Marker(p.cfg.ClusterName(), gce.RoleFirewall)+": "),
			func(ctx context.Context) error {
				err := p.env.Cloud.InsertFirewall(ctx, fw)
				if gce.IsAlreadyExists(err) {
					return p.adoptFirewall(ctx, fw.Name)
				}
				return wrap(err, "create firewall %s", fw.Name)
			}, network))
	}
	return network, fws
}

// adoptFirewall accepts a firewall that appeared meanwhile only when it is
// the cluster's (a concurrent or earlier run made it) or the shared SSH rule.
func (p *planner) adoptFirewall(ctx context.Context, name string) error {
	fws, err := p.env.Cloud.ListFirewalls(ctx, fmt.Sprintf("name = %q", name))
	if err != nil {
		return wrap(err, "read firewall %s", name)
	}
	for _, fw := range fws {
		if gce.OwnedByDescription(p.cfg.ClusterName(), fw.Description) || name == p.cfg.SSHFirewallName() {
			return nil
		}
	}
	return refuse("firewall %s exists but does not belong to cluster %q", name, p.cfg.ClusterName())
}

// ensureTemplate adds the node template if missing.
func (p *planner) ensureTemplate(network string) string {
	if p.obs.Template != nil {
		return ""
	}
	name := p.cfg.NodeTemplateName()
	p.pre.needDiskType("nodeDiskType", p.cfg.Zone)
	p.pre.image = true
	return p.step(ActCreate, "instance-template "+name, "nodes of every zone are made from it (global, shared by all pools)",
		func(ctx context.Context) error {
			err := p.env.Cloud.InsertInstanceTemplate(ctx, nodeTemplate(p.cfg, p.staticIP()))
			if gce.IsAlreadyExists(err) {
				t, gerr := p.env.Cloud.GetInstanceTemplate(ctx, name)
				if gerr == nil && gce.OwnedByDescription(p.cfg.ClusterName(), t.Description) {
					return nil
				}
				return refuse("instance template %s exists but does not belong to cluster %q", name, p.cfg.ClusterName())
			}
			return wrap(err, "create instance template %s", name)
		}, network)
}

// ensurePool adds the zone's node pool (MIG), resizes it to the requested
// size, and waits until it is stable.
func (p *planner) ensurePool(zone, template string) {
	name := p.cfg.NodeGroupName()
	res := fmt.Sprintf("instance-group %s (%s)", name, zone)
	var dep string
	switch m := p.obs.MIGs[zone]; {
	case m == nil:
		p.pre.needVMs("nodeSize", zone, p.cfg.NumNodes)
		p.pre.needMachineType("nodeSize", zone)
		p.pre.needDiskType("nodeDiskType", zone)
		dep = p.step(ActCreate, res, fmt.Sprintf("the node pool of %s: %d nodes", zone, p.cfg.NumNodes), func(ctx context.Context) error {
			t, err := p.env.Cloud.GetInstanceTemplate(ctx, p.cfg.NodeTemplateName())
			if err != nil {
				return wrap(err, "read instance template %s", p.cfg.NodeTemplateName())
			}
			err = p.env.Cloud.InsertMIG(ctx, zone, nodeGroup(p.cfg, t.SelfLink))
			if gce.IsAlreadyExists(err) {
				return nil
			}
			return wrap(err, "create node pool %s in %s", name, zone)
		}, template)
	case m.TargetSize != int64(p.cfg.NumNodes) && p.cfg.NumNodesSet():
		p.pre.needVMs("nodeSize", zone, p.cfg.NumNodes-int(m.TargetSize))
		dep = p.step(ActUpdate, res, fmt.Sprintf("resize from %d to %d nodes", m.TargetSize, p.cfg.NumNodes), func(ctx context.Context) error {
			return wrap(p.env.Cloud.ResizeMIG(ctx, zone, name, int64(p.cfg.NumNodes)), "resize node pool %s in %s", name, zone)
		})
	}
	if m := p.obs.MIGs[zone]; m == nil || dep != "" || m.Status == nil || !m.Status.IsStable {
		id := "wait stable " + res
		p.plan.add(&Step{ID: id, Action: ActWait, Resource: res, Reason: "until every node VM is running (gcloud's wait-until-stable)",
			DependsOn: compact([]string{dep}), Run: func(ctx context.Context) error {
				return p.env.waitMIGStable(ctx, zone, name)
			}})
	}
}

// healthCheckStep adds the step that creates the masters' health check, or
// brings an existing one (an older hakube's, kube-up's) to the parameters
// that take a halted master out of rotation quickly; "" when it is current.
func (p *planner) healthCheckStep(reason string) string {
	res := "http-health-check " + p.cfg.HealthCheckName()
	run := func(ctx context.Context) error { return lb.EnsureHealthCheck(ctx, p.env.Cloud, p.lbSpec(ctx)) }
	if hc := p.obs.HealthCheck; hc != nil {
		changes := lb.HealthCheckChanges(hc, p.cfg.HealthCheckPort)
		if len(changes) == 0 {
			return ""
		}
		return p.step(ActUpdate, res, strings.Join(changes, ", ")+": a halted master leaves the rotation within about a second", run)
	}
	return p.step(ActCreate, res, reason, run)
}

// verifyAPI adds the final check that the API serves on the static IP.
func (p *planner) verifyAPI(reason string, deps ...string) string {
	id := "verify https://" + p.cfg.StaticIPName()
	return p.plan.add(&Step{ID: id, Action: ActWait, Resource: "api https://" + p.cfg.StaticIPName() + ":" + fmt.Sprint(p.cfg.APIServerPort),
		Reason: reason, DependsOn: compact(deps), Run: func(ctx context.Context) error {
			ip := p.staticIP()
			if ip == "" {
				return errors.New("the static IP is unknown")
			}
			ca := p.caPEM()
			if ca == nil {
				return errors.New("the cluster CA is unknown: no master carries kube-master-certs")
			}
			_, err := p.env.prober(p.cfg, ca).WaitServing(ctx, ip, p.env.APIDeadline, func(el time.Duration) {
				p.env.progress(ctx, "waiting for https://%s:%d/healthz: %s elapsed of %s", ip, p.cfg.APIServerPort, el.Round(time.Second), p.env.APIDeadline)
			})
			return err
		}})
}

// healthyMaster picks the master to clone from: RUNNING, carrying kube-env,
// first by name; never one of exclude.
func (p *planner) healthyMaster(exclude ...string) *compute.Instance {
	for _, m := range p.obs.Masters {
		if running(m) && metadataValue(m, MetaKubeEnv) != "" && !contains(exclude, m.Name) {
			return m
		}
	}
	return nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// masterNames returns the names of the observed masters.
func (p *planner) masterNames() []string {
	var out []string
	for _, m := range p.obs.Masters {
		out = append(out, m.Name)
	}
	return out
}

// regionCheck refuses a zone outside the cluster's region before anything
// changes, listing the zones that would work.
func (p *planner) regionCheck(ctx context.Context) error {
	return regionCheck(ctx, p.env, p.cfg, p.obs)
}

func regionCheck(ctx context.Context, env *Env, cfg *config.Config, obs *Observed) error {
	if obs.Region == "" || cfg.Zone == "" || zones.Region(cfg.Zone) == obs.Region {
		return nil
	}
	hint := ""
	if r, err := env.Cloud.GetRegion(ctx, obs.Region); err == nil {
		var zs []string
		for _, z := range r.Zones {
			zs = append(zs, gce.LastSegment(z))
		}
		sort.Strings(zs)
		hint = " (" + strings.Join(zs, ", ") + ")"
	}
	return fmt.Errorf("%w: zone %s is in region %s, but cluster %q is in region %s; pick a zone of %s%s",
		config.ErrInvalidConfig, cfg.Zone, zones.Region(cfg.Zone), cfg.ClusterName(), obs.Region, obs.Region, hint)
}

func (p *planner) conflicts() error {
	if len(p.obs.Conflicts) == 0 {
		return nil
	}
	return refuse("names cluster %q needs are taken by resources hakube does not own:\n  - %s\nchoose another --prefix (KUBE_GCE_INSTANCE_PREFIX)",
		p.cfg.ClusterName(), strings.Join(p.obs.Conflicts, "\n  - "))
}
