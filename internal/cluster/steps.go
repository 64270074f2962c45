package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/lb"
)

// What steps do. Each is a method of the run, named for what it does, and
// acts on the resource its arguments name; the planners (up.go, replica.go,
// down.go) decide which run and in what order.

// takeLock reserves the static IP when the cluster is new (it also holds
// the lock), labels it as the cluster's, and takes the lock on it.
func (r *run) takeLock(ctx context.Context, create bool) error {
	c, key := r.env.Cloud, r.addressKey()
	if create && r.obs.Address == nil {
		addr := &compute.Address{Description: gce.Description(r.cfg.ClusterName(), gce.RoleStaticIP, "the Kubernetes API's IP")}
		if err := c.InsertAddress(ctx, key, addr); err != nil && !gce.IsAlreadyExists(err) {
			return fmt.Errorf("reserve static IP %s: %w", key, err)
		}
	}
	// The observation read the address moments ago; the lock's write
	// against its label fingerprint proves nothing changed since.
	a := r.obs.Address
	if a == nil {
		var err error
		if a, err = c.GetAddress(ctx, key); err != nil {
			return fmt.Errorf("read static IP %s: %w", key, err)
		}
	}
	if !gce.Owned(r.cfg.ClusterName(), a.Labels, a.Description) {
		return refuse("address %s exists but does not belong to cluster %q; choose another --prefix", key, r.cfg.ClusterName())
	}
	mode := modeStandard
	if r.cfg.LBFirst {
		mode = modeLBFirst
	}
	if a.Labels[gce.LabelCluster] != r.cfg.ClusterName() || a.Labels[labelMode] == "" {
		// GCE ignores labels given when an address is reserved.
		labels := gce.Labels(r.cfg.ClusterName(), gce.RoleStaticIP)
		for k, v := range a.Labels {
			labels[k] = v
		}
		if labels[labelMode] == "" {
			labels[labelMode] = mode
		}
		if err := c.SetAddressLabels(ctx, key, labels, a.LabelFingerprint); err != nil && !gce.IsPrecondition(err) {
			return fmt.Errorf("label static IP %s: %w", key, err)
		}
		var err error
		if a, err = c.GetAddress(ctx, key); err != nil {
			return fmt.Errorf("read static IP %s: %w", key, err)
		}
	}
	req := r.env.lockRequest(r.flow, r.observedLock())
	req.Seen = a
	lock, err := c.AcquireLock(ctx, key, req)
	if err != nil {
		return err
	}
	if old := lock.Replaced; old != nil {
		how := "that run is gone (its process no longer runs here)"
		if r.env.BreakLock && old.Holder != gce.LabelValue(r.env.Holder) {
			how = "broken with --break-lock"
		}
		r.st.warn(fmt.Sprintf("took over the cluster lock from %s: %s", old, how))
	}
	if m := a.Labels[labelMode]; m != "" {
		mode = m
	}
	r.st.locked(lock, a.Address, mode)
	return nil
}

func (r *run) createNetwork(ctx context.Context) error {
	key := gce.GlobalKey(r.cfg.Network)
	err := r.env.Cloud.InsertAutoNetwork(ctx, key, gce.Description(r.cfg.ClusterName(), gce.RoleNetwork, "created for the cluster"))
	if err != nil && !gce.IsAlreadyExists(err) {
		return fmt.Errorf("create network %s: %w", key, err)
	}
	return nil
}

// createFirewall makes one of kube-up's rules, accepting one that appeared
// meanwhile only when it is the cluster's (a concurrent or earlier run made
// it) or the shared SSH rule.
func (r *run) createFirewall(ctx context.Context, fw *compute.Firewall) error {
	err := r.env.Cloud.InsertFirewall(ctx, gce.GlobalKey(fw.Name), fw)
	if !gce.IsAlreadyExists(err) {
		return wrap(err, "create firewall %s", fw.Name)
	}
	fws, err := r.env.Cloud.ListFirewalls(ctx, fmt.Sprintf("name = %q", fw.Name))
	if err != nil {
		return wrap(err, "read firewall %s", fw.Name)
	}
	for _, got := range fws {
		if gce.OwnedByDescription(r.cfg.ClusterName(), got.Description) || fw.Name == r.cfg.SSHFirewallName() {
			return nil
		}
	}
	return refuse("firewall %s exists but does not belong to cluster %q", fw.Name, r.cfg.ClusterName())
}

// createPool makes one of a zone's node groups from the template.
// The template is named by its observed link, or by the link GCE gives
// it when this run made it; read only when neither is known.
func (r *run) createPool(ctx context.Context, key gce.Key, size int) error {
	link := r.templateKey().Link(r.linkPrefix(), "instanceTemplates")
	if t := r.obs.Template; t != nil {
		link = t.SelfLink
	}
	if link == "" {
		t, err := r.env.Cloud.GetInstanceTemplate(ctx, r.templateKey())
		if err != nil {
			return wrap(err, "read instance template %s", r.templateKey())
		}
		link = t.SelfLink
	}
	err := r.env.Cloud.InsertMIG(ctx, key, nodeGroup(r.cfg, key.Name, size, link))
	if gce.IsAlreadyExists(err) {
		return nil
	}
	return wrap(err, "create node pool %s", key)
}

func (r *run) resizePool(ctx context.Context, key gce.Key, size int) error {
	return wrap(r.env.Cloud.ResizeMIG(ctx, key, int64(size)), "resize node pool %s", key)
}

// lbSpec describes the load balancer for a step's Run; its progress lines
// go to that step (ctx carries its id).
func (r *run) lbSpec(ctx context.Context) *lb.Spec {
	return &lb.Spec{
		Cluster:     r.cfg.ClusterName(),
		Address:     r.addressKey(),
		IP:          r.st.staticIP(),
		Pool:        r.poolKey(),
		Rule:        r.ruleKey(),
		HealthCheck: r.healthCheckKey(),
		LinkPrefix:  r.linkPrefix(),
		APIPort:     r.cfg.APIServerPort,
		HealthPort:  r.cfg.HealthCheckPort,
		Deadline:    r.env.APIDeadline,
		MaxDowntime: r.cfg.MaxDowntime,
		Prober:      r.env.prober(r.cfg, r.st.caPEM()),
		Progress:    func(msg string) { r.env.progress(ctx, "%s", msg) },
	}
}

func (r *run) ensureHealthCheck(ctx context.Context) error {
	return lb.EnsureHealthCheck(ctx, r.env.Cloud, r.lbSpec(ctx))
}

// createHealthCheck makes the health check the observation found missing.
func (r *run) createHealthCheck(ctx context.Context) error {
	return lb.CreateHealthCheck(ctx, r.env.Cloud, r.lbSpec(ctx))
}

// linkPrefix is the project's part of the links GCE gave what the run
// observed ("" when it observed nothing): the load balancer's steps name
// resources by links made from it instead of reading them first.
func (r *run) linkPrefix() string {
	var links []string
	if r.obs.Address != nil {
		links = append(links, r.obs.Address.SelfLink)
	}
	if r.obs.Network != nil {
		links = append(links, r.obs.Network.SelfLink)
	}
	for _, m := range r.obs.Masters {
		links = append(links, m.SelfLink)
	}
	for _, l := range links {
		if p := gce.ProjectPrefix(l); p != "" {
			return p
		}
	}
	return ""
}

// master names a master of the cluster for the load balancer, by the link
// GCE gives it (read back only when the run observed no link to make it
// from).
func (r *run) master(ctx context.Context, key gce.Key) (lb.Master, error) {
	if link := key.Link(r.linkPrefix(), "instances"); link != "" {
		return lb.Master{Key: key, Link: link}, nil
	}
	in, err := r.env.Cloud.GetInstance(ctx, key)
	if err != nil {
		return lb.Master{}, wrap(err, "read replica %s", key)
	}
	return lb.MasterOf(in), nil
}

// fillPool makes sure the target pool exists and holds these masters.
func (r *run) fillPool(ctx context.Context, masters []lb.Master) error {
	return lb.EnsurePool(ctx, r.env.Cloud, r.lbSpec(ctx), masters)
}

// createTargetPool makes the target pool the observation found missing.
func (r *run) createTargetPool(ctx context.Context, masters []lb.Master) error {
	return lb.CreatePool(ctx, r.env.Cloud, r.lbSpec(ctx), masters)
}

// fillPoolWithMasters puts every master of the cluster in the target pool,
// as they are now (the first master may have been created in this run).
func (r *run) fillPoolWithMasters(ctx context.Context) error {
	ins, err := r.env.Cloud.AggregatedInstances(ctx, gce.RoleFilter(r.cfg.ClusterName(), gce.RoleMaster))
	if err != nil {
		return wrap(err, "list masters")
	}
	var masters []lb.Master
	for _, in := range ins {
		if in.Labels[gce.LabelRole] == gce.RoleMaster {
			masters = append(masters, lb.MasterOf(in))
		}
	}
	return r.fillPool(ctx, masters)
}

// joinPool adds one replica to the target pool, which exists by now: the
// observed one, or the one this run made without the replica.
func (r *run) joinPool(ctx context.Context, key gce.Key) error {
	m, err := r.master(ctx, key)
	if err != nil {
		return err
	}
	return lb.JoinPool(ctx, r.env.Cloud, r.lbSpec(ctx), r.obs.TargetPool, m)
}

// waitHealthy waits until the load balancer's health check passes the replica
// (joined: this run has just added it to the pool).
func (r *run) waitHealthy(ctx context.Context, key gce.Key, joined bool) error {
	m, err := r.master(ctx, key)
	if err != nil {
		return err
	}
	return r.env.waitMemberHealthy(ctx, r.poolKey(), m.Link, joined)
}

func (r *run) leavePool(ctx context.Context, m lb.Master) error {
	return lb.RemoveFromPool(ctx, r.env.Cloud, r.lbSpec(ctx), m)
}

func (r *run) createRule(ctx context.Context) error {
	return lb.EnsureRule(ctx, r.env.Cloud, r.lbSpec(ctx))
}

// promote moves the static IP from the master onto the forwarding rule;
// pool is the step that makes the target pool meanwhile ("" none).
func (r *run) promote(ctx context.Context, first lb.Master, pool string) error {
	r.st.moveBegins()
	s := r.lbSpec(ctx)
	if pool != "" {
		s.PoolReady = func(ctx context.Context) error { return awaitStep(ctx, pool) }
	}
	mv, err := lb.Promote(ctx, r.env.Cloud, s, first)
	r.st.record(mv)
	return err
}

// demote gives the static IP back to the last master.
func (r *run) demote(ctx context.Context, last lb.Master) error {
	r.st.moveBegins()
	mv, err := lb.Demote(ctx, r.env.Cloud, r.lbSpec(ctx), last)
	r.st.record(mv)
	return err
}

func (r *run) teardownLB(ctx context.Context) error {
	return lb.Teardown(ctx, r.env.Cloud, r.lbSpec(ctx))
}

// waitServing waits until the API answers on the static IP, its TLS
// verified against the cluster CA.
func (r *run) waitServing(ctx context.Context) error {
	ip, ca := r.st.staticIP(), r.st.caPEM()
	if ip == "" {
		return errors.New("the static IP is unknown")
	}
	if ca == nil {
		return errors.New("the cluster CA is unknown: no master carries kube-master-certs")
	}
	_, err := r.env.prober(r.cfg, ca).WaitServing(ctx, ip, r.env.APIDeadline, func(el time.Duration) {
		r.env.progress(ctx, "waiting for https://%s:%d/healthz: %s elapsed of %s", ip, r.cfg.APIServerPort, el.Round(time.Second), r.env.APIDeadline)
	})
	return err
}

// remove deletes one resource; a resource already gone is fine.
func (r *run) remove(ref gce.Ref) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		c, k := r.env.Cloud, ref.Key
		var err error
		switch ref.Kind {
		case gce.KindInstance:
			err = c.DeleteInstance(ctx, k)
		case gce.KindDisk:
			err = c.DeleteDisk(ctx, k)
		case gce.KindGroup:
			err = c.DeleteMIG(ctx, k)
		case gce.KindTemplate:
			err = c.DeleteInstanceTemplate(ctx, k)
		case gce.KindFirewall:
			err = c.DeleteFirewall(ctx, k)
		case gce.KindAddress:
			err = c.DeleteAddress(ctx, k)
		case gce.KindNetwork:
			err = c.DeleteNetwork(ctx, k)
		case gce.KindForwardingRule:
			err = c.DeleteForwardingRule(ctx, k)
		case gce.KindTargetPool:
			err = c.DeleteTargetPool(ctx, k)
		case gce.KindHealthCheck:
			err = c.DeleteHTTPHealthCheck(ctx, k)
		default:
			return fmt.Errorf("cannot delete a %s", ref.Kind)
		}
		return wrap(err, "delete %s", ref)
	}
}
