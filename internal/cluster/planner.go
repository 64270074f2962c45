package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/lb"
	"github.com/hakube/hakube/internal/vmcontract"
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

// labelMode on the static IP records how the cluster fronts its API.
const (
	labelMode    = "hakube-mode"
	modeLBFirst  = "lb-first"
	modeStandard = "standard"
)

// run is what a plan's steps act with: the environment, the settings, the
// observation the plan was made from, and the state steps hand on. The
// step bodies are its methods (steps.go).
type run struct {
	env  *Env
	cfg  *config.Config
	obs  *Observed
	flow string
	st   *runState
	// grown are the groups the run creates or grows: the Nodes wait
	// counts their Nodes instead of a wait until each group is stable.
	grown []grownGroup
	// masterNodes are the only Nodes a replica's flow waits for: the
	// masters (nil: every VM's, listed from Compute).
	masterNodes []string
}

// grownGroup is a group the run creates or grows, and how many VMs it
// will hold.
type grownGroup struct {
	key    gce.Key
	target int
}

// planner decides: which steps a flow needs, why, and in what order. It
// never calls the API itself (preflight checks aside); its steps do.
type planner struct {
	*run
	plan   *Plan
	lockID string
	// pre is what the plan creates from settings, checked before it runs.
	pre preflight
}

func newPlanner(env *Env, cfg *config.Config, obs *Observed, flow string) *planner {
	r := &run{env: env, cfg: cfg, obs: obs, flow: flow, st: newRunState(obs)}
	p := &planner{run: r, plan: &Plan{Flow: flow, Cluster: cfg.ClusterName(), Project: cfg.Project, Region: obs.Region, Zone: cfg.Zone}}
	return p
}

func (r *run) region() string {
	if r.obs.Region != "" {
		return r.obs.Region
	}
	return r.cfg.Region()
}

// Keys of the cluster's regional and global resources.
func (r *run) addressKey() gce.Key                 { return gce.RegionalKey(r.region(), r.cfg.StaticIPName()) }
func (r *run) poolKey() gce.Key                    { return gce.RegionalKey(r.region(), r.cfg.TargetPoolName()) }
func (r *run) ruleKey() gce.Key                    { return gce.RegionalKey(r.region(), r.cfg.ForwardingRuleName()) }
func (r *run) healthCheckKey() gce.Key             { return gce.GlobalKey(r.cfg.HealthCheckName()) }
func (r *run) templateKey() gce.Key                { return gce.GlobalKey(r.cfg.NodeTemplateName()) }
func (r *run) masterKey(zone, name string) gce.Key { return gce.ZonalKey(zone, name) }
func (r *run) diskKey(zone, replica string) gce.Key {
	return gce.ZonalKey(zone, r.cfg.MasterDiskName(replica))
}

// lbFirst reports whether the static IP lives on the load balancer for good.
func (r *run) lbFirst() bool {
	if m := r.st.mode(); m != "" {
		return m == modeLBFirst
	}
	return r.cfg.LBFirst
}

// observedLock is the lock on the static IP as observed before planning.
func (r *run) observedLock() gce.LockInfo {
	if r.obs.Address == nil {
		return gce.LockInfo{}
	}
	return gce.LockInfoOf(r.obs.Address.Labels)
}

// text is a step's resource when it is more than one Ref.
type text string

func (t text) String() string { return string(t) }

// step adds a mutating step that also waits for the lock.
func (p *planner) step(action string, res fmt.Stringer, reason string, body func(ctx context.Context) error, deps ...string) string {
	if p.lockID != "" {
		deps = append([]string{p.lockID}, deps...)
	}
	return p.plan.add(&Step{Action: action, Resource: res.String(), Reason: reason, DependsOn: compact(deps), Run: body, Mutating: true})
}

// wait adds a step that changes nothing and waits for something to be so.
func (p *planner) wait(id string, res fmt.Stringer, reason string, body func(ctx context.Context) error, deps ...string) string {
	return p.plan.add(&Step{ID: id, Action: ActWait, Resource: res.String(), Reason: reason, DependsOn: compact(deps), Run: body})
}

func compact(ids []string) []string {
	var out []string
	for _, id := range ids {
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// addLock adds the lock step. With create, the static IP is reserved first
// (a fresh cluster): the address both holds the API's IP and the lock.
func (p *planner) addLock(create bool) {
	action, reason := ActLock, "hold the cluster lock (labels on the static IP) so no other run changes the cluster meanwhile"
	if create {
		action, reason = ActCreate, "reserve the static IP the API will live on; it also holds the cluster lock"
	}
	if p.obs.Address == nil && !create {
		p.plan.Notes = append(p.plan.Notes, "the cluster has no static IP left to hold the lock; running unlocked")
		return
	}
	p.lockID = p.plan.add(&Step{Action: action, Resource: gce.Address(p.addressKey()).String(), Reason: reason,
		Run: func(ctx context.Context) error { return p.takeLock(ctx, create) }, Mutating: create})
}

// finish drops the lock step when nothing changes: a run with nothing to do
// makes no mutation at all, not even lock labels.
func (p *planner) finish() *Plan {
	if p.lockID == "" || p.plan.Mutations() > 0 {
		return p.plan
	}
	steps := p.plan.Steps[:0]
	for _, s := range p.plan.Steps {
		if s.ID == p.lockID {
			continue
		}
		s.DependsOn = slices.DeleteFunc(s.DependsOn, func(d string) bool { return d == p.lockID })
		steps = append(steps, s)
	}
	p.plan.Steps = steps
	p.lockID = ""
	return p.plan
}

// --- shared decisions ---

// ensureNetworkAndFirewalls adds the network (if missing) and the missing
// firewall rules; it returns the step ids later steps wait for.
func (p *planner) ensureNetworkAndFirewalls() (network string, fws []string) {
	if p.obs.Network == nil {
		network = p.step(ActCreate, gce.Network(gce.GlobalKey(p.cfg.Network)), "the cluster's VPC does not exist yet (auto mode, as kube-up creates it)",
			p.createNetwork)
	}
	for _, fw := range firewalls(p.cfg) {
		if _, ok := p.obs.Firewalls[fw.Name]; ok {
			continue
		}
		why := strings.TrimPrefix(fw.Description, gce.Marker(p.cfg.ClusterName(), gce.RoleFirewall)+": ")
		fws = append(fws, p.step(ActCreate, gce.Firewall(gce.GlobalKey(fw.Name)), "kube-up's rule: "+why,
			func(ctx context.Context) error { return p.createFirewall(ctx, fw) }, network))
	}
	return network, fws
}

// ensureTemplate adds the node template if missing.
func (p *planner) ensureTemplate(deps ...string) string {
	if p.obs.Template != nil {
		return ""
	}
	p.pre.needDiskType("nodeDiskType", p.cfg.Zone)
	p.pre.image = true
	return p.step(ActCreate, gce.Template(p.templateKey()), "nodes of every zone are made from it (global, shared by all pools): the static IP, the CA's certificate and the bootstrap token",
		p.createTemplate, deps...)
}

// ensurePool makes the zone's node pool what was asked: its groups (one,
// or ceil(nodes / MAX_INSTANCES_PER_MIG) as kube-up splits a big pool)
// created or resized, the groups a smaller pool no longer has deleted, and
// each waited on until stable, except the groups that grow: the Nodes
// wait counts theirs. A re-run that does not give the node count keeps the
// pool as it is. It returns the ids of what the Nodes wait follows.
func (p *planner) ensurePool(zone, template string) []string {
	have := map[string]*compute.InstanceGroupManager{}
	for _, m := range p.obs.Pools[zone] {
		have[m.Name] = m
	}
	want := p.cfg.NodeGroups(p.cfg.NumNodes)
	if len(have) > 0 && !p.cfg.NumNodesSet() {
		want = nil
		for _, m := range p.obs.Pools[zone] {
			want = append(want, config.NodeGroup{Name: m.Name, Size: int(m.TargetSize)})
		}
	}
	total := 0
	for _, g := range want {
		total += g.Size
	}
	var waits []string
	for _, g := range want {
		key, m := gce.ZonalKey(zone, g.Name), have[g.Name]
		dep := ""
		switch {
		case m == nil:
			p.pre.needVMs("nodeSize", zone, g.Size)
			p.pre.needMachineType("nodeSize", zone)
			p.pre.needDiskType("nodeDiskType", zone)
			why := fmt.Sprintf("the node pool of %s: %d nodes", zone, g.Size)
			if len(want) > 1 {
				why = fmt.Sprintf("%d of the %d nodes of %s (GCE's groups hold %d at most)", g.Size, total, zone, config.MaxNodesPerGroup)
			}
			dep = p.step(ActCreate, gce.Group(key), why, func(ctx context.Context) error { return p.createPool(ctx, key, g.Size) }, template)
		case m.TargetSize != int64(g.Size):
			p.pre.needVMs("nodeSize", zone, g.Size-int(m.TargetSize))
			dep = p.step(ActUpdate, gce.Group(key), fmt.Sprintf("resize from %d to %d nodes", m.TargetSize, g.Size),
				func(ctx context.Context) error { return p.resizePool(ctx, key, g.Size) })
		}
		if m == nil || m.TargetSize < int64(g.Size) {
			// A VM whose Node is Ready is running: the Nodes wait sees the
			// group through, polling the cluster's API instead of Compute,
			// and from the group's insert on rather than after a wait for
			// its VMs (whose polls stretch to 10 s apart).
			p.grown = append(p.grown, grownGroup{key: key, target: g.Size})
			waits = append(waits, dep)
			continue
		}
		if dep != "" || m.Status == nil || !m.Status.IsStable {
			waits = append(waits, p.wait("wait stable "+gce.Group(key).String(), gce.Group(key), "until every node VM is running (gcloud's wait-until-stable)",
				func(ctx context.Context) error { return p.env.waitMIGStable(ctx, key) }, dep))
		}
	}
	for _, m := range p.obs.Pools[zone] {
		if !slices.ContainsFunc(want, func(g config.NodeGroup) bool { return g.Name == m.Name }) {
			ref := gce.Group(gce.KeyOf(m.SelfLink))
			p.step(ActDelete, ref, fmt.Sprintf("the pool of %s needs %d groups now", zone, len(want)), p.remove(ref))
		}
	}
	return waits
}

// healthCheckStep adds the step that creates the masters' health check, or
// brings an existing one (an older hakube's, kube-up's) to the parameters
// that take a halted master out of rotation quickly; "" when it is current.
func (p *planner) healthCheckStep(reason string) string {
	res := gce.HealthCheck(p.healthCheckKey())
	if hc := p.obs.HealthCheck; hc != nil {
		changes := lb.HealthCheckChanges(hc, p.cfg.HealthCheckPort)
		if len(changes) == 0 {
			return ""
		}
		return p.step(ActUpdate, res, strings.Join(changes, ", ")+": a halted master leaves the rotation within about a second", p.ensureHealthCheck)
	}
	return p.step(ActCreate, res, reason, p.createHealthCheck)
}

// verifyAPI adds the final check that the API serves on the static IP.
func (p *planner) verifyAPI(reason string, deps ...string) string {
	res := text(fmt.Sprintf("api https://%s:%d", p.cfg.StaticIPName(), p.cfg.APIServerPort))
	return p.wait("verify https://"+p.cfg.StaticIPName(), res, reason, p.waitServing, deps...)
}

// needMaster lists what a new master VM is made from for the preflight.
func (p *planner) needMaster(zone string) {
	p.pre.needVMs("masterSize", zone, 1)
	p.pre.needDiskType("masterDiskType", zone)
	p.pre.image = true
}

// healthyMaster picks the master to clone from: RUNNING, carrying kube-env,
// first by name; never one of exclude.
func (p *planner) healthyMaster(exclude ...string) *compute.Instance {
	for _, m := range p.obs.Masters {
		if running(m) && metadataValue(m, vmcontract.KeyKubeEnv) != "" && !slices.Contains(exclude, m.Name) {
			return m
		}
	}
	return nil
}

// masterNames returns the names of the observed masters.
func (r *run) masterNames() []string {
	var out []string
	for _, m := range r.obs.Masters {
		out = append(out, m.Name)
	}
	return out
}

// growPreflight is what adding to a cluster needs: the cluster exists, the
// zone is in its region, and no name it needs is taken.
func (p *planner) growPreflight(ctx context.Context) error {
	if err := requireCluster(p.cfg, p.obs); err != nil {
		return err
	}
	if err := regionCheck(ctx, p.env, p.cfg, p.obs); err != nil {
		return err
	}
	return p.conflicts()
}

func requireCluster(cfg *config.Config, obs *Observed) error {
	if len(obs.Masters) == 0 || obs.Address == nil {
		return fmt.Errorf("%w: no cluster %q found in project %s (looked for masters labelled %s=%s and the static IP %s); create it first with `hakube up --zone <zone>`",
			ErrRefused, cfg.ClusterName(), cfg.Project, gce.LabelCluster, cfg.ClusterName(), cfg.StaticIPName())
	}
	return nil
}

// regionCheck refuses a zone outside the cluster's region before anything
// changes, listing the zones that would work.
func regionCheck(ctx context.Context, env *Env, cfg *config.Config, obs *Observed) error {
	if obs.Region == "" || cfg.Zone == "" || zones.Region(cfg.Zone) == obs.Region {
		return nil
	}
	hint := ""
	if r, err := env.Cloud.GetRegion(ctx, obs.Region); err == nil {
		var zs []string
		for _, z := range r.Zones {
			zs = append(zs, gce.KeyOf(z).Name)
		}
		slices.Sort(zs)
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
