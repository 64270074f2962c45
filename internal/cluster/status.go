package cluster

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/etcdm"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/kube"
	"github.com/hakube/hakube/internal/lb"
	"github.com/hakube/hakube/internal/vmcontract"
)

// Status is what `hakube status` shows: per zone, the master replicas and
// the node pool; the static IP and who holds it; the load balancer.
type Status struct {
	Cluster      string        `json:"cluster"`
	Project      string        `json:"project"`
	Region       string        `json:"region,omitempty"`
	Exists       bool          `json:"exists"`
	Mode         string        `json:"mode,omitempty"` // single-master, load-balanced, lb-first
	StaticIP     *IPStatus     `json:"staticIP,omitempty"`
	LoadBalancer *LBStatus     `json:"loadBalancer,omitempty"`
	Zones        []ZoneStatus  `json:"zones"`
	Lock         *gce.LockInfo `json:"lock,omitempty"`
	Conflicts    []string      `json:"conflicts,omitempty"`
	// Unobserved are what the flow that rendered the status did not read
	// (a replica's flow does not list the node pools): `hakube status`
	// reads everything.
	Unobserved []string `json:"unobserved,omitempty"`
	// From the cluster itself: the apiserver's /readyz through the static
	// IP, its Nodes, and etcd's members.
	API   *APIStatus  `json:"api,omitempty"`
	Nodes []kube.Node `json:"nodes,omitempty"`
	Etcd  *EtcdStatus `json:"etcd,omitempty"`
}

// APIStatus is the apiserver's own view, through the static IP.
type APIStatus struct {
	Ready bool   `json:"ready"`
	Error string `json:"error,omitempty"`
}

// EtcdStatus is etcd's membership, each member's health and the leader.
type EtcdStatus struct {
	Members []etcdm.Member `json:"members"`
	Via     string         `json:"via,omitempty"` // the master it was listed through
	Error   string         `json:"error,omitempty"`
	// Phantoms are members whose VM is gone; Missing are masters without a
	// member. A re-run of the flow that left them repairs them.
	Phantoms []string `json:"phantoms,omitempty"`
	Missing  []string `json:"missing,omitempty"`
}

// IPStatus is the static IP and its holder.
type IPStatus struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Port    int    `json:"port"` // the API's HTTPS port
	Status  string `json:"status"`
	Owner   string `json:"owner"` // "instance <name>", "forwarding-rule <name>" or "none"
	Serving bool   `json:"serving"`
}

// LBStatus is the masters' load balancer.
type LBStatus struct {
	ForwardingRule string `json:"forwardingRule,omitempty"`
	TargetPool     string `json:"targetPool,omitempty"`
	HealthCheck    string `json:"healthCheck,omitempty"`
}

// ZoneStatus is one zone of the cluster.
type ZoneStatus struct {
	Zone    string         `json:"zone"`
	Masters []MasterStatus `json:"masters,omitempty"`
	Pool    *PoolStatus    `json:"pool,omitempty"`
}

// MasterStatus is one master replica.
type MasterStatus struct {
	Name       string `json:"name"`
	Status     string `json:"status"`
	InternalIP string `json:"internalIP,omitempty"`
	ExternalIP string `json:"externalIP,omitempty"`
	Ready      bool   `json:"ready"`
	// Health is the load balancer's view (HEALTHY/UNHEALTHY), when there is one.
	Health string `json:"health,omitempty"`
	InPool bool   `json:"inPool"`
	// NodeReady is its Node's Ready condition (nil: not registered or not known).
	NodeReady *bool `json:"nodeReady,omitempty"`
	// Member is its etcd member (nil: none, or not known).
	Member *etcdm.Member `json:"member,omitempty"`
	// Bootstrap is what its startup reported (guest attribute
	// hakube/bootstrap): ok, running <step>, failed at <step>: <reason>;
	// empty when it reported nothing yet.
	Bootstrap string `json:"bootstrap,omitempty"`
}

// PoolStatus is one zone's node pool: one managed instance group, or
// several when the zone holds more nodes than one group may.
type PoolStatus struct {
	Name       string   `json:"name"`
	Groups     []string `json:"groups,omitempty"` // all its groups, when more than one
	TargetSize int64    `json:"targetSize"`
	Running    int      `json:"running"`
	Stable     bool     `json:"stable"`
	NodesReady int      `json:"nodesReady"`
	// BootstrapFailed are the VMs without a Ready Node whose startup
	// reported a failure ("<vm>: failed at <step>: <reason>"; a sample).
	BootstrapFailed []string `json:"bootstrapFailed,omitempty"`
	vms             []string
}

// GetStatus reads the cluster and probes its API. After the observation,
// its three reads are independent and run at once: etcd's membership over
// SSH, the probes of the API, the load balancer and the pools, and the
// cluster's own view through its API (the Node list, the longest at 5,000
// nodes).
func GetStatus(ctx context.Context, env *Env, cfg *config.Config) (*Status, error) {
	env.defaults()
	start := time.Now()
	cfg, obs, err := observeAdopted(ctx, env.Cloud, cfg, "status")
	if err != nil {
		return nil, err
	}
	env.Log.Debug("status read", zap.String("read", "observation"), zap.Duration("took", time.Since(start)))
	st := statusOf(cfg, obs)
	if !st.Exists {
		return st, nil
	}
	var api apiView
	g, gctx := errgroup.WithContext(ctx)
	// timed logs each read's duration at debug level (-vv): what a slow
	// status spent its time on.
	timed := func(what string, f func() error) func() error {
		return func() error {
			start := time.Now()
			err := f()
			env.Log.Debug("status read", zap.String("read", what), zap.Duration("took", time.Since(start)))
			return err
		}
	}
	if len(obs.Masters) > 0 {
		// Read-only: without hakube's SSH key on the masters etcd is unknown.
		g.Go(timed("etcd members", func() error { _, err := readEtcd(gctx, env, obs, true); return err }))
	}
	g.Go(timed("probes and groups", func() error { probeStatus(gctx, env, cfg, obs, st); return nil }))
	g.Go(timed("API and Nodes", func() error { api = readAPI(gctx, env, cfg, obs); return nil }))
	if err := g.Wait(); err != nil {
		return nil, err
	}
	clusterStatus(ctx, env, obs, st, api)
	return st, nil
}

// statusOf renders what was observed, without a call (the summary after a
// flow, and the start of GetStatus).
func statusOf(cfg *config.Config, obs *Observed) *Status {
	st := &Status{Cluster: cfg.ClusterName(), Project: cfg.Project, Region: obs.Region, Exists: obs.Exists(), Conflicts: obs.Conflicts}
	if !st.Exists {
		return st
	}
	st.Mode = modeOf(obs)
	if !obs.holds(readGroups) {
		st.Unobserved = append(st.Unobserved, "node pools")
	}
	if obs.ForwardingRule != nil || obs.TargetPool != nil || obs.HealthCheck != nil {
		st.LoadBalancer = &LBStatus{}
		if obs.ForwardingRule != nil {
			st.LoadBalancer.ForwardingRule = obs.ForwardingRule.Name
		}
		if obs.TargetPool != nil {
			st.LoadBalancer.TargetPool = obs.TargetPool.Name
		}
		if obs.HealthCheck != nil {
			st.LoadBalancer.HealthCheck = obs.HealthCheck.Name
		}
	}
	if a := obs.Address; a != nil {
		st.StaticIP = &IPStatus{Name: a.Name, Address: a.Address, Port: cfg.APIServerPort, Status: a.Status, Owner: "none"}
		switch owner := lb.IPOwner(a); owner.Kind {
		case lb.OwnerMaster:
			st.StaticIP.Owner = "instance " + owner.Instance
		case lb.OwnerLB:
			st.StaticIP.Owner = "forwarding-rule " + cfg.ForwardingRuleName()
		}
		if info := gce.LockInfoOf(a.Labels); info.Held() {
			st.Lock = &info
		}
	}
	byZone := map[string]*ZoneStatus{}
	zone := func(z string) *ZoneStatus {
		if byZone[z] == nil {
			byZone[z] = &ZoneStatus{Zone: z}
		}
		return byZone[z]
	}
	for _, m := range obs.Masters {
		ms := MasterStatus{Name: m.Name, Status: m.Status, InternalIP: internalIP(m), ExternalIP: natIP(m)}
		if obs.TargetPool != nil {
			ms.InPool = slices.Contains(obs.TargetPool.Instances, m.SelfLink)
		}
		z := zone(gce.KeyOf(m.SelfLink).Zone)
		z.Masters = append(z.Masters, ms)
	}
	for z, groups := range obs.Pools {
		ps := &PoolStatus{Name: groups[0].Name, Stable: true}
		for _, mig := range groups {
			ps.TargetSize += mig.TargetSize
			ps.Stable = ps.Stable && mig.Status != nil && mig.Status.IsStable
			if len(groups) > 1 {
				ps.Groups = append(ps.Groups, mig.Name)
			}
		}
		zone(z).Pool = ps
	}
	for _, z := range slices.Sorted(maps.Keys(byZone)) {
		st.Zones = append(st.Zones, *byZone[z])
	}
	return st
}

// apiView is the cluster's own view through its API on the static IP.
type apiView struct {
	api   *APIStatus
	nodes []kube.Node
}

// readAPI asks the API for /readyz and the Nodes, at once. Without a
// client (no cluster CA yet) it reports why, when there is a static IP to
// ask.
func readAPI(ctx context.Context, env *Env, cfg *config.Config, obs *Observed) apiView {
	r := &run{env: env, cfg: cfg, obs: obs, st: newRunState(obs)}
	c, err := r.kubeClient()
	if err != nil {
		if obs.Address != nil { // statusOf shows it as the StaticIP
			return apiView{api: &APIStatus{Error: err.Error()}}
		}
		return apiView{}
	}
	kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v := apiView{api: &APIStatus{Ready: true}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if nodes, err := c.Nodes(kctx); err == nil {
			v.nodes = nodes
		}
	}()
	if err := c.Readyz(kctx); err != nil {
		v.api = &APIStatus{Error: err.Error()}
	}
	wg.Wait()
	return v
}

// clusterStatus adds the cluster's own view: /readyz, the Nodes (per master
// its Node's Ready, per pool how many are Ready) and etcd's members (per
// master its member; phantoms and masters without one).
func clusterStatus(ctx context.Context, env *Env, obs *Observed, st *Status, v apiView) {
	st.API, st.Nodes = v.api, v.nodes
	ready := map[string]bool{}
	for _, n := range st.Nodes {
		ready[n.Name] = n.Ready
	}
	if m := obs.Etcd; m != nil {
		st.Etcd = &EtcdStatus{Members: m.members, Via: m.via}
		if m.err != nil {
			st.Etcd.Error = m.err.Error()
		}
	}
	ips := map[string]string{}
	for _, in := range obs.Masters {
		ips[in.Name] = internalIP(in)
	}
	for zi := range st.Zones {
		z := &st.Zones[zi]
		for i := range z.Masters {
			ms := &z.Masters[i]
			if r, ok := ready[ms.Name]; ok {
				ms.NodeReady = &r
			}
			if obs.Etcd != nil && obs.Etcd.err == nil {
				if mem := obs.Etcd.of(ips[ms.Name]); mem != nil {
					ms.Member = mem
				} else {
					st.Etcd.Missing = append(st.Etcd.Missing, ms.Name)
				}
			}
		}
		if ps := z.Pool; ps != nil {
			var notReady []string
			for _, vm := range ps.vms {
				if ready[vm] {
					ps.NodesReady++
				} else {
					notReady = append(notReady, vm)
				}
			}
			ps.BootstrapFailed = failedBootstraps(ctx, env, z.Zone, notReady)
		}
	}
	if st.Etcd != nil {
		for _, mem := range st.Etcd.Members {
			if !slices.ContainsFunc(obs.Masters, func(in *compute.Instance) bool {
				return slices.Contains(mem.PeerURLs, vmcontract.EtcdPeerURL(internalIP(in)))
			}) {
				st.Etcd.Phantoms = append(st.Etcd.Phantoms, memberName(mem, obs.Masters, ""))
			}
		}
	}
}

// modeOf names how the cluster fronts its API.
func modeOf(obs *Observed) string {
	switch {
	case obs.ForwardingRule != nil && clusterMode(obs) == modeLBFirst:
		return "lb-first"
	case obs.ForwardingRule != nil:
		return "load-balanced"
	case len(obs.Masters) > 0:
		return "single-master"
	}
	return ""
}

// probeStatus asks, in parallel, whether the API answers on the static IP
// and on each master, how the load balancer sees each master, and how many
// of each pool's VMs run. Each probe writes only its own entry.
func probeStatus(ctx context.Context, env *Env, cfg *config.Config, obs *Observed, st *Status) {
	ca := clusterCA(obs)
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(env.Parallelism)
	set := func(f func()) { mu.Lock(); f(); mu.Unlock() }
	if ip := st.StaticIP; ip != nil && ca != nil {
		g.Go(func() error {
			err := env.prober(cfg, ca).Probe(gctx, ip.Address)
			set(func() { ip.Serving = err == nil })
			return nil
		})
	}
	masters := map[string]*compute.Instance{}
	for _, m := range obs.Masters {
		masters[m.Name] = m
	}
	for zi := range st.Zones {
		z := &st.Zones[zi]
		for i := range z.Masters {
			ms, in := &z.Masters[i], masters[z.Masters[i].Name]
			if running(in) && ms.ExternalIP != "" && ca != nil && obs.Address != nil {
				g.Go(func() error {
					pr := env.prober(cfg, ca)
					pr.ServerName = obs.Address.Address
					err := pr.Probe(gctx, ms.ExternalIP)
					set(func() { ms.Ready = err == nil })
					return nil
				})
			}
			if running(in) {
				g.Go(func() error {
					b := bootstrapOf(gctx, env.Cloud, gce.KeyOf(in.SelfLink))
					set(func() { ms.Bootstrap = b })
					return nil
				})
			}
			if ms.InPool && obs.HealthCheck != nil {
				g.Go(func() error {
					h, err := env.Cloud.TargetPoolHealth(gctx, gce.KeyOf(obs.TargetPool.SelfLink), in.SelfLink)
					if err != nil {
						h = "UNKNOWN"
					}
					set(func() { ms.Health = h })
					return nil
				})
			}
		}
		if ps := z.Pool; ps != nil {
			for _, mig := range obs.Pools[z.Zone] {
				g.Go(func() error {
					ins, err := env.Cloud.ListManagedInstances(gctx, gce.KeyOf(mig.SelfLink))
					if err != nil {
						return nil // counted as not running; status is best effort per group
					}
					n := 0
					var vms []string
					for _, in := range ins {
						if in.InstanceStatus == "RUNNING" {
							n++
						}
						vms = append(vms, gce.KeyOf(in.Instance).Name)
					}
					set(func() { ps.Running, ps.vms = ps.Running+n, append(ps.vms, vms...) })
					return nil
				})
			}
		}
	}
	_ = g.Wait()
}

// Problems lists what keeps a cluster from fully serving (empty: healthy).
func Problems(st *Status) []string {
	if !st.Exists {
		return []string{fmt.Sprintf("cluster %q does not exist", st.Cluster)}
	}
	var out []string
	if st.StaticIP == nil {
		out = append(out, "the static IP is missing")
	} else if !st.StaticIP.Serving {
		out = append(out, fmt.Sprintf("the API does not answer on the static IP %s (held by %s)", st.StaticIP.Address, st.StaticIP.Owner))
	}
	masters := 0
	for _, z := range st.Zones {
		for _, m := range z.Masters {
			masters++
			switch {
			case m.Status != "RUNNING":
				out = append(out, fmt.Sprintf("master %s in %s is %s", m.Name, z.Zone, m.Status))
			case !m.Ready:
				out = append(out, fmt.Sprintf("master %s in %s does not answer", m.Name, z.Zone))
			case m.Health == "UNHEALTHY":
				out = append(out, fmt.Sprintf("master %s in %s fails the load balancer's health check", m.Name, z.Zone))
			}
		}
		if p := z.Pool; p != nil && (int64(p.Running) < p.TargetSize || !p.Stable) {
			out = append(out, fmt.Sprintf("node pool %s in %s runs %d of %d nodes", p.Name, z.Zone, p.Running, p.TargetSize))
		}
	}
	if masters == 0 {
		out = append(out, "the cluster has no master")
	}
	return append(out, clusterProblems(st)...)
}

// clusterProblems are what the cluster itself says is wrong: the API not
// ready, Nodes not Ready, etcd unhealthy or not one member per master.
func clusterProblems(st *Status) []string {
	var out []string
	if st.API != nil && !st.API.Ready {
		out = append(out, "the apiserver is not ready: "+st.API.Error)
	}
	for _, n := range st.Nodes {
		if !n.Ready {
			out = append(out, fmt.Sprintf("node %s is not Ready", n.Name))
		}
	}
	for _, z := range st.Zones {
		for _, m := range z.Masters {
			if vmcontract.ParseBootstrap(m.Bootstrap).State == "failed" {
				out = append(out, fmt.Sprintf("master %s: its startup %s (gcloud compute instances get-serial-port-output %s --zone %s shows its log)", m.Name, m.Bootstrap, m.Name, z.Zone))
			}
			if m.NodeReady == nil && st.API != nil && st.API.Ready {
				out = append(out, fmt.Sprintf("master %s has no Node", m.Name))
			}
		}
		if p := z.Pool; p != nil && st.API != nil && st.API.Ready && p.NodesReady < len(p.vms) {
			out = append(out, fmt.Sprintf("node pool %s in %s has %d of %d Nodes Ready", p.Name, z.Zone, p.NodesReady, len(p.vms)))
		}
		if p := z.Pool; p != nil {
			for _, f := range p.BootstrapFailed {
				out = append(out, fmt.Sprintf("node %s (serial console: hakube-bootstrap lines)", f))
			}
		}
	}
	e := st.Etcd
	if e == nil {
		return out
	}
	if e.Error != "" {
		return append(out, "etcd's membership cannot be read: "+e.Error)
	}
	for _, m := range e.Members {
		switch {
		case m.Learner:
			out = append(out, fmt.Sprintf("etcd member %s is a learner, not yet a voter", orID(m)))
		case !m.Healthy:
			out = append(out, fmt.Sprintf("etcd member %s is not healthy", orID(m)))
		}
	}
	for _, p := range e.Phantoms {
		out = append(out, fmt.Sprintf("etcd member %s has no VM (re-run the flow that left it, e.g. hakube down --delete-nodes=false --zone <zone>)", p))
	}
	for _, m := range e.Missing {
		out = append(out, fmt.Sprintf("master %s has no etcd member", m))
	}
	return out
}

func orID(m etcdm.Member) string {
	if m.Name != "" {
		return m.Name
	}
	return m.IDHex
}

// bootstrapOf reads what a VM's startup reported: "" when it reported
// nothing (yet), "unknown: …" when it could not be read.
func bootstrapOf(ctx context.Context, c *gce.Cloud, k gce.Key) string {
	items, err := c.GuestAttributes(ctx, k, vmcontract.GuestAttrBootstrap)
	switch {
	case gce.IsNotFound(err):
		return ""
	case err != nil:
		return "unknown: " + err.Error()
	}
	for _, it := range items {
		if it.Namespace == vmcontract.GuestAttrNamespace && it.Key == vmcontract.GuestAttrBootstrapKey {
			return it.Value
		}
	}
	return ""
}

// bootstrapSample bounds how many not-Ready nodes of a pool status asks
// about their startup: enough to show a pattern, not a call per node of a
// 1,000-node pool that is still booting.
const bootstrapSample = 10

// failedBootstraps asks a sample of a pool's not-Ready VMs how their
// startup went and returns the failures.
func failedBootstraps(ctx context.Context, env *Env, zone string, vms []string) []string {
	if len(vms) > bootstrapSample {
		vms = vms[:bootstrapSample]
	}
	out := make([]string, len(vms))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(env.Parallelism)
	for i, vm := range vms {
		g.Go(func() error {
			if b := bootstrapOf(gctx, env.Cloud, gce.ZonalKey(zone, vm)); vmcontract.ParseBootstrap(b).State == "failed" {
				out[i] = vm + ": " + b
			}
			return nil
		})
	}
	_ = g.Wait()
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}
