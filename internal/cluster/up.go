package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/lb"
)

// planUp chooses the up flow from the flags, as kube-up did from its
// environment.
func planUp(ctx context.Context, env *Env, cfg *config.Config, obs *Observed) (*planner, error) {
	switch {
	case cfg.UseExistingMaster:
		return planNodePool(ctx, env, cfg, obs)
	case cfg.ReplicateMaster:
		return planReplica(ctx, env, cfg, obs)
	default:
		return planFreshUp(ctx, env, cfg, obs)
	}
}

// planFreshUp creates a cluster in one zone, or completes one that an
// earlier run left half-made.
func planFreshUp(ctx context.Context, env *Env, cfg *config.Config, obs *Observed) (*planner, error) {
	p := newPlanner(env, cfg, obs, FlowFreshUp)
	if err := p.conflicts(); err != nil {
		return nil, err
	}
	if err := p.regionCheck(ctx); err != nil {
		return nil, err
	}
	if len(obs.Masters) > 0 && len(obs.MasterIn(cfg.Zone)) == 0 {
		return nil, refuse("cluster %q already exists with masters in %s; a fresh up in %s would make a second cluster.\n"+
			"To add a node pool in %s: hakube up --zone %s --use-existing-master (KUBE_USE_EXISTING_MASTER=true).\n"+
			"To add a master replica in %s: hakube up --zone %s --replicate-master (KUBE_REPLICATE_EXISTING_MASTER=true).",
			cfg.ClusterName(), strings.Join(obs.MasterZones(), ", "), cfg.Zone, cfg.Zone, cfg.Zone, cfg.Zone, cfg.Zone)
	}
	if len(obs.Masters) == 0 && len(obs.MIGs) > 0 && obs.MIGs[cfg.Zone] == nil {
		return nil, refuse("cluster %q has node pools in %s but no master; run `hakube down` to clean it up, or `hakube up --zone %s`",
			cfg.ClusterName(), strings.Join(obs.PoolZones(), ", "), obs.PoolZones()[0])
	}
	p.addLock(obs.Address == nil)
	network, fws := p.ensureNetworkAndFirewalls()
	template := p.ensureTemplate(network)

	master := cfg.MasterName()
	masterStep := ""
	if len(obs.MasterIn(cfg.Zone)) == 0 {
		p.needMaster(cfg.Zone)
		disk := ""
		if obs.Disks[cfg.MasterDiskName(master)] == nil {
			disk = p.step(ActCreate, fmt.Sprintf("disk %s (%s)", cfg.MasterDiskName(master), cfg.Zone),
				fmt.Sprintf("etcd data of the master (%s, %d GB)", cfg.MasterDiskType, cfg.MasterDiskSizeGB),
				func(ctx context.Context) error { return p.createMasterDisk(ctx, master, cfg.Zone) })
		}
		reason := "the first master, on the static IP, with kube-env and serving certificates"
		if p.lbFirst() {
			reason = "the first master (ephemeral IP: the static IP goes on the load balancer from the start)"
		}
		masterStep = p.step(ActCreate, fmt.Sprintf("instance %s (%s)", master, cfg.Zone), reason,
			func(ctx context.Context) error { return p.createFirstMaster(ctx, master) }, disk, network)
	}
	var lbSteps []string
	if p.lbFirst() && obs.ForwardingRule == nil {
		lbSteps = p.planLBFirst(masterStep)
	}
	p.ensurePool(cfg.Zone, template)
	if masterStep != "" || len(lbSteps) > 0 || len(fws) > 0 {
		p.verifyAPI("the API answers on the static IP (TLS verified against the cluster CA)", append(append(lbSteps, masterStep), fws...)...)
	}
	return p, nil
}

// needMaster lists what a new master VM is made from for the preflight.
func (p *planner) needMaster(zone string) {
	p.pre.needVMs("masterSize", zone, 1)
	p.pre.needDiskType("masterDiskType", zone)
	p.pre.image = true
}

func (p *planner) createMasterDisk(ctx context.Context, replica, zone string) error {
	err := p.env.Cloud.InsertDisk(ctx, zone, masterDisk(p.cfg, replica, zone))
	if gce.IsAlreadyExists(err) {
		d, gerr := p.env.Cloud.GetDisk(ctx, zone, p.cfg.MasterDiskName(replica))
		if gerr == nil && d.Labels[gce.LabelCluster] == p.cfg.ClusterName() {
			return nil
		}
		return refuse("disk %s exists in %s but does not belong to cluster %q", p.cfg.MasterDiskName(replica), zone, p.cfg.ClusterName())
	}
	return wrap(err, "create disk %s", p.cfg.MasterDiskName(replica))
}

// createFirstMaster issues the cluster's certificates and creates the VM.
func (p *planner) createFirstMaster(ctx context.Context, name string) error {
	ip := p.staticIP()
	certs, err := newCerts(p.cfg.ClusterName(), p.cfg.MasterName(), ip, time.Now())
	if err != nil {
		return fmt.Errorf("issue certificates: %w", err)
	}
	p.mu.Lock()
	p.certs, p.ca = certs.metadata(), certs.CACert
	lbFirst := p.lbMode == modeLBFirst
	p.mu.Unlock()
	nat := ip
	if lbFirst {
		nat = ""
	}
	env := masterKubeEnv(p.cfg, name, p.cfg.Zone, ip, []string{name}, "new")
	err = p.env.Cloud.InsertInstance(ctx, p.cfg.Zone, masterInstance(p.cfg, name, p.cfg.Zone, nat, env, certs.metadata()))
	if gce.IsAlreadyExists(err) {
		return p.adoptMaster(ctx, p.cfg.Zone, name)
	}
	return wrap(err, "create master %s", name)
}

// adoptMaster accepts an instance that already exists under our name only
// when it is the cluster's master, and picks up its certificates.
func (p *planner) adoptMaster(ctx context.Context, zone, name string) error {
	in, err := p.env.Cloud.GetInstance(ctx, zone, name)
	if err != nil {
		return wrap(err, "read instance %s", name)
	}
	if in.Labels[gce.LabelCluster] != p.cfg.ClusterName() || in.Labels[gce.LabelRole] != gce.RoleMaster {
		return refuse("instance %s exists in %s but is not a master of cluster %q", name, zone, p.cfg.ClusterName())
	}
	if v := metadataValue(in, MetaMasterCerts); v != "" {
		ca, err := caFromMetadata(v)
		if err == nil {
			p.mu.Lock()
			p.certs, p.ca = v, ca
			p.mu.Unlock()
		}
	}
	return nil
}

// planLBFirst puts the static IP on a forwarding rule from the start.
func (p *planner) planLBFirst(masterStep string) []string {
	hc := p.healthCheckStep("probes each master's /healthz so a halted master leaves the rotation")
	pool := p.step(ActCreate, fmt.Sprintf("target-pool %s (%s)", p.cfg.TargetPoolName(), p.region()), "holds the master replicas behind the static IP",
		func(ctx context.Context) error {
			masters, err := p.currentMasters(ctx)
			if err != nil {
				return err
			}
			return lb.EnsurePool(ctx, p.env.Cloud, p.lbSpec(ctx), masters)
		},
		hc, masterStep)
	rule := p.step(ActCreate, fmt.Sprintf("forwarding-rule %s (%s)", p.cfg.ForwardingRuleName(), p.region()), "the static IP on the load balancer from day one: later replica changes never move it",
		func(ctx context.Context) error { return lb.EnsureRule(ctx, p.env.Cloud, p.lbSpec(ctx)) }, pool)
	return []string{rule}
}

// currentMasters re-reads the cluster's masters as load-balancer members
// (the first master may have been created in this run).
func (p *planner) currentMasters(ctx context.Context) ([]lb.Master, error) {
	ins, err := p.env.Cloud.AggregatedInstances(ctx, gce.ClusterFilter(p.cfg.ClusterName()))
	if err != nil {
		return nil, wrap(err, "list masters")
	}
	var out []lb.Master
	for _, in := range ins {
		if in.Labels[gce.LabelRole] == gce.RoleMaster {
			out = append(out, lb.MasterOf(in))
		}
	}
	return out, nil
}

// planNodePool adds a node pool in another zone of the cluster's region.
func planNodePool(ctx context.Context, env *Env, cfg *config.Config, obs *Observed) (*planner, error) {
	p := newPlanner(env, cfg, obs, FlowNodePool)
	if err := p.growPreflight(ctx); err != nil {
		return nil, err
	}
	p.addLock(false)
	template := ""
	if obs.Template == nil {
		template = p.ensureTemplate("")
		p.plan.Notes = append(p.plan.Notes, "the node template was missing and is recreated")
	}
	p.ensurePool(cfg.Zone, template)
	return p, nil
}

// growPreflight is what adding to a cluster needs: the cluster exists, the
// zone is in its region, and no name it needs is taken.
func (p *planner) growPreflight(ctx context.Context) error {
	if err := requireCluster(p.cfg, p.obs); err != nil {
		return err
	}
	if err := p.regionCheck(ctx); err != nil {
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
