package cluster

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/kube"
	"github.com/hakube/hakube/internal/vmcontract"
	"github.com/hakube/hakube/internal/zones"
)

// Observed is what exists of one cluster in GCE: only resources that carry
// the cluster's ownership labels or marker, plus the names it needs that
// something else holds (Conflicts).
type Observed struct {
	Region  string
	Network *compute.Network
	// Subnetwork is the region's subnetwork of the network (the VMs' and
	// their alias ranges'); PodRange its secondary range of the cluster's
	// pods (nil when missing).
	Subnetwork *compute.Subnetwork
	PodRange   *compute.SubnetworkSecondaryRange
	// OtherSubnetworks are the network's subnetworks of other regions,
	// whose ranges the pods' range must not overlap either.
	OtherSubnetworks []*compute.Subnetwork
	Firewalls        map[string]*compute.Firewall
	Address          *compute.Address
	// InternalIPs are the masters' reserved internal IPs, by address name.
	InternalIPs map[string]*compute.Address
	Masters     []*compute.Instance // sorted by name
	Disks       map[string]*compute.Disk
	Template    *compute.InstanceTemplate
	// Pools are each zone's node groups, sorted by name (one, unless the
	// pool holds more than MAX_INSTANCES_PER_MIG nodes).
	Pools          map[string][]*compute.InstanceGroupManager
	HealthCheck    *compute.HttpHealthCheck
	TargetPool     *compute.TargetPool
	ForwardingRule *compute.ForwardingRule
	Conflicts      []string
	// Etcd is the membership, read for the flows that change it and for
	// status (nil when not read).
	Etcd *membership
	// Nodes are the cluster's Nodes, read through the API for the flows
	// that repair them (nil when not read or not readable).
	Nodes []kube.Node
	// SharedNetwork is true when other hakube clusters have rules on the
	// cluster's network, so shared rules stay at teardown.
	SharedNetwork bool
	// otherDisks are disks named as masters' data disks that are not the
	// cluster's.
	otherDisks []gce.Key
	// addresses are the listed addresses the region and the IPs come from.
	addresses []*compute.Address
	// scope are the parts the observation holds: readAll, or the parts a
	// flow touches (scopeOf); the others are absent, not missing.
	scope reads
}

// Exists reports whether any part of the cluster exists.
func (o *Observed) Exists() bool {
	fws := 0
	for _, fw := range o.Firewalls {
		if fw.Name != "" && !strings.HasSuffix(fw.Name, "-default-ssh") {
			fws++
		}
	}
	return o.Address != nil || len(o.Masters) > 0 || len(o.Pools) > 0 || o.Template != nil ||
		o.ForwardingRule != nil || o.TargetPool != nil || len(o.Disks) > 0 || o.HealthCheck != nil || fws > 0 ||
		o.PodRange != nil
}

// holds reports whether the observation read part r (or took it from one
// that did): an Observed made by hand holds everything.
func (o *Observed) holds(r reads) bool { return o.scope == 0 || o.scope&r == r }

// inZone reports whether the cluster has a master, a node group or a
// master's disk in the zone: GCE made them there, so the zone exists.
func (o *Observed) inZone(zone string) bool {
	if len(o.MasterIn(zone)) > 0 || len(o.Pools[zone]) > 0 {
		return true
	}
	for _, d := range o.Disks {
		if gce.KeyOf(d.SelfLink).Zone == zone {
			return true
		}
	}
	return false
}

// MasterIn returns the masters of a zone.
func (o *Observed) MasterIn(zone string) []*compute.Instance {
	var out []*compute.Instance
	for _, m := range o.Masters {
		if gce.KeyOf(m.SelfLink).Zone == zone {
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
		zs = append(zs, gce.KeyOf(m.SelfLink).Zone)
	}
	return zones.Sort(zs)
}

// PoolZones lists the zones that hold node pools, sorted.
func (o *Observed) PoolZones() []string {
	return zones.Sort(slices.Collect(maps.Keys(o.Pools)))
}

// Observer reads the cluster. gce.Cloud implements it.
type Observer interface {
	GetNetwork(ctx context.Context, k gce.Key) (*compute.Network, error)
	ListFirewalls(ctx context.Context, filter string) ([]*compute.Firewall, error)
	AggregatedAddresses(ctx context.Context, filter string) ([]*compute.Address, error)
	AggregatedInstances(ctx context.Context, filter string) ([]*compute.Instance, error)
	AggregatedDisks(ctx context.Context, filter string) ([]*compute.Disk, error)
	AggregatedMIGs(ctx context.Context, filter string) ([]*compute.InstanceGroupManager, error)
	GetInstanceTemplate(ctx context.Context, k gce.Key) (*compute.InstanceTemplate, error)
	GetHTTPHealthCheck(ctx context.Context, k gce.Key) (*compute.HttpHealthCheck, error)
	GetTargetPool(ctx context.Context, k gce.Key) (*compute.TargetPool, error)
	GetForwardingRule(ctx context.Context, k gce.Key) (*compute.ForwardingRule, error)
	AggregatedSubnetworks(ctx context.Context, filter string) ([]*compute.Subnetwork, error)
}

// observation collects one Observe's parallel reads.
type observation struct {
	o   *Observed
	cfg *config.Config
	mu  sync.Mutex // guards o.Conflicts
	// reads are the parts to read; the others are prev's.
	reads reads
	prev  *Observed
}

// reads are the parts of an observation, one request (or one list) each,
// so that the verification pass re-reads only what the run changed.
type reads uint16

const (
	readNetwork reads = 1 << iota
	readFirewalls
	readAddresses
	readInstances
	readDisks
	readGroups
	readTemplate
	readHealthCheck
	readTargetPool
	readSubnetworks
	readForwardingRule
	readAll = 1<<iota - 1
)

// read reports whether part r is read (else it is prev's).
func (ob *observation) read(r reads) bool { return ob.reads&r != 0 }

// goRead runs f in g when part r is read.
func (ob *observation) goRead(g *errgroup.Group, r reads, f func() error) {
	if ob.read(r) {
		g.Go(f)
	}
}

func (ob *observation) conflict(format string, args ...any) {
	ob.mu.Lock()
	ob.o.Conflicts = append(ob.o.Conflicts, fmt.Sprintf(format, args...))
	ob.mu.Unlock()
}

// getOwned reads one resource the cluster needs by name: absent is nil,
// someone else's is a conflict (nil too), only the cluster's is returned.
func getOwned[T any](ctx context.Context, ob *observation, what string, key gce.Key,
	get func(context.Context, gce.Key) (T, error), owned func(T) bool) (T, error) {
	var none T
	v, err := get(ctx, key)
	switch {
	case gce.IsNotFound(err):
		return none, nil
	case err != nil:
		return none, fmt.Errorf("read %s %s: %w", what, key.Name, err)
	case owned(v):
		return v, nil
	}
	ob.conflict("%s %s exists but is not cluster %q's", what, key, ob.cfg.ClusterName())
	return none, nil
}

// Observe reads the cluster with parallel lists: one round of project-wide
// lists and global gets, then the regional gets once the region is known.
func Observe(ctx context.Context, c Observer, cfg *config.Config) (*Observed, error) {
	return observe(ctx, c, cfg, nil, readAll)
}

// observeScope reads only the parts in scope: what a flow touches.
func observeScope(ctx context.Context, c Observer, cfg *config.Config, scope reads) (*Observed, error) {
	return observe(ctx, c, cfg, &Observed{scope: scope}, scope)
}

// scopeOf is what a flow reads of the cluster. A replica's flow changes
// masters, their disks and IPs, etcd and the load balancer: the network,
// its rules, the node pools and their template are not its business. A
// node pool's flow changes a pool and maybe the template, reads the
// masters for its VMs' kube-env and the load balancer for the summary,
// but not their disks, the network or its rules. Every other flow (and
// status) reads everything.
func scopeOf(cfg *config.Config, command string) reads {
	switch {
	case command != "up":
		return readAll
	case cfg.UseExistingMaster:
		return readAll &^ (readNetwork | readFirewalls | readDisks)
	case cfg.ReplicateMaster:
		return readAll &^ (readNetwork | readFirewalls | readGroups | readTemplate)
	}
	return readAll
}

// observe reads the parts of the cluster in parts and takes the others
// from prev, an observation of the same cluster that nothing has changed
// those parts of since; it keeps prev's scope. A prev with conflicts is
// read again in all its scope: they are not kept per part.
func observe(ctx context.Context, c Observer, cfg *config.Config, prev *Observed, parts reads) (*Observed, error) {
	scope := reads(readAll)
	if prev != nil && prev.scope != 0 {
		scope = prev.scope
	}
	if prev == nil || len(prev.Conflicts) > 0 {
		prev, parts = &Observed{}, scope
	}
	parts &= scope
	ob := &observation{cfg: cfg, reads: parts, prev: prev, o: &Observed{scope: scope, Firewalls: map[string]*compute.Firewall{}, Disks: map[string]*compute.Disk{}, Pools: map[string][]*compute.InstanceGroupManager{}, InternalIPs: map[string]*compute.Address{}}}
	if parts != readAll {
		ob.keep()
	}
	if err := ob.project(ctx, c); err != nil {
		return nil, err
	}
	if err := ob.region(); err != nil {
		return nil, err
	}
	if ob.o.Region != "" {
		if err := ob.regional(ctx, c); err != nil {
			return nil, err
		}
	}
	sort.Strings(ob.o.Conflicts)
	return ob.o, nil
}

// project is the first round: the project-wide lists and the global gets.
func (ob *observation) project(ctx context.Context, c Observer) error {
	o, cfg, cluster := ob.o, ob.cfg, ob.cfg.ClusterName()
	g, gctx := errgroup.WithContext(ctx)
	ob.goRead(g, readNetwork, func() error {
		n, err := c.GetNetwork(gctx, gce.GlobalKey(cfg.Network))
		if gce.IsNotFound(err) {
			return nil
		}
		o.Network = n
		return wrap(err, "read network %s", cfg.Network)
	})
	ob.goRead(g, readFirewalls, func() error { return ob.firewalls(gctx, c) })
	ob.goRead(g, readAddresses, func() error {
		// The static IP and the masters' internal IPs: every name starts
		// with the master's (GCE ignores labels given when an address is
		// reserved, so the name and the description say whose it is).
		as, err := c.AggregatedAddresses(gctx, fmt.Sprintf("name eq %s.*", regexp.QuoteMeta(cfg.MasterName())))
		o.addresses = as
		return wrap(err, "list addresses")
	})
	ob.goRead(g, readInstances, func() error {
		ins, err := c.AggregatedInstances(gctx, gce.RoleFilter(cluster, gce.RoleMaster))
		if err != nil {
			return wrap(err, "list instances")
		}
		for _, in := range ins {
			if in.Labels[gce.LabelRole] == gce.RoleMaster {
				o.Masters = append(o.Masters, in)
			}
		}
		slices.SortFunc(o.Masters, func(a, b *compute.Instance) int { return strings.Compare(a.Name, b.Name) })
		return nil
	})
	ob.goRead(g, readDisks, func() error {
		// By the masters' data disk names, not by label: GCE attaches a
		// disk that has the name a new master's insert gives its data
		// disk, so one that is not the cluster's must be seen beforehand.
		ds, err := c.AggregatedDisks(gctx, fmt.Sprintf("name eq '%s(-[a-z0-9]+)?-pd'", regexp.QuoteMeta(cfg.MasterName())))
		if err != nil {
			return wrap(err, "list disks")
		}
		for _, d := range ds {
			if d.Labels[gce.LabelCluster] == cluster && d.Labels[gce.LabelRole] == gce.RoleMasterDisk {
				o.Disks[d.Name] = d
			} else {
				o.otherDisks = append(o.otherDisks, gce.KeyOf(d.SelfLink))
			}
		}
		return nil
	})
	ob.goRead(g, readGroups, func() error {
		ms, err := c.AggregatedMIGs(gctx, fmt.Sprintf("name eq '%s(-[0-9]+)?'", regexp.QuoteMeta(cfg.NodeGroupName())))
		if err != nil {
			return wrap(err, "list managed instance groups")
		}
		for _, m := range ms {
			k := gce.KeyOf(m.SelfLink)
			switch {
			case !cfg.IsNodeGroup(m.Name):
			case gce.OwnedByDescription(cluster, m.Description):
				o.Pools[k.Zone] = append(o.Pools[k.Zone], m)
			default:
				ob.conflict("managed instance group %s exists but is not cluster %q's", k, cluster)
			}
		}
		for _, groups := range o.Pools {
			slices.SortFunc(groups, func(a, b *compute.InstanceGroupManager) int { return strings.Compare(a.Name, b.Name) })
		}
		return nil
	})
	ob.goRead(g, readTemplate, func() (err error) {
		o.Template, err = getOwned(gctx, ob, "instance template", gce.GlobalKey(cfg.NodeTemplateName()), c.GetInstanceTemplate,
			func(t *compute.InstanceTemplate) bool { return gce.OwnedByDescription(cluster, t.Description) })
		return err
	})
	ob.goRead(g, readHealthCheck, func() (err error) {
		o.HealthCheck, err = getOwned(gctx, ob, "HTTP health check", gce.GlobalKey(cfg.HealthCheckName()), c.GetHTTPHealthCheck,
			func(hc *compute.HttpHealthCheck) bool { return gce.OwnedByDescription(cluster, hc.Description) })
		return err
	})
	return g.Wait()
}

// firewalls reads every rule once: the cluster's own, and whether other
// hakube clusters share the network (the <network>-default-ssh rule is
// shared, as in kube-up).
func (ob *observation) firewalls(ctx context.Context, c Observer) error {
	o, cfg, cluster := ob.o, ob.cfg, ob.cfg.ClusterName()
	fws, err := c.ListFirewalls(ctx, "")
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
			ob.conflict("firewall rule %s exists but is not cluster %q's", fw.Name, cluster)
		case strings.HasPrefix(fw.Description, "hakube-cluster=") && gce.KeyOf(fw.Network).Name == cfg.Network:
			o.SharedNetwork = true
		}
	}
	return nil
}

// region settles the cluster's region: its static IP's, else its masters',
// else the configured zone's.
func (ob *observation) region() error {
	o, cfg, cluster := ob.o, ob.cfg, ob.cfg.ClusterName()
	var owned []*compute.Address
	for _, a := range o.addresses {
		k := gce.KeyOf(a.SelfLink)
		if a.Name != cfg.StaticIPName() {
			if a.AddressType == "INTERNAL" && strings.HasSuffix(a.Name, "-internal") && gce.OwnedByDescription(cluster, a.Description) {
				o.InternalIPs[a.Name] = a
			}
			continue
		}
		if gce.Owned(cluster, a.Labels, a.Description) {
			owned = append(owned, a)
		} else if cfg.Zone == "" || k.Region == cfg.Region() {
			ob.conflict("address %s exists but is not cluster %q's", k, cluster)
		}
	}
	regions := map[string]bool{}
	for _, a := range owned {
		regions[gce.KeyOf(a.SelfLink).Region] = true
	}
	for _, m := range o.Masters {
		regions[zones.Region(gce.KeyOf(m.SelfLink).Zone)] = true
	}
	switch {
	case len(regions) > 1:
		if cfg.Zone == "" || !regions[cfg.Region()] {
			return fmt.Errorf("cluster %q has resources in several regions (%s); pass --zone to choose one",
				cluster, strings.Join(slices.Sorted(maps.Keys(regions)), ", "))
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
		if gce.KeyOf(a.SelfLink).Region == o.Region {
			o.Address = a
		}
	}
	return nil
}

// regional is the second round: the load balancer's regional pieces.
func (ob *observation) regional(ctx context.Context, c Observer) error {
	o, cfg, cluster := ob.o, ob.cfg, ob.cfg.ClusterName()
	if o.Region != ob.prev.Region {
		// prev's regional parts are another region's.
		ob.reads |= (readTargetPool | readSubnetworks | readForwardingRule) & ob.o.scope
	}
	if ob.read(readSubnetworks) && ob.o.scope != readAll {
		// A flow that does not add the pods' range needs to know only that
		// it exists: a master's alias range taken from it proves it does.
		if r := podRangeOfMasters(o.Masters, cfg.PodRangeName()); r != nil {
			o.PodRange, ob.reads = r, ob.reads&^readSubnetworks
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	ob.goRead(g, readTargetPool, func() (err error) {
		o.TargetPool, err = getOwned(gctx, ob, "target pool", gce.RegionalKey(o.Region, cfg.TargetPoolName()), c.GetTargetPool,
			func(tp *compute.TargetPool) bool { return gce.OwnedByDescription(cluster, tp.Description) })
		return err
	})
	ob.goRead(g, readSubnetworks, func() error {
		// The secondary range is known by its name only: GCE keeps no
		// labels or description on it. Every region's subnetwork of the
		// network is read, in one call, since ranges may not overlap
		// anywhere in a network.
		sns, err := c.AggregatedSubnetworks(gctx, fmt.Sprintf("network eq '.*/global/networks/%s'", cfg.Network))
		if err != nil {
			return wrap(err, "list the subnetworks of network %s", cfg.Network)
		}
		for _, sn := range sns {
			if gce.KeyOf(sn.SelfLink).Region != o.Region || sn.Name != cfg.Network {
				o.OtherSubnetworks = append(o.OtherSubnetworks, sn)
				continue
			}
			o.Subnetwork = sn
			for _, r := range sn.SecondaryIpRanges {
				if r.RangeName == cfg.PodRangeName() {
					o.PodRange = r
				}
			}
		}
		return nil
	})
	ob.goRead(g, readForwardingRule, func() (err error) {
		o.ForwardingRule, err = getOwned(gctx, ob, "forwarding rule", gce.RegionalKey(o.Region, cfg.ForwardingRuleName()), c.GetForwardingRule,
			func(fr *compute.ForwardingRule) bool { return gce.Owned(cluster, fr.Labels, fr.Description) })
		return err
	})
	return g.Wait()
}

// podRangeOfMasters is the pods' range as the masters' alias ranges name
// it (only its name: GCE gives a VM's range, not the range's), or nil.
func podRangeOfMasters(masters []*compute.Instance, name string) *compute.SubnetworkSecondaryRange {
	for _, m := range masters {
		for _, nic := range m.NetworkInterfaces {
			for _, r := range nic.AliasIpRanges {
				if r.SubnetworkRangeName == name {
					return &compute.SubnetworkSecondaryRange{RangeName: name}
				}
			}
		}
	}
	return nil
}

// clusterCA is the cluster CA certificate a master carries, or nil.
func clusterCA(obs *Observed) []byte {
	for _, m := range obs.Masters {
		if v := metadataValue(m, vmcontract.KeyMasterCerts); v != "" {
			if ca, err := caFromMetadata(v); err == nil {
				return ca
			}
		}
	}
	return nil
}

// clusterMode is how the cluster fronts its API, as its static IP records.
func clusterMode(obs *Observed) string {
	if obs.Address == nil {
		return ""
	}
	return obs.Address.Labels[labelMode]
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
