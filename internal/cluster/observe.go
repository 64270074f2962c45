package cluster

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/zones"
)

// Observed is what exists of one cluster in GCE: only resources that carry
// the cluster's ownership labels or marker, plus the names it needs that
// something else holds (Conflicts).
type Observed struct {
	Region         string
	Network        *compute.Network
	Firewalls      map[string]*compute.Firewall
	Address        *compute.Address
	Masters        []*compute.Instance // sorted by name
	Disks          map[string]*compute.Disk
	Template       *compute.InstanceTemplate
	MIGs           map[string]*compute.InstanceGroupManager // by zone
	HealthCheck    *compute.HttpHealthCheck
	TargetPool     *compute.TargetPool
	ForwardingRule *compute.ForwardingRule
	Conflicts      []string
	// SharedNetwork is true when other hakube clusters have rules on the
	// cluster's network, so shared rules stay at teardown.
	SharedNetwork bool
}

// Exists reports whether any part of the cluster exists.
func (o *Observed) Exists() bool {
	fws := 0
	for _, fw := range o.Firewalls {
		if fw.Name != "" && !strings.HasSuffix(fw.Name, "-default-ssh") {
			fws++
		}
	}
	return o.Address != nil || len(o.Masters) > 0 || len(o.MIGs) > 0 || o.Template != nil ||
		o.ForwardingRule != nil || o.TargetPool != nil || len(o.Disks) > 0 || o.HealthCheck != nil || fws > 0
}

// MasterIn returns the masters of a zone.
func (o *Observed) MasterIn(zone string) []*compute.Instance {
	var out []*compute.Instance
	for _, m := range o.Masters {
		if gce.LastSegment(m.Zone) == zone {
			out = append(out, m)
		}
	}
	return out
}

// diskNames lists the masters' data disks by name, so plans come out in
// the same order every time.
func (o *Observed) diskNames() []string { return slices.Sorted(maps.Keys(o.Disks)) }

// firewallNames lists the observed firewall rules by name.
func (o *Observed) firewallNames() []string { return slices.Sorted(maps.Keys(o.Firewalls)) }

// MasterZones lists the zones that hold masters, sorted.
func (o *Observed) MasterZones() []string {
	var zs []string
	for _, m := range o.Masters {
		zs = append(zs, gce.LastSegment(m.Zone))
	}
	return zones.Sort(zs)
}

// PoolZones lists the zones that hold node pools, sorted.
func (o *Observed) PoolZones() []string {
	var zs []string
	for z := range o.MIGs {
		zs = append(zs, z)
	}
	return zones.Sort(zs)
}

// Observer reads the cluster. gce.Cloud implements it.
type Observer interface {
	GetNetwork(ctx context.Context, name string) (*compute.Network, error)
	ListFirewalls(ctx context.Context, filter string) ([]*compute.Firewall, error)
	AggregatedAddresses(ctx context.Context, filter string) ([]*compute.Address, error)
	AggregatedInstances(ctx context.Context, filter string) ([]*compute.Instance, error)
	AggregatedDisks(ctx context.Context, filter string) ([]*compute.Disk, error)
	AggregatedMIGs(ctx context.Context, filter string) ([]*compute.InstanceGroupManager, error)
	GetInstanceTemplate(ctx context.Context, name string) (*compute.InstanceTemplate, error)
	GetHTTPHealthCheck(ctx context.Context, name string) (*compute.HttpHealthCheck, error)
	GetTargetPool(ctx context.Context, region, name string) (*compute.TargetPool, error)
	GetForwardingRule(ctx context.Context, region, name string) (*compute.ForwardingRule, error)
}

// Observe reads the cluster with parallel lists: one round of project-wide
// lists and global gets, then the regional gets once the region is known.
func Observe(ctx context.Context, c Observer, cfg *config.Config) (*Observed, error) {
	o := &Observed{Firewalls: map[string]*compute.Firewall{}, Disks: map[string]*compute.Disk{}, MIGs: map[string]*compute.InstanceGroupManager{}}
	cluster := cfg.ClusterName()
	var mu sync.Mutex // guards o.Conflicts across the parallel reads
	conflict := func(format string, args ...any) {
		mu.Lock()
		o.Conflicts = append(o.Conflicts, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	var addresses []*compute.Address
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		n, err := c.GetNetwork(gctx, cfg.Network)
		if gce.IsNotFound(err) {
			return nil
		}
		o.Network = n
		return wrap(err, "read network %s", cfg.Network)
	})
	g.Go(func() error {
		// One list of every rule: the cluster's own, and whether other hakube
		// clusters share the network (the <network>-default-ssh rule is
		// shared, as in kube-up).
		fws, err := c.ListFirewalls(gctx, "")
		if err != nil {
			return wrap(err, "list firewall rules")
		}
		ours := map[string]bool{}
		for _, n := range firewallNames(cfg) {
			ours[n] = true
		}
		for _, fw := range fws {
			switch {
			case fw.Name == cfg.SSHFirewallName():
				o.Firewalls[fw.Name] = fw
			case ours[fw.Name] && gce.OwnedByDescription(cluster, fw.Description):
				o.Firewalls[fw.Name] = fw
			case ours[fw.Name]:
				conflict("firewall rule %s exists but is not cluster %q's", fw.Name, cluster)
			case strings.HasPrefix(fw.Description, "hakube-cluster=") && gce.LastSegment(fw.Network) == cfg.Network:
				o.SharedNetwork = true
			}
		}
		return nil
	})
	g.Go(func() error {
		as, err := c.AggregatedAddresses(gctx, fmt.Sprintf("name = %q", cfg.StaticIPName()))
		addresses = as
		return wrap(err, "list addresses")
	})
	g.Go(func() error {
		ins, err := c.AggregatedInstances(gctx, gce.ClusterFilter(cluster))
		if err != nil {
			return wrap(err, "list instances")
		}
		for _, in := range ins {
			if in.Labels[gce.LabelRole] == gce.RoleMaster {
				o.Masters = append(o.Masters, in)
			}
		}
		sort.Slice(o.Masters, func(i, j int) bool { return o.Masters[i].Name < o.Masters[j].Name })
		return nil
	})
	g.Go(func() error {
		ds, err := c.AggregatedDisks(gctx, gce.ClusterFilter(cluster))
		if err != nil {
			return wrap(err, "list disks")
		}
		for _, d := range ds {
			if d.Labels[gce.LabelRole] == gce.RoleMasterDisk {
				o.Disks[d.Name] = d
			}
		}
		return nil
	})
	g.Go(func() error {
		ms, err := c.AggregatedMIGs(gctx, fmt.Sprintf("name = %q", cfg.NodeGroupName()))
		if err != nil {
			return wrap(err, "list managed instance groups")
		}
		for _, m := range ms {
			if gce.OwnedByDescription(cluster, m.Description) {
				o.MIGs[gce.LastSegment(m.Zone)] = m
			} else {
				conflict("managed instance group %s in %s exists but is not cluster %q's", m.Name, gce.LastSegment(m.Zone), cluster)
			}
		}
		return nil
	})
	g.Go(func() error {
		t, err := c.GetInstanceTemplate(gctx, cfg.NodeTemplateName())
		switch {
		case gce.IsNotFound(err):
			return nil
		case err != nil:
			return wrap(err, "read instance template %s", cfg.NodeTemplateName())
		case gce.OwnedByDescription(cluster, t.Description):
			o.Template = t
		default:
			conflict("instance template %s exists but is not cluster %q's", t.Name, cluster)
		}
		return nil
	})
	g.Go(func() error {
		hc, err := c.GetHTTPHealthCheck(gctx, cfg.HealthCheckName())
		switch {
		case gce.IsNotFound(err):
			return nil
		case err != nil:
			return wrap(err, "read health check %s", cfg.HealthCheckName())
		case gce.OwnedByDescription(cluster, hc.Description):
			o.HealthCheck = hc
		default:
			conflict("HTTP health check %s exists but is not cluster %q's", hc.Name, cluster)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}

	// The cluster's region: its static IP's, else its masters', else the
	// configured zone's.
	var owned []*compute.Address
	for _, a := range addresses {
		if gce.Owned(cluster, a.Labels, a.Description) {
			owned = append(owned, a)
		} else if cfg.Zone == "" || gce.LastSegment(a.Region) == cfg.Region() {
			conflict("address %s in %s exists but is not cluster %q's", a.Name, gce.LastSegment(a.Region), cluster)
		}
	}
	regions := map[string]bool{}
	for _, a := range owned {
		regions[gce.LastSegment(a.Region)] = true
	}
	for _, m := range o.Masters {
		regions[zones.Region(gce.LastSegment(m.Zone))] = true
	}
	switch {
	case len(regions) > 1:
		var rs []string
		for r := range regions {
			rs = append(rs, r)
		}
		sort.Strings(rs)
		if cfg.Zone == "" || !regions[cfg.Region()] {
			return nil, fmt.Errorf("cluster %q has resources in several regions (%s); pass --zone to choose one", cluster, strings.Join(rs, ", "))
		}
		o.Region = cfg.Region()
	case len(regions) == 1:
		for r := range regions {
			o.Region = r
		}
	case cfg.Zone != "":
		o.Region = cfg.Region()
	}
	for _, a := range owned {
		if gce.LastSegment(a.Region) == o.Region {
			o.Address = a
		}
	}
	if o.Region == "" {
		return o, nil
	}
	g, gctx = errgroup.WithContext(ctx)
	g.Go(func() error {
		tp, err := c.GetTargetPool(gctx, o.Region, cfg.TargetPoolName())
		switch {
		case gce.IsNotFound(err):
			return nil
		case err != nil:
			return wrap(err, "read target pool %s", cfg.TargetPoolName())
		case gce.OwnedByDescription(cluster, tp.Description):
			o.TargetPool = tp
		default:
			conflict("target pool %s exists but is not cluster %q's", tp.Name, cluster)
		}
		return nil
	})
	g.Go(func() error {
		fr, err := c.GetForwardingRule(gctx, o.Region, cfg.ForwardingRuleName())
		switch {
		case gce.IsNotFound(err):
			return nil
		case err != nil:
			return wrap(err, "read forwarding rule %s", cfg.ForwardingRuleName())
		case gce.Owned(cluster, fr.Labels, fr.Description):
			o.ForwardingRule = fr
		default:
			conflict("forwarding rule %s exists but is not cluster %q's", fr.Name, cluster)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Strings(o.Conflicts)
	return o, nil
}

// firewallNames are the firewall rules a cluster has, kube-up's names.
func firewallNames(cfg *config.Config) []string {
	return []string{
		cfg.MasterHTTPSFirewallName(), cfg.MasterEtcdFirewallName(), cfg.NodeAllFirewallName(),
		cfg.InternalMasterFirewallName(), cfg.InternalNodeFirewallName(), cfg.SSHFirewallName(),
	}
}

func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
