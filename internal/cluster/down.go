package cluster

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/kube"
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
		return planTeardown(env, cfg, obs), nil
	}
}

// planRemovePool deletes the zone's node pool, and the template when no
// other pool uses it. Masters are never touched.
func planRemovePool(env *Env, cfg *config.Config, obs *Observed) (*planner, error) {
	p := newPlanner(env, cfg, obs, FlowRemovePool)
	p.addLock(false)
	migDel := p.deletePool(cfg.Zone)
	p.deletePoolNodes(cfg.Zone, migDel...)
	if obs.Template != nil && len(obs.Pools) <= 1 && (len(obs.Pools) == 0 || obs.Pools[cfg.Zone] != nil) {
		p.deleteTemplate(migDel...)
	}
	if len(migDel) == 0 {
		p.plan.Notes = append(p.plan.Notes, fmt.Sprintf("no node pool of cluster %q in %s", cfg.ClusterName(), cfg.Zone))
	}
	return p, nil
}

// deletePool deletes every group of the zone's pool; it returns their steps.
func (p *planner) deletePool(zone string) []string {
	var ids []string
	for _, m := range p.obs.Pools[zone] {
		ref := gce.Group(gce.KeyOf(m.SelfLink))
		ids = append(ids, p.step(ActDelete, ref, "the node pool of "+zone+" and its VMs", p.remove(ref)))
	}
	return ids
}

// deletePoolNodes deletes the Nodes of the zone's pool once its groups are
// gone: nothing else would (the in-tree cloud provider that did is gone).
func (p *planner) deletePoolNodes(zone string, deps ...string) {
	var bases []string
	for _, m := range p.obs.Pools[zone] {
		bases = append(bases, m.BaseInstanceName)
	}
	if len(bases) == 0 {
		return
	}
	p.plan.add(&Step{Action: ActDelete, Resource: "nodes of the pool in " + zone,
		Reason:    "the Node objects of the pool's VMs, so kubectl does not show them NotReady forever",
		DependsOn: compact(deps),
		Run: func(ctx context.Context) error {
			c, err := p.kubeClient()
			if err != nil {
				return err
			}
			_, err = c.DeleteNodesOf(ctx, zone, bases)
			return err
		}})
}

func (p *planner) deleteTemplate(deps ...string) string {
	ref := gce.Template(p.templateKey())
	return p.step(ActDelete, ref, "no node pool uses it any more", p.remove(ref), deps...)
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
		p.repairMembership()
		p.removeOrphanInternalIPs()
		p.removeOrphanMasterNodes("")
		return p, nil
	}
	if len(obs.Masters) == 1 {
		if others := otherPools(obs, ""); len(others) > 0 {
			return nil, refuse("%s is the last master of cluster %q and node pools remain in %s; remove them first (hakube down --zone <zone> --use-existing-master) or tear the whole cluster down with `hakube down`",
				target.Name, cfg.ClusterName(), strings.Join(others, ", "))
		}
		p.plan.Flow = FlowTeardown
		p.teardown()
		return p, nil
	}
	if err := p.refuseLastRunning(target); err != nil {
		return nil, err
	}
	if err := p.etcdReady(); err != nil {
		return nil, err
	}
	if err := p.quorumAllowsRemoving(target); err != nil {
		return nil, err
	}
	p.addLock(false)
	p.removeReplica(target)
	p.repairMembership()
	p.removeOrphanMasterNodes(target.Name)
	return p, nil
}

// refuseLastRunning refuses to remove the only running master.
func (p *planner) refuseLastRunning(target *compute.Instance) error {
	if !running(target) || slices.ContainsFunc(p.obs.Masters, func(m *compute.Instance) bool { return m != target && running(m) }) {
		return nil
	}
	return refuse("%s is the only running master (%s); removing it leaves no working API server. Start another replica first, or remove a broken one with --replica <name>",
		target.Name, describeMasters(p.obs.Masters))
}

// pickReplica finds the replica to remove: --replica, else the zone's.
func (p *planner) pickReplica() (*compute.Instance, error) {
	if p.cfg.Replica == "" {
		if in := p.obs.MasterIn(p.cfg.Zone); len(in) > 0 {
			return in[0], nil
		}
		return nil, nil
	}
	for _, m := range p.obs.Masters {
		if m.Name != p.cfg.Replica {
			continue
		}
		if zone := gce.KeyOf(m.SelfLink).Zone; p.cfg.Zone != "" && zone != p.cfg.Zone {
			return nil, fmt.Errorf("%w: replica %s is in %s, not in --zone %s", config.ErrInvalidConfig, m.Name, zone, p.cfg.Zone)
		}
		return m, nil
	}
	return nil, fmt.Errorf("%w: cluster %q has no master replica %q (it has: %s)", config.ErrInvalidConfig, p.cfg.ClusterName(), p.cfg.Replica, strings.Join(p.masterNames(), ", "))
}

func (p *planner) removeReplica(target *compute.Instance) {
	m := lb.MasterOf(target)
	out := ""
	if p.obs.TargetPool != nil && slices.Contains(p.obs.TargetPool.Instances, target.SelfLink) {
		out = p.step(ActUpdate, text(gce.TargetPool(p.poolKey()).String()+" -= "+target.Name), "take the replica out of rotation before it goes",
			func(ctx context.Context) error { return p.leavePool(ctx, m) })
	}
	member := ""
	if mem := p.obs.Etcd.of(internalIP(target)); mem != nil {
		ip := internalIP(target)
		member = p.step(ActDelete, text("etcd member "+target.Name), "out of etcd through a surviving master before its VM goes (no phantom voter); its server stops on its own",
			func(ctx context.Context) error { return p.removeMember(ctx, target.Name, ip) }, out)
	}
	vm := p.step(ActDelete, gce.Instance(m.Key), "the replica's VM", p.remove(gce.Instance(m.Key)), out, member)
	if d := p.obs.Disks[p.cfg.MasterDiskName(target.Name)]; d != nil {
		ref := gce.Disk(gce.KeyOf(d.SelfLink))
		p.step(ActDelete, ref, "the replica's etcd data disk", p.remove(ref), vm)
	}
	p.deleteInternalIP(target.Name, vm)
	move := ""
	remaining := slices.DeleteFunc(slices.Clone(p.obs.Masters), func(mm *compute.Instance) bool { return mm.Name == target.Name })
	if len(remaining) == 1 && !p.lbFirst() && (p.obs.ForwardingRule != nil || p.obs.TargetPool != nil || p.obs.HealthCheck != nil) {
		// Not after the VM's delete (15–20 s on GCE): out of the pool and out of
		// etcd, the replica serves nobody; the move only waits for the member's
		// removal, whose SSH tunnel rides the last master's external IP.
		move = p.demoteTo(remaining[0], out, member)
	}
	p.deleteNodeStep(target.Name, vm, move)
}

// deleteInternalIP releases a removed replica's reserved internal IP.
func (p *planner) deleteInternalIP(replica string, deps ...string) {
	if a := p.obs.InternalIPs[p.cfg.InternalAddressName(replica)]; a != nil {
		ref := gce.Address(gce.KeyOf(a.SelfLink))
		p.step(ActDelete, ref, "the replica's reserved internal IP", p.remove(ref), deps...)
	}
}

// removeOrphanMasterNodes deletes the control-plane Nodes whose VM is gone
// (an earlier run stopped between a replica's VM delete and its Node's),
// but for the replica this run removes, whose own step deletes its Node.
func (p *planner) removeOrphanMasterNodes(removing string) {
	for _, name := range p.obs.masterNodes() {
		if name == removing || slices.Contains(p.masterNames(), name) {
			continue
		}
		if p.lockID == "" && p.obs.Address != nil {
			p.addLock(false)
		}
		p.nodeDelete(name, "the Node of a replica whose VM an earlier run deleted before it stopped", p.lockID).Mutating = true
	}
}

// deleteNodeStep deletes a removed master's Node (nothing else would: the
// in-tree cloud provider is gone).
func (p *planner) deleteNodeStep(name string, deps ...string) {
	p.nodeDelete(name, "the removed VM's Node object, so kubectl does not show it NotReady forever", deps...)
}

// nodeDelete adds the step that deletes a master's Node through the API.
func (p *planner) nodeDelete(name, reason string, deps ...string) *Step {
	st := &Step{Action: ActDelete, Resource: "node " + name, Reason: reason,
		DependsOn: compact(deps), Run: func(ctx context.Context) error { return p.deleteNode(ctx, name) }}
	p.plan.add(st)
	return st
}

// repairMembership removes etcd members whose VM is gone (a learner left by
// a crashed add, or a master deleted behind hakube's back) and the reserved
// internal IPs no master uses.
func (p *planner) repairMembership() {
	m := p.obs.Etcd
	if m == nil || m.err != nil {
		return
	}
	vms := map[string]bool{}
	for _, in := range p.obs.Masters {
		vms[internalIP(in)] = true
	}
	for _, mem := range m.members {
		ip := ""
		for _, u := range mem.PeerURLs {
			if pu, err := url.Parse(u); err == nil {
				ip = pu.Hostname()
			}
		}
		if ip == "" || vms[ip] {
			continue
		}
		if p.lockID == "" && p.obs.Address != nil {
			p.addLock(false)
		}
		name := memberName(mem, p.obs.Masters, ip)
		p.step(ActDelete, text("etcd member "+name), fmt.Sprintf("a member (%x, %s) without a VM: an earlier run stopped between the two", mem.ID, ip),
			func(ctx context.Context) error { return p.removeMember(ctx, name, ip) })
	}
}

// removeOrphanInternalIPs releases the reserved internal IPs of replicas
// whose VM is gone (an earlier run stopped between the VM's delete and its
// IP's), unless a disk left for that replica in another zone will want it
// again.
func (p *planner) removeOrphanInternalIPs() {
	for _, name := range slices.Sorted(maps.Keys(p.obs.InternalIPs)) {
		replica := strings.TrimSuffix(name, "-internal")
		if slices.Contains(p.masterNames(), replica) {
			continue
		}
		if d := p.obs.Disks[p.cfg.MasterDiskName(replica)]; d != nil && gce.KeyOf(d.SelfLink).Zone != p.cfg.Zone {
			continue // not removed by this run (removeOrphanDisks takes the zone's)
		}
		if p.lockID == "" && p.obs.Address != nil {
			p.addLock(false)
		}
		ref := gce.Address(gce.KeyOf(p.obs.InternalIPs[name].SelfLink))
		p.step(ActDelete, ref, "the reserved internal IP of "+replica+", whose VM is gone", p.remove(ref))
	}
}

// demoteTo gives the static IP back to the last master and removes the
// load balancer; it returns the move's id.
func (p *planner) demoteTo(last *compute.Instance, deps ...string) string {
	move := ""
	if p.obs.ForwardingRule != nil || lb.IPOwner(p.obs.Address).Kind != lb.OwnerMaster {
		m := lb.MasterOf(last)
		move = p.plan.add(&Step{
			Action: ActMove, Mutating: true, Outage: true,
			Resource:  fmt.Sprintf("static IP %s: forwarding-rule %s → instance %s", p.cfg.StaticIPName(), p.cfg.ForwardingRuleName(), last.Name),
			Reason:    "one master remains: delete the forwarding rule (and the master's ephemeral IP in parallel), give the static IP back to the master, wait until it serves",
			DependsOn: compact(append([]string{p.lockID}, deps...)),
			Run:       func(ctx context.Context) error { return p.demote(ctx, m) },
		})
	}
	if p.obs.TargetPool != nil || p.obs.HealthCheck != nil {
		res := text(gce.TargetPool(p.poolKey()).String() + ", " + gce.HealthCheck(p.healthCheckKey()).String())
		p.step(ActDelete, res, "the load balancer is not needed with one master", p.teardownLB, append([]string{move}, deps...)...)
	}
	return move
}

// repairLB finishes a demotion an earlier run left half-done: one master
// remains and the cluster is not LB-first, but load-balancer pieces remain or
// the static IP is not on the master. The IP is never left unowned.
func (p *planner) repairLB() {
	o := p.obs
	if len(o.Masters) != 1 || o.Address == nil || p.lbFirst() {
		return
	}
	if o.ForwardingRule == nil && o.TargetPool == nil && o.HealthCheck == nil && lb.IPOwner(o.Address).Kind == lb.OwnerMaster {
		return
	}
	if p.lockID == "" {
		p.addLock(false)
	}
	p.plan.Notes = append(p.plan.Notes, "an earlier run left the load balancer half removed; finishing that")
	p.demoteTo(o.Masters[0])
}

// removeOrphanDisks deletes replica disks whose VM is gone (an earlier run
// stopped between the two).
func (p *planner) removeOrphanDisks(zone string) {
	for _, name := range p.obs.diskNames() {
		k := gce.KeyOf(p.obs.Disks[name].SelfLink)
		if k.Zone != zone || slices.Contains(p.masterNames(), strings.TrimSuffix(name, "-pd")) {
			continue
		}
		if p.lockID == "" && p.obs.Address != nil {
			p.addLock(false)
		}
		p.step(ActDelete, gce.Disk(k), "a replica data disk left without its VM", p.remove(gce.Disk(k)))
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
		p.teardown()
		return p, nil
	}
	if len(masters) > 0 {
		if err := p.refuseLastRunning(masters[0]); err != nil {
			return nil, err
		}
		if err := p.etcdReady(); err != nil {
			return nil, err
		}
		if err := p.quorumAllowsRemoving(masters[0]); err != nil {
			return nil, err
		}
	}
	p.addLock(false)
	migDel := p.deletePool(cfg.Zone)
	p.deletePoolNodes(cfg.Zone, migDel...)
	if obs.Template != nil && len(obs.Pools) == 1 && obs.Pools[cfg.Zone] != nil {
		p.deleteTemplate(migDel...)
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
	return slices.DeleteFunc(obs.PoolZones(), func(z string) bool { return z == zone })
}

// planTeardown removes everything the cluster owns, in every zone.
func planTeardown(env *Env, cfg *config.Config, obs *Observed) *planner {
	p := newPlanner(env, cfg, obs, FlowTeardown)
	p.teardown()
	return p
}

// teardown deletes in dependency order, in parallel where independent:
// forwarding rule → target pool → health check; pools → template; masters →
// their disks; firewalls beside them all; the static IP (which holds the
// lock) last, and the network when asked and it is the cluster's.
func (p *planner) teardown() {
	cfg, obs := p.cfg, p.obs
	p.addLock(false)
	del := func(ref gce.Ref, reason string, deps ...string) string {
		return p.step(ActDelete, ref, reason, p.remove(ref), deps...)
	}
	var fr, pool string
	if obs.ForwardingRule != nil {
		fr = del(gce.ForwardingRule(p.ruleKey()), "the load balancer in front of the masters")
	}
	if obs.TargetPool != nil {
		pool = del(gce.TargetPool(p.poolKey()), "the load balancer's pool", fr)
	}
	if obs.HealthCheck != nil {
		del(gce.HealthCheck(p.healthCheckKey()), "the load balancer's health check", pool)
	}
	var migs []string
	for _, z := range obs.PoolZones() {
		migs = append(migs, p.deletePool(z)...)
	}
	if obs.Template != nil {
		p.deleteTemplate(migs...)
	}
	vms := map[string]string{} // master name → its delete step
	for _, m := range obs.Masters {
		vms[m.Name] = del(gce.Instance(gce.KeyOf(m.SelfLink)), "master replica")
	}
	for _, name := range obs.diskNames() {
		del(gce.Disk(gce.KeyOf(obs.Disks[name].SelfLink)), "etcd data of a master (it goes with the cluster, as in kube-down)",
			vms[strings.TrimSuffix(name, "-pd")])
	}
	for _, name := range slices.Sorted(maps.Keys(obs.InternalIPs)) {
		ref := gce.Address(gce.KeyOf(obs.InternalIPs[name].SelfLink))
		del(ref, "a master's reserved internal IP", vms[strings.TrimSuffix(name, "-internal")])
	}
	machines := append(slices.Sorted(maps.Values(vms)), migs...)
	var fws []string
	for _, name := range firewallNames(cfg) {
		fw, ok := obs.Firewalls[name]
		if !ok {
			continue
		}
		if name == cfg.SSHFirewallName() && (obs.SharedNetwork || !strings.HasPrefix(fw.Description, "hakube-cluster=")) {
			continue // shared by the network's other clusters, or not hakube's at all
		}
		// Beside the machines, not after them: a rule refers to no VM (only to
		// tags), so GCE deletes either first; only the static IP waits for all.
		fws = append(fws, del(gce.Firewall(gce.GlobalKey(name)), "firewall rule of the cluster"))
	}
	if obs.Address != nil {
		del(gce.Address(p.addressKey()), "the static IP, last: it holds the lock", append(append([]string{fr, pool}, machines...), fws...)...)
	}
	podRange := ""
	if obs.PodRange != nil {
		// No VM holds an alias range of it once the machines are gone.
		podRange = p.step(ActUpdate, gce.Subnetwork(p.subnetworkKey()), fmt.Sprintf("remove secondary range %s %s, the pods' range", obs.PodRange.RangeName, obs.PodRange.IpCidrRange),
			p.removePodRange, machines...)
	}
	if cfg.DeleteNetwork && obs.Network != nil {
		if gce.OwnedByDescription(cfg.ClusterName(), obs.Network.Description) {
			del(gce.Network(gce.GlobalKey(cfg.Network)), "--delete-network: the cluster created it", append(append(fws, machines...), podRange)...)
		} else {
			p.plan.Notes = append(p.plan.Notes, fmt.Sprintf("network %s is kept: it was not created by hakube for cluster %q", cfg.Network, cfg.ClusterName()))
		}
	}
	if !obs.Exists() {
		p.plan.Notes = append(p.plan.Notes, fmt.Sprintf("no trace of cluster %q in project %s", cfg.ClusterName(), cfg.Project))
	}
	p.forgetKubeconfig()
}

// forgetKubeconfig removes the cluster's context, user and cluster entries
// from the kubeconfig, nothing else, when they are there.
func (p *planner) forgetKubeconfig() {
	name := kubeconfigName(p.cfg.Project, p.cfg.Prefix)
	if p.env.Kubeconfig == "" || !kube.HasName(p.env.Kubeconfig, name) {
		return
	}
	path := p.env.Kubeconfig
	p.plan.add(&Step{Action: ActWrite, Resource: "kubeconfig context " + name, Reason: "removed from " + path + " with the cluster (other entries stay)",
		Run: func(context.Context) error {
			_, err := kube.Remove(path, name)
			return err
		}})
}
