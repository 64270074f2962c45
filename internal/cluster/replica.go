package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"

	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/lb"
)

// planReplica adds a master replica in the zone. The first replica also
// builds the load balancer: everything reversible first (health check,
// target pool holding the masters), then the outage window in which the
// static IP moves from the first master to the forwarding rule.
func planReplica(ctx context.Context, env *Env, cfg *config.Config, obs *Observed) (*planner, error) {
	p := newPlanner(env, cfg, obs, FlowReplica)
	if err := p.growPreflight(ctx); err != nil {
		return nil, err
	}
	source := p.healthyMaster()
	if source == nil {
		return nil, refuse("no running master of cluster %q to clone from (%s); start one first", cfg.ClusterName(), describeMasters(obs.Masters))
	}
	p.addLock(false)

	// One replica per zone keeps re-runs safe: a replica already in the zone
	// is completed, not duplicated.
	replica, diskExists := "", false
	if in := obs.MasterIn(cfg.Zone); len(in) > 0 {
		replica = in[0].Name
	} else if name := p.orphanReplicaDisk(); name != "" {
		replica, diskExists = name, true
	} else {
		replica = p.newReplicaName()
	}
	replicaStep := ""
	if len(obs.MasterIn(cfg.Zone)) == 0 {
		p.needMaster(cfg.Zone)
		disk := ""
		if !diskExists {
			disk = p.step(ActCreate, fmt.Sprintf("disk %s (%s)", cfg.MasterDiskName(replica), cfg.Zone),
				fmt.Sprintf("etcd data of the new replica (%s, %d GB)", cfg.MasterDiskType, cfg.MasterDiskSizeGB),
				func(ctx context.Context) error { return p.createMasterDisk(ctx, replica, cfg.Zone) })
		}
		replicaStep = p.step(ActCreate, fmt.Sprintf("instance %s (%s)", replica, cfg.Zone),
			fmt.Sprintf("new master replica; kube-env cloned from %s with etcd membership rewritten", source.Name),
			func(ctx context.Context) error { return p.createReplica(ctx, replica, source) }, disk)
	}

	// The load balancer.
	pool := ""
	hc := p.healthCheckStep("probes each master's /healthz so a halted replica leaves the rotation")
	existing := make([]lb.Master, 0, len(obs.Masters))
	for _, m := range obs.Masters {
		if gce.LastSegment(m.Zone) != cfg.Zone || replicaStep == "" {
			existing = append(existing, lb.MasterOf(m))
		}
	}
	missing := obs.TargetPool == nil
	for _, m := range existing {
		if obs.TargetPool != nil && !contains(obs.TargetPool.Instances, m.Link) {
			missing = true
		}
	}
	if missing {
		action := ActCreate
		if obs.TargetPool != nil {
			action = ActUpdate
		}
		pool = p.step(action, fmt.Sprintf("target-pool %s (%s)", cfg.TargetPoolName(), p.region()),
			"holds the existing masters before anything moves (reversible)",
			func(ctx context.Context) error { return lb.EnsurePool(ctx, p.env.Cloud, p.lbSpec(ctx), existing) }, hc)
	}
	move := ""
	owner := lb.IPOwner(obs.Address)
	if owner.Kind != lb.OwnerLB || obs.ForwardingRule == nil {
		first := p.ipHolder(owner)
		if first == nil {
			return nil, refuse("the static IP %s is on %s, which is not a master of cluster %q", p.staticIP(), owner.Instance, cfg.ClusterName())
		}
		move = p.plan.add(&Step{
			Action: ActMove, Mutating: true, Outage: true,
			Resource:  fmt.Sprintf("static IP %s: instance %s → forwarding-rule %s", cfg.StaticIPName(), first.Name, cfg.ForwardingRuleName()),
			Reason:    "the outage window: delete the master's static access config, insert the forwarding rule on the IP (the master's new ephemeral IP in parallel), then wait until the IP serves again",
			DependsOn: compact([]string{p.lockID, pool}),
			Run: func(ctx context.Context) error {
				mv, err := lb.Promote(ctx, p.env.Cloud, p.lbSpec(ctx), lb.MasterOf(first))
				p.record(mv)
				return err
			},
		})
	}
	add := ""
	if replicaStep != "" || (obs.TargetPool != nil && !memberOf(obs.TargetPool, replica, obs.Masters)) {
		add = p.step(ActUpdate, fmt.Sprintf("target-pool %s (%s)", cfg.TargetPoolName(), p.region())+" += "+replica,
			"the new replica joins the load balancer",
			func(ctx context.Context) error {
				in, err := p.env.Cloud.GetInstance(ctx, cfg.Zone, replica)
				if err != nil {
					return wrap(err, "read replica %s", replica)
				}
				return lb.EnsurePool(ctx, p.env.Cloud, p.lbSpec(ctx), []lb.Master{lb.MasterOf(in)})
			}, replicaStep, pool, move)
		id := "wait healthy " + replica
		p.plan.add(&Step{ID: id, Action: ActWait, Resource: "instance " + replica, DependsOn: []string{add},
			Reason: "until the replica answers the load balancer's health check",
			Run: func(ctx context.Context) error {
				in, err := p.env.Cloud.GetInstance(ctx, cfg.Zone, replica)
				if err != nil {
					return wrap(err, "read replica %s", replica)
				}
				return p.env.waitMemberHealthy(ctx, p.region(), cfg.TargetPoolName(), in.SelfLink)
			}})
	}
	if p.plan.Mutations() > 0 {
		p.verifyAPI("the API answers on the static IP through the load balancer", move, add)
	}
	return p, nil
}

// ipHolder returns the master that holds (or, after an interrupted move,
// should hold) the static IP.
func (p *planner) ipHolder(owner lb.Owner) *compute.Instance {
	for _, m := range p.obs.Masters {
		if owner.Kind == lb.OwnerMaster && m.Name == owner.Instance {
			return m
		}
	}
	if owner.Kind == lb.OwnerMaster {
		return nil
	}
	// Nobody (an interrupted move) or the rule: the first master by name.
	if len(p.obs.Masters) > 0 {
		return p.obs.Masters[0]
	}
	return nil
}

func memberOf(tp *compute.TargetPool, name string, masters []*compute.Instance) bool {
	for _, m := range masters {
		if m.Name == name {
			return contains(tp.Instances, m.SelfLink)
		}
	}
	return false
}

// orphanReplicaDisk finds a replica data disk in the zone without its VM: an
// earlier run stopped between the two, and the re-run reuses the name.
func (p *planner) orphanReplicaDisk() string {
	for _, name := range p.obs.diskNames() {
		d := p.obs.Disks[name]
		if gce.LastSegment(d.Zone) != p.cfg.Zone || !strings.HasSuffix(name, "-pd") {
			continue
		}
		replica := strings.TrimSuffix(name, "-pd")
		if !strings.HasPrefix(replica, p.cfg.MasterName()+"-") {
			continue
		}
		if !contains(p.masterNames(), replica) {
			return replica
		}
	}
	return ""
}

// newReplicaName picks <master>-<3 chars> not used by any master or disk.
// The suffix is drawn deterministically from the cluster, the zone and what
// exists, so a dry run names the replica the real run will create.
func (p *planner) newReplicaName() string {
	for i := 0; ; i++ {
		name := p.cfg.ReplicaName(suffixFor(fmt.Sprintf("%s/%s/%d", p.cfg.ClusterName(), p.cfg.Zone, i), 3))
		if !slices.Contains(p.masterNames(), name) && p.obs.Disks[p.cfg.MasterDiskName(name)] == nil {
			return name
		}
	}
}

// createReplica clones the source master's kube-env with the etcd
// membership rewritten, and creates the VM with an ephemeral IP.
func (p *planner) createReplica(ctx context.Context, name string, source *compute.Instance) error {
	env, err := ParseKubeEnv(metadataValue(source, MetaKubeEnv))
	if err != nil {
		return fmt.Errorf("read kube-env of %s: %w", source.Name, err)
	}
	members := append(splitList(env.Get("INITIAL_ETCD_CLUSTER")), p.masterNames()...)
	env.Set("INITIAL_ETCD_CLUSTER", etcdCluster(append(members, name)...))
	env.Set("INITIAL_ETCD_CLUSTER_STATE", "existing")
	env.Set("ZONE", p.cfg.Zone)
	env.Set("HOSTNAME", name)
	certs := metadataValue(source, MetaMasterCerts)
	if certs == "" {
		return fmt.Errorf("master %s has no %s metadata to clone", source.Name, MetaMasterCerts)
	}
	err = p.env.Cloud.InsertInstance(ctx, p.cfg.Zone, masterInstance(p.cfg, name, p.cfg.Zone, "", env, certs))
	if gce.IsAlreadyExists(err) {
		return p.adoptMaster(ctx, p.cfg.Zone, name)
	}
	return wrap(err, "create replica %s", name)
}

func describeMasters(ms []*compute.Instance) string {
	if len(ms) == 0 {
		return "there are none"
	}
	var parts []string
	for _, m := range ms {
		parts = append(parts, fmt.Sprintf("%s is %s", m.Name, m.Status))
	}
	return strings.Join(parts, ", ")
}
