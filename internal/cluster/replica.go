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
// builds the load balancer: the health check first, then the target pool
// holding the masters (reversible) beside the start of the outage window,
// in which the static IP moves from the first master to the forwarding
// rule once the pool is there.
func planReplica(ctx context.Context, env *Env, cfg *config.Config, obs *Observed) (*planner, error) {
	p := newPlanner(env, cfg, obs, FlowReplica)
	if err := p.growPreflight(ctx); err != nil {
		return nil, err
	}
	source := p.healthyMaster()
	if source == nil {
		return nil, refuse("no running master of cluster %q to clone from (%s); start one first", cfg.ClusterName(), describeMasters(obs.Masters))
	}
	if err := p.etcdReady(); err != nil {
		return nil, err
	}
	p.addLock(false)

	// One replica per zone keeps re-runs safe: a replica already in the zone
	// is completed, not duplicated.
	replica, exists := p.replicaOf(cfg.Zone)
	key := p.masterKey(cfg.Zone, replica)
	member := p.obs.Etcd.of(p.replicaIP(replica))
	if member == nil {
		if err := p.quorumAllowsAdding(); err != nil {
			return nil, err
		}
	}
	podRange, err := p.ensurePodRange()
	if err != nil {
		return nil, err
	}
	learner, replicaStep := "", ""
	if !exists {
		ip := p.reserveIPStep(replica, podRange)
		if member == nil {
			learner = p.step(ActCreate, text("etcd learner "+replica), "the new member, added through "+p.obs.Etcd.via+" before its VM exists (a learner: it does not vote until it has caught up)",
				func(ctx context.Context) error { return p.addLearner(ctx, replica) }, ip)
		}
		replicaStep = p.addReplicaVM(key, source, learner, ip, podRange)
	} else if member == nil {
		return nil, refuse("replica %s exists but has no etcd member; remove it (hakube down --replica %s --delete-nodes=false) and add it again", replica, replica)
	}
	promote := ""
	if member == nil || member.Learner {
		promote = p.step(ActUpdate, text("etcd member "+replica), "promote the learner to a voter once it has caught up with the leader; one that never does is removed",
			func(ctx context.Context) error { return p.promoteLearner(ctx, replica) }, replicaStep, learner)
	}

	// The load balancer: its reversible pieces, then the IP move.
	hc := p.healthCheckStep("probes each master's /healthz so a halted replica leaves the rotation")
	// A replica that is new or not a voter yet joins the pool only once it
	// votes, by its own step; the pool is filled with the others first.
	joinLater := replicaStep != "" || promote != "" ||
		(replica != cfg.MasterName() && (obs.TargetPool == nil || !memberOf(obs.TargetPool, replica, obs.Masters)))
	pool := p.poolHoldsMasters(cfg.Zone, joinLater, hc)
	move := ""
	if owner := lb.IPOwner(obs.Address); owner.Kind != lb.OwnerLB || obs.ForwardingRule == nil {
		first := p.ipHolder(owner)
		if first == nil {
			return nil, refuse("the static IP %s is on %s, which is not a master of cluster %q", p.st.staticIP(), owner.Instance, cfg.ClusterName())
		}
		// After the learner's add: the move takes the first master's
		// external IP, and with it the SSH tunnel etcd is reached through.
		move = p.promoteStep(lb.MasterOf(first), hc, pool, learner)
	}
	add := ""
	if joinLater || (obs.TargetPool != nil && !memberOf(obs.TargetPool, replica, obs.Masters)) {
		// Not after the IP's move: a pool without a forwarding rule gets no
		// traffic, and the health check keeps the replica out of rotation
		// until its apiserver is ready, so it may join (and turn healthy)
		// while the rule propagates.
		add = p.step(ActUpdate, text(gce.TargetPool(p.poolKey()).String()+" += "+replica), "the new replica joins the load balancer once its etcd member votes",
			func(ctx context.Context) error { return p.joinPool(ctx, key) }, replicaStep, promote, pool)
	}
	// Waited for on every run while the replica runs, so that a re-run after
	// a stop between its join and its health still checks it (one call when
	// it is healthy).
	if add != "" || (obs.TargetPool != nil && slices.ContainsFunc(obs.MasterIn(cfg.Zone), running)) {
		p.wait("wait healthy "+replica, gce.Instance(key), "until the replica answers the load balancer's health check",
			func(ctx context.Context) error { return p.waitHealthy(ctx, key, add != "") }, add)
	}
	verify := ""
	if p.plan.Mutations() > 0 {
		verify = p.verifyAPI("the API answers on the static IP through the load balancer", move, add)
	}
	// The flow changes masters only: their Nodes are the ones to wait for.
	for _, m := range obs.Masters {
		if running(m) && m.Name != replica {
			p.masterNodes = append(p.masterNodes, m.Name)
		}
	}
	p.masterNodes = append(p.masterNodes, replica)
	slices.Sort(p.masterNodes)
	p.joinKubernetes(verify, nil, false)
	return p, nil
}

// replicaIP is a replica's internal IP as observed ("" when not reserved).
func (p *planner) replicaIP(replica string) string {
	if a := p.obs.InternalIPs[p.cfg.InternalAddressName(replica)]; a != nil {
		return a.Address
	}
	return ""
}

// replicaOf names the zone's replica: the one there, the one whose disk an
// earlier run left, or a new one.
func (p *planner) replicaOf(zone string) (name string, exists bool) {
	if in := p.obs.MasterIn(zone); len(in) > 0 {
		return in[0].Name, true
	}
	if name := p.orphanReplicaDisk(); name != "" {
		return name, false
	}
	return p.newReplicaName(), false
}

// addReplicaVM adds the step that makes a replica's VM (and, in the same
// insert, its etcd data disk).
func (p *planner) addReplicaVM(key gce.Key, source *compute.Instance, deps ...string) string {
	p.needMaster(key.Zone)
	return p.step(ActCreate, gce.Instance(key), fmt.Sprintf("new master replica on its internal IP; kube-env cloned from %s with etcd membership rewritten, certificates issued from the cluster's CAs", source.Name)+p.dataDiskReason(key),
		func(ctx context.Context) error { return p.createReplica(ctx, key, source) }, deps...)
}

// poolHoldsMasters makes the target pool hold the masters that exist
// before the forwarding rule takes the static IP; the zone's replica joins
// later when it is new.
func (p *planner) poolHoldsMasters(zone string, newReplica bool, hc string) string {
	var existing []lb.Master
	for _, m := range p.obs.Masters {
		if gce.KeyOf(m.SelfLink).Zone != zone || !newReplica {
			existing = append(existing, lb.MasterOf(m))
		}
	}
	tp := p.obs.TargetPool
	missing := tp == nil || slices.ContainsFunc(existing, func(m lb.Master) bool { return !slices.Contains(tp.Instances, m.Link) })
	if !missing {
		return ""
	}
	const why = "holds the existing masters before the forwarding rule takes the static IP (reversible)"
	if tp == nil {
		return p.step(ActCreate, gce.TargetPool(p.poolKey()), why,
			func(ctx context.Context) error { return p.createTargetPool(ctx, existing) }, hc)
	}
	return p.step(ActUpdate, gce.TargetPool(p.poolKey()), why,
		func(ctx context.Context) error { return p.fillPool(ctx, existing) }, hc)
}

// promoteStep is the outage window of the first replica. Only the
// forwarding rule's insert needs the target pool (pool, when this run makes
// or fills it): the static IP's detach, which takes about as long as the
// pool's insert, starts with it, once the health check (hc) is there, so
// that the IP leaves the master about when the pool can take it. Waiting
// for the pool first would add the detach to the flow's critical path.
func (p *planner) promoteStep(first lb.Master, hc, pool string, deps ...string) string {
	reason := "the outage window: delete the master's static access config, insert the forwarding rule on the IP (the master's new ephemeral IP in parallel), then wait until the IP serves again"
	var awaits []string
	if pool != "" {
		deps = append(deps, hc)
		awaits = []string{pool}
		reason = "the outage window: delete the master's static access config while the target pool is made, insert the forwarding rule on the IP once the pool holds the masters (the master's new ephemeral IP in parallel), then wait until the IP serves again; the IP goes back to the master if the pool fails"
	}
	return p.plan.add(&Step{
		Action: ActMove, Mutating: true, Outage: true,
		Resource:  fmt.Sprintf("static IP %s: instance %s → forwarding-rule %s", p.cfg.StaticIPName(), first.Name, p.cfg.ForwardingRuleName()),
		Reason:    reason,
		DependsOn: compact(append([]string{p.lockID}, deps...)),
		Awaits:    awaits,
		Run:       func(ctx context.Context) error { return p.promote(ctx, first, pool) },
	})
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
			return slices.Contains(tp.Instances, m.SelfLink)
		}
	}
	return false
}

// orphanReplicaDisk finds a replica data disk in the zone without its VM: an
// earlier run stopped between the two, and the re-run reuses the name.
func (p *planner) orphanReplicaDisk() string {
	for _, name := range p.obs.diskNames() {
		d := p.obs.Disks[name]
		if gce.KeyOf(d.SelfLink).Zone != p.cfg.Zone || !strings.HasSuffix(name, "-pd") {
			continue
		}
		replica := strings.TrimSuffix(name, "-pd")
		if strings.HasPrefix(replica, p.cfg.MasterName()+"-") && !slices.Contains(p.masterNames(), replica) {
			return replica
		}
	}
	return ""
}

// newReplicaName picks <master>-<3 chars> not used by any master or disk.
// The suffix is drawn deterministically from the cluster, the zone and what
// exists, so a dry run names the replica the real run will create, and a
// re-run after a crash reuses the internal IP (and etcd learner) the
// earlier run left for that name.
func (p *planner) newReplicaName() string {
	for i := 0; ; i++ {
		name := p.cfg.ReplicaName(suffixFor(fmt.Sprintf("%s/%s/%d", p.cfg.ClusterName(), p.cfg.Zone, i), 3))
		if !slices.Contains(p.masterNames(), name) && p.obs.Disks[p.cfg.MasterDiskName(name)] == nil {
			return name
		}
	}
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
