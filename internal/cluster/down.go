package cluster

import (
	"context"
	"fmt"
	"strings"

	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/lb"
)

// planDown chooses the down flow from the flags, as kube-down did from its
// environment (but without kube-down's surprises: --use-existing-master
// never touches masters).
func planDown(ctx context.Context, env *Env, cfg *config.Config, obs *Observed) (*planner, error) {
	if err := regionCheck(ctx, env, cfg, obs); err != nil {
		return nil, err
	}
	switch {
	case cfg.UseExistingMaster:
		if cfg.Zone == "" {
			return nil, fmt.Errorf("%w: removing a node pool (--use-existing-master) needs --zone (KUBE_GCE_ZONE)", config.ErrInvalidConfig)
		}
		return planRemovePool(env, cfg, obs)
	case cfg.Replica != "" || !cfg.DeleteNodes:
		if cfg.Replica == "" && cfg.Zone == "" {
			return nil, fmt.Errorf("%w: removing a master replica (--delete-nodes=false) needs --zone (KUBE_GCE_ZONE) or --replica (KUBE_REPLICA_NAME)", config.ErrInvalidConfig)
		}
		return planRemoveReplica(env, cfg, obs)
	case cfg.Zone != "":
		return planRemoveZone(env, cfg, obs)
	default:
		return planTeardown(env, cfg, obs)
	}
}

// planRemovePool deletes the zone's node pool, and the template when no
// other pool uses it. Masters are never touched.
func planRemovePool(env *Env, cfg *config.Config, obs *Observed) (*planner, error) {
	p := newPlanner(env, cfg, obs, FlowRemovePool)
	p.addLock(false)
	migDel := p.deletePool(cfg.Zone)
	if obs.Template != nil && len(obs.MIGs) <= 1 && (len(obs.MIGs) == 0 || obs.MIGs[cfg.Zone] != nil) {
		p.deleteTemplate(migDel)
	}
	if migDel == "" {
		p.plan.Notes = append(p.plan.Notes, fmt.Sprintf("no node pool of cluster %q in %s", cfg.ClusterName(), cfg.Zone))
	}
	return p, nil
}

func (p *planner) deletePool(zone string) string {
	if p.obs.MIGs[zone] == nil {
		return ""
	}
	name := p.cfg.NodeGroupName()
	return p.step(ActDelete, fmt.Sprintf("instance-group %s (%s)", name, zone), "the node pool of "+zone+" and its VMs",
		func(ctx context.Context) error {
			return wrap(p.env.Cloud.DeleteMIG(ctx, zone, name), "delete node pool %s in %s", name, zone)
		})
}

func (p *planner) deleteTemplate(deps ...string) string {
	name := p.cfg.NodeTemplateName()
	return p.step(ActDelete, "instance-template "+name, "no node pool uses it any more",
		func(ctx context.Context) error {
			return wrap(p.env.Cloud.DeleteInstanceTemplate(ctx, name), "delete instance template %s", name)
		}, deps...)
}

// planRemoveReplica removes one master replica: out of the target pool
// first, then its VM and disk. When one master remains (and the cluster is
// not LB-first) the static IP goes back to it and the load balancer goes.
func planRemoveReplica(env *Env, cfg *config.Config, obs *Observed) (*planner, error) {
	p := newPlanner(env, cfg, obs, FlowRemoveReplica)
	target, err := p.pickReplica()
	if err != nil {
		return nil, err
	}
	if target == nil {
		p.plan.Notes = append(p.plan.Notes, fmt.Sprintf("no master replica of cluster %q in %s", cfg.ClusterName(), cfg.Zone))
		p.removeOrphanDisks(cfg.Zone)
		p.repairLB()
		return p, nil
	}
	if len(obs.Masters) == 1 {
		if others := otherPools(obs, ""); len(others) > 0 {
			return nil, refuse("%s is the last master of cluster %q and node pools remain in %s; remove them first (hakube down --zone <zone> --use-existing-master) or tear the whole cluster down with `hakube down`",
				target.Name, cfg.ClusterName(), strings.Join(others, ", "))
		}
		p.plan.Flow = FlowTeardown
		return p.teardown(), nil
	}
	if running(target) {
		healthy := 0
		for _, m := range obs.Masters {
			if running(m) {
				healthy++
			}
		}
		if healthy == 1 {
			return nil, refuse("%s is the only running master (%s); removing it leaves no working API server. Start another replica first, or remove a broken one with --replica <name>",
				target.Name, describeMasters(obs.Masters))
		}
	}
	p.addLock(false)
	p.removeReplica(target)
	return p, nil
}

// pickReplica finds the replica to remove: --replica, else the zone's.
func (p *planner) pickReplica() (*compute.Instance, error) {
	if p.cfg.Replica != "" {
		for _, m := range p.obs.Masters {
			if m.Name == p.cfg.Replica {
				if p.cfg.Zone != "" && gce.LastSegment(m.Zone) != p.cfg.Zone {
					return nil, fmt.Errorf("%w: replica %s is in %s, not in --zone %s", config.ErrInvalidConfig, m.Name, gce.LastSegment(m.Zone), p.cfg.Zone)
				}
				return m, nil
			}
		}
		return nil, fmt.Errorf("%w: cluster %q has no master replica %q (it has: %s)", config.ErrInvalidConfig, p.cfg.ClusterName(), p.cfg.Replica, strings.Join(p.masterNames(), ", "))
	}
	in := p.obs.MasterIn(p.cfg.Zone)
	if len(in) == 0 {
		return nil, nil
	}
	return in[0], nil
}

func (p *planner) removeReplica(target *compute.Instance) {
	cfg := p.cfg
	zone := gce.LastSegment(target.Zone)
	m := lb.MasterOf(target)
	out := ""
	if p.obs.TargetPool != nil && contains(p.obs.TargetPool.Instances, target.SelfLink) {
		out = p.step(ActUpdate, fmt.Sprintf("target-pool %s (%s) -= %s", cfg.TargetPoolName(), p.region(), target.Name),
			"take the replica out of rotation before it goes",
			func(ctx context.Context) error { return lb.RemoveFromPool(ctx, p.env.Cloud, p.lbSpec(ctx), m) })
	}
	vm := p.step(ActDelete, fmt.Sprintf("instance %s (%s)", target.Name, zone), "the replica's VM",
		func(ctx context.Context) error {
			return wrap(p.env.Cloud.DeleteInstance(ctx, zone, target.Name), "delete replica %s", target.Name)
		}, out)
	if d := p.obs.Disks[cfg.MasterDiskName(target.Name)]; d != nil {
		p.step(ActDelete, fmt.Sprintf("disk %s (%s)", d.Name, zone), "the replica's etcd data disk",
			func(ctx context.Context) error {
				return wrap(p.env.Cloud.DeleteDisk(ctx, zone, d.Name), "delete disk %s", d.Name)
			}, vm)
	}
	remaining := make([]*compute.Instance, 0, len(p.obs.Masters))
	for _, mm := range p.obs.Masters {
		if mm.Name != target.Name {
			remaining = append(remaining, mm)
		}
	}
	if len(remaining) == 1 && !p.lbFirst() && (p.obs.ForwardingRule != nil || p.obs.TargetPool != nil || p.obs.HealthCheck != nil) {
		p.demote(remaining[0], out, vm)
	}
}

// demote gives the static IP back to the last master and removes the load
// balancer.
func (p *planner) demote(last *compute.Instance, deps ...string) {
	cfg := p.cfg
	move := ""
	if p.obs.ForwardingRule != nil || lb.IPOwner(p.obs.Address).Kind != lb.OwnerMaster {
		move = p.plan.add(&Step{
			Action: ActMove, Mutating: true, Outage: true,
			Resource:  fmt.Sprintf("static IP %s: forwarding-rule %s → instance %s", cfg.StaticIPName(), cfg.ForwardingRuleName(), last.Name),
			Reason:    "one master remains: delete the forwarding rule (and the master's ephemeral IP in parallel), give the static IP back to the master, wait until it serves",
			DependsOn: compact(append([]string{p.lockID}, deps...)),
			Run: func(ctx context.Context) error {
				mv, err := lb.Demote(ctx, p.env.Cloud, p.lbSpec(ctx), lb.MasterOf(last))
				p.record(mv)
				return err
			},
		})
	}
	if p.obs.TargetPool != nil || p.obs.HealthCheck != nil {
		p.step(ActDelete, fmt.Sprintf("target-pool %s (%s), http-health-check %s", cfg.TargetPoolName(), p.region(), cfg.HealthCheckName()),
			"the load balancer is not needed with one master",
			func(ctx context.Context) error { return lb.Teardown(ctx, p.env.Cloud, p.lbSpec(ctx)) }, append([]string{move}, deps...)...)
	}
}

// repairLB finishes a demotion an earlier run left half-done: one master
// remains and the cluster is not LB-first, but load-balancer pieces remain or
// the static IP is not on the master. The IP is never left unowned.
func (p *planner) repairLB() {
	if len(p.obs.Masters) != 1 || p.obs.Address == nil || p.lbFirst() {
		return
	}
	o := p.obs
	if o.ForwardingRule == nil && o.TargetPool == nil && o.HealthCheck == nil && lb.IPOwner(o.Address).Kind == lb.OwnerMaster {
		return
	}
	if p.lockID == "" {
		p.addLock(false)
	}
	p.plan.Notes = append(p.plan.Notes, "an earlier run left the load balancer half removed; finishing that")
	p.demote(o.Masters[0])
}

// removeOrphanDisks deletes replica disks whose VM is gone (an earlier run
// stopped between the two).
func (p *planner) removeOrphanDisks(zone string) {
	for _, name := range p.obs.diskNames() {
		d := p.obs.Disks[name]
		if gce.LastSegment(d.Zone) != zone || contains(p.masterNames(), strings.TrimSuffix(name, "-pd")) {
			continue
		}
		if p.lockID == "" && p.obs.Address != nil {
			p.addLock(false)
		}
		p.step(ActDelete, fmt.Sprintf("disk %s (%s)", d.Name, zone), "a replica data disk left without its VM",
			func(ctx context.Context) error {
				return wrap(p.env.Cloud.DeleteDisk(ctx, zone, d.Name), "delete disk %s", d.Name)
			})
	}
}

// planRemoveZone removes a zone's node pool and master replica; the last
// master only goes with the whole cluster.
func planRemoveZone(env *Env, cfg *config.Config, obs *Observed) (*planner, error) {
	p := newPlanner(env, cfg, obs, FlowRemoveZone)
	masters := obs.MasterIn(cfg.Zone)
	if len(masters) > 0 && len(masters) == len(obs.Masters) {
		if others := otherPools(obs, cfg.Zone); len(others) > 0 {
			return nil, refuse("%s holds the last master of cluster %q, and node pools remain in %s; remove them first (hakube down --zone <zone>) or tear everything down with `hakube down` (no --zone)",
				cfg.Zone, cfg.ClusterName(), strings.Join(others, ", "))
		}
		p.plan.Flow = FlowTeardown
		return p.teardown(), nil
	}
	if len(masters) > 0 && running(masters[0]) {
		healthy := 0
		for _, m := range obs.Masters {
			if running(m) {
				healthy++
			}
		}
		if healthy == 1 {
			return nil, refuse("%s is the only running master (%s); removing it leaves no working API server", masters[0].Name, describeMasters(obs.Masters))
		}
	}
	p.addLock(false)
	migDel := p.deletePool(cfg.Zone)
	if obs.Template != nil && len(obs.MIGs) == 1 && obs.MIGs[cfg.Zone] != nil {
		p.deleteTemplate(migDel)
	}
	for _, m := range masters {
		p.removeReplica(m)
	}
	p.removeOrphanDisks(cfg.Zone)
	if len(masters) == 0 {
		p.repairLB()
	}
	return p, nil
}

func otherPools(obs *Observed, zone string) []string {
	var out []string
	for _, z := range obs.PoolZones() {
		if z != zone {
			out = append(out, z)
		}
	}
	return out
}

// planTeardown removes everything the cluster owns, in every zone.
func planTeardown(env *Env, cfg *config.Config, obs *Observed) (*planner, error) {
	p := newPlanner(env, cfg, obs, FlowTeardown)
	return p.teardown(), nil
}

// teardown deletes in dependency order, in parallel where independent:
// forwarding rule → target pool → health check; pools → template; masters →
// their disks; then firewalls, the static IP (which holds the lock) last,
// and the network when asked and it is the cluster's.
func (p *planner) teardown() *planner {
	cfg, obs := p.cfg, p.obs
	p.addLock(false)
	region := p.region()
	var fr, pool string
	if obs.ForwardingRule != nil {
		fr = p.step(ActDelete, fmt.Sprintf("forwarding-rule %s (%s)", cfg.ForwardingRuleName(), region), "the load balancer in front of the masters",
			func(ctx context.Context) error {
				return wrap(p.env.Cloud.DeleteForwardingRule(ctx, region, cfg.ForwardingRuleName()), "delete forwarding rule %s", cfg.ForwardingRuleName())
			})
	}
	if obs.TargetPool != nil {
		pool = p.step(ActDelete, fmt.Sprintf("target-pool %s (%s)", cfg.TargetPoolName(), region), "the load balancer's pool",
			func(ctx context.Context) error {
				return wrap(p.env.Cloud.DeleteTargetPool(ctx, region, cfg.TargetPoolName()), "delete target pool %s", cfg.TargetPoolName())
			}, fr)
	}
	if obs.HealthCheck != nil {
		p.step(ActDelete, "http-health-check "+cfg.HealthCheckName(), "the load balancer's health check",
			func(ctx context.Context) error {
				return wrap(p.env.Cloud.DeleteHTTPHealthCheck(ctx, cfg.HealthCheckName()), "delete health check %s", cfg.HealthCheckName())
			}, pool)
	}
	var migs []string
	for _, z := range obs.PoolZones() {
		migs = append(migs, p.deletePool(z))
	}
	if obs.Template != nil {
		p.deleteTemplate(migs...)
	}
	var vms []string
	for _, m := range obs.Masters {
		m := m
		zone := gce.LastSegment(m.Zone)
		vm := p.step(ActDelete, fmt.Sprintf("instance %s (%s)", m.Name, zone), "master replica",
			func(ctx context.Context) error {
				return wrap(p.env.Cloud.DeleteInstance(ctx, zone, m.Name), "delete master %s", m.Name)
			})
		vms = append(vms, vm)
	}
	for _, name := range obs.diskNames() {
		d := obs.Disks[name]
		zone := gce.LastSegment(d.Zone)
		dep := ""
		for i, m := range obs.Masters {
			if cfg.MasterDiskName(m.Name) == d.Name {
				dep = vms[i]
			}
		}
		p.step(ActDelete, fmt.Sprintf("disk %s (%s)", d.Name, zone), "etcd data of a master (it goes with the cluster, as in kube-down)",
			func(ctx context.Context) error {
				return wrap(p.env.Cloud.DeleteDisk(ctx, zone, d.Name), "delete disk %s", d.Name)
			}, dep)
	}
	var fws []string
	for _, name := range firewallNames(cfg) {
		fw, ok := obs.Firewalls[name]
		if !ok {
			continue
		}
		if name == cfg.SSHFirewallName() && (obs.SharedNetwork || !strings.HasPrefix(fw.Description, "hakube-cluster=")) {
			// Shared by the network's other clusters, or not hakube's at all.
			continue
		}
		name := name
		fws = append(fws, p.step(ActDelete, "firewall "+name, "firewall rule of the cluster",
			func(ctx context.Context) error {
				return wrap(p.env.Cloud.DeleteFirewall(ctx, name), "delete firewall %s", name)
			},
			append(append([]string{}, vms...), migs...)...))
	}
	if obs.Address != nil {
		p.step(ActDelete, fmt.Sprintf("address %s (%s)", cfg.StaticIPName(), region), "the static IP, last: it holds the lock",
			func(ctx context.Context) error {
				return wrap(p.env.Cloud.DeleteAddress(ctx, region, cfg.StaticIPName()), "delete address %s", cfg.StaticIPName())
			}, append(append(append([]string{fr, pool}, vms...), migs...), fws...)...)
	}
	if cfg.DeleteNetwork && obs.Network != nil {
		if gce.OwnedByDescription(cfg.ClusterName(), obs.Network.Description) {
			p.step(ActDelete, "network "+cfg.Network, "--delete-network: the cluster created it",
				func(ctx context.Context) error {
					return wrap(p.env.Cloud.DeleteNetwork(ctx, cfg.Network), "delete network %s", cfg.Network)
				}, append(append(append([]string{}, fws...), vms...), migs...)...)
		} else {
			p.plan.Notes = append(p.plan.Notes, fmt.Sprintf("network %s is kept: it was not created by hakube for cluster %q", cfg.Network, cfg.ClusterName()))
		}
	}
	if !obs.Exists() {
		p.plan.Notes = append(p.plan.Notes, fmt.Sprintf("no trace of cluster %q in project %s", cfg.ClusterName(), cfg.Project))
	}
	return p
}
