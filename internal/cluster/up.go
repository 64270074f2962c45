package cluster

import (
	"context"
	"fmt"
	"strings"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/kube"
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
	if err := regionCheck(ctx, env, cfg, obs); err != nil {
		return nil, err
	}
	if len(obs.Masters) > 0 && len(obs.MasterIn(cfg.Zone)) == 0 {
		return nil, refuse("cluster %q already exists with masters in %s; a fresh up in %s would make a second cluster.\n"+
			"To add a node pool in %s: hakube up --zone %s --use-existing-master (KUBE_USE_EXISTING_MASTER=true).\n"+
			"To add a master replica in %s: hakube up --zone %s --replicate-master (KUBE_REPLICATE_EXISTING_MASTER=true).",
			cfg.ClusterName(), strings.Join(obs.MasterZones(), ", "), cfg.Zone, cfg.Zone, cfg.Zone, cfg.Zone, cfg.Zone)
	}
	if len(obs.Masters) == 0 && len(obs.Pools) > 0 && obs.Pools[cfg.Zone] == nil {
		return nil, refuse("cluster %q has node pools in %s but no master; run `hakube down` to clean it up, or `hakube up --zone %s`",
			cfg.ClusterName(), strings.Join(obs.PoolZones(), ", "), obs.PoolZones()[0])
	}
	p.addLock(obs.Address == nil)
	network, fws := p.ensureNetworkAndFirewalls()
	// Every VM's alias range comes from the pods' range: VMs wait for it
	// (and so for the network it is in).
	podRange, err := p.ensurePodRange(network)
	if err != nil {
		return nil, err
	}
	subnet := network
	if podRange != "" {
		network = podRange
	}

	accepted, masterStep := "", ""
	if len(obs.MasterIn(cfg.Zone)) == 0 {
		accepted, masterStep = p.createMaster(p.masterKey(cfg.Zone, cfg.MasterName()), subnet, network)
	}
	// The template carries the cluster CA's certificate and the bootstrap
	// token, which the first master's step issues and keeps (in its
	// metadata, their only home): the template follows the insert's
	// acceptance, and the pool's VMs boot while the master's are made.
	stale := p.replaceOrphanTemplate()
	template := p.ensureTemplate(append([]string{network, accepted}, stale...)...)
	var lbSteps []string
	if p.lbFirst() && obs.ForwardingRule == nil {
		lbSteps = p.planLBFirst(masterStep)
	}
	stable := p.ensurePool(cfg.Zone, template)
	verify := ""
	if masterStep != "" || len(lbSteps) > 0 || len(fws) > 0 {
		verify = p.verifyAPI("the API answers on the static IP (TLS verified against the cluster CA)", append(append(lbSteps, masterStep), fws...)...)
	}
	p.joinKubernetes(verify, stable, true)
	return p, nil
}

// joinKubernetes adds what makes the VMs a Kubernetes cluster once the API
// serves: the bootstrap objects the kubelets need, the wait until every
// Node is Ready (masters labelled and cordoned), and for a fresh cluster
// the admin's kubeconfig. They run when the plan changes something, and a
// kubeconfig without the cluster's context is written again.
func (p *planner) joinKubernetes(verify string, stable []string, kubeconfig bool) {
	writeKubeconfig := kubeconfig && p.env.Kubeconfig != "" && !p.hasKubeconfig()
	// A re-run after a stop inside the wait for the nodes finishes it: the
	// masters' Nodes are labelled and cordoned there.
	if p.plan.Mutations() == 0 && !writeKubeconfig && len(p.obs.unpreparedMasters()) == 0 {
		return
	}
	apiRes := text(fmt.Sprintf("api https://%s:%d", p.cfg.StaticIPName(), p.cfg.APIServerPort))
	boot := p.plan.add(&Step{Action: ActUpdate, Resource: apiRes.String() + " bootstrap objects",
		Reason:    "the kubelets' bootstrap token and TLS-bootstrapping RBAC, kubeadm's cluster-admins binding (kept when present)",
		DependsOn: compact([]string{verify}), Run: p.bootstrapAPI})
	until := "until every VM's Node is Ready (masters labelled control-plane and cordoned)"
	if p.masterNodes != nil {
		until = "until every master's Node is Ready, labelled control-plane and cordoned (the node pools are not this flow's)"
	}
	p.wait("wait nodes", text("nodes of cluster "+p.cfg.ClusterName()), until, p.waitNodes, append([]string{boot}, stable...)...)
	if writeKubeconfig {
		p.plan.add(&Step{Action: ActWrite, Resource: "kubeconfig context " + kubeconfigName(p.cfg.Project, p.cfg.Prefix),
			Reason:    "merged into " + p.env.Kubeconfig + " (0600) and made current, as kube-up does",
			DependsOn: []string{boot}, Run: p.writeKubeconfig})
	}
}

// hasKubeconfig reports whether the kubeconfig has the cluster's context
// on its API address and CA.
func (p *planner) hasKubeconfig() bool {
	ca := clusterCA(p.obs)
	if ca == nil || p.obs.Address == nil {
		return false
	}
	ok, err := kube.Has(p.env.Kubeconfig, kube.Kubeconfig{Name: kubeconfigName(p.cfg.Project, p.cfg.Prefix), Server: p.apiURL(), CA: ca})
	return err == nil && ok
}

// createMaster adds the first master: its internal IP unless an earlier
// run reserved it, then the VM, whose etcd data disk its insert makes. The
// IP needs only the subnetwork, not the pods' range the VM's alias range
// comes from: the two are reserved and patched side by side. The VM's
// step is done once GCE accepts the insert (accepted: the CAs are then in
// the instance's metadata); what needs the VM follows the wait for its
// operation (done).
func (p *planner) createMaster(key gce.Key, subnet, network string) (accepted, done string) {
	p.needMaster(key.Zone)
	ip := p.reserveIPStep(key.Name, subnet)
	reason := "the first master, on the static IP, with kube-env and serving certificates"
	if p.lbFirst() {
		reason = "the first master (ephemeral IP: the static IP goes on the load balancer from the start)"
	}
	accepted = p.step(ActCreate, gce.Instance(key), reason+p.dataDiskReason(key)+"; it issues the cluster's CAs, which live in its metadata (the node template follows once GCE accepts the insert)",
		func(ctx context.Context) error { return p.createFirstMaster(ctx, key) }, network, ip)
	done = p.wait("wait master "+key.Name, gce.Instance(key), "until its insert's operation is DONE",
		func(ctx context.Context) error { return p.waitInsert(ctx, key) }, accepted)
	return accepted, done
}

// replaceOrphanTemplate deletes, when the cluster has no master, the node
// template and the zone's pool: the CA their nodes trust is no master's
// (the first master's insert failed after the template was made, or the
// masters were deleted), so no Node of theirs could join the new master.
// Pools in other zones were refused before. It returns the deletes.
func (p *planner) replaceOrphanTemplate() []string {
	obs := p.obs
	if len(obs.Masters) > 0 || obs.Template == nil {
		return nil
	}
	migs := p.deletePool(p.cfg.Zone)
	del := p.deleteTemplate(migs...)
	p.plan.Notes = append(p.plan.Notes, fmt.Sprintf("node template %s trusts a CA that no master holds: it is made again, with the zone's pool, from the new master's", obs.Template.Name))
	// What the plan makes from here on is new.
	obs.Template = nil
	delete(obs.Pools, p.cfg.Zone)
	return append(migs, del)
}

// dataDiskReason says how a master's VM gets its etcd data disk: made by
// the instance's insert (one operation instead of a disk's then a VM's), or
// the one an earlier run left.
func (p *planner) dataDiskReason(key gce.Key) string {
	if p.obs.Disks[p.cfg.MasterDiskName(key.Name)] != nil {
		return "; it attaches the etcd data disk " + p.cfg.MasterDiskName(key.Name) + " an earlier run left"
	}
	return fmt.Sprintf("; its insert makes its etcd data disk %s (%s, %d GB, kept when the VM goes)", p.cfg.MasterDiskName(key.Name), p.cfg.MasterDiskType, p.cfg.MasterDiskSizeGB)
}

// reserveIPStep reserves a master's internal IP unless it is reserved.
func (p *planner) reserveIPStep(replica, network string) string {
	name := p.cfg.InternalAddressName(replica)
	if p.obs.InternalIPs[name] != nil {
		return ""
	}
	return p.step(ActCreate, gce.Address(gce.RegionalKey(p.region(), name)), "the internal IP of "+replica+", so its etcd peer URL and certificates can name it before it exists",
		func(ctx context.Context) error { return p.reserveInternalIP(ctx, replica) }, network)
}

// planLBFirst puts the static IP on a forwarding rule from the start.
func (p *planner) planLBFirst(masterStep string) []string {
	hc := p.healthCheckStep("probes each master's /healthz so a halted master leaves the rotation")
	pool := p.step(ActCreate, gce.TargetPool(p.poolKey()), "holds the master replicas behind the static IP",
		p.fillPoolWithMasters, hc, masterStep)
	rule := p.step(ActCreate, gce.ForwardingRule(p.ruleKey()), "the static IP on the load balancer from day one: later replica changes never move it",
		p.createRule, pool)
	return []string{rule}
}

// planNodePool adds a node pool in another zone of the cluster's region.
func planNodePool(ctx context.Context, env *Env, cfg *config.Config, obs *Observed) (*planner, error) {
	p := newPlanner(env, cfg, obs, FlowNodePool)
	if err := p.growPreflight(ctx); err != nil {
		return nil, err
	}
	p.addLock(false)
	podRange, err := p.ensurePodRange()
	if err != nil {
		return nil, err
	}
	template := podRange
	if obs.Template == nil {
		template = p.ensureTemplate(podRange)
		p.plan.Notes = append(p.plan.Notes, "the node template was missing and is recreated")
	}
	stable := p.ensurePool(cfg.Zone, template)
	p.joinKubernetes("", stable, false)
	return p, nil
}
