package cluster

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"
	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/lb"
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
}

// PoolStatus is one zone's node pool.
type PoolStatus struct {
	Name       string `json:"name"`
	TargetSize int64  `json:"targetSize"`
	Running    int    `json:"running"`
	Stable     bool   `json:"stable"`
}

// GetStatus reads the cluster and probes its API.
func GetStatus(ctx context.Context, env *Env, cfg *config.Config) (*Status, error) {
	env.defaults()
	cfg, obs, err := observeAdopted(ctx, env.Cloud, cfg, "status")
	if err != nil {
		return nil, err
	}
	return statusOf(ctx, env, cfg, obs, true)
}

// statusOf renders what was observed. With probe it also asks the API, the
// load balancer and the pools how they are doing (a few more calls); without,
// it costs no call (the summary after a flow).
func statusOf(ctx context.Context, env *Env, cfg *config.Config, obs *Observed, probe bool) (*Status, error) {
	st := &Status{Cluster: cfg.ClusterName(), Project: cfg.Project, Region: obs.Region, Exists: obs.Exists(), Conflicts: obs.Conflicts}
	if !st.Exists {
		return st, nil
	}
	st.Mode = modeOf(obs)
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
	for z, mig := range obs.MIGs {
		zone(z).Pool = &PoolStatus{Name: mig.Name, TargetSize: mig.TargetSize, Stable: mig.Status != nil && mig.Status.IsStable}
	}
	for _, z := range slices.Sorted(maps.Keys(byZone)) {
		st.Zones = append(st.Zones, *byZone[z])
	}
	if probe {
		probeStatus(ctx, env, cfg, obs, st)
	}
	return st, nil
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
			key := gce.ZonalKey(z.Zone, ps.Name)
			g.Go(func() error {
				ins, err := env.Cloud.ListManagedInstances(gctx, key)
				if err != nil {
					return nil // shown as 0 running; status is best effort per pool
				}
				n := 0
				for _, in := range ins {
					if in.InstanceStatus == "RUNNING" {
						n++
					}
				}
				set(func() { ps.Running = n })
				return nil
			})
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
	return out
}
