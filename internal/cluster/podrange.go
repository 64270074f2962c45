package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/gce"
)

// The pods' addresses: a secondary range of the region's subnetwork, named
// for the cluster, of which GCE gives every VM a /24 as an alias IP range
// (masters and nodes: every kubelet runs pods). The VMs' startup scripts
// give that /24 to their pods; the VPC routes it to the VM. kube-up v1.35
// does the same (IP aliases are its default).

// podRangeSize is each VM's alias range, as the startup script expects.
const podRangeSize = "/24"

func (r *run) subnetworkKey() gce.Key { return gce.RegionalKey(r.region(), r.cfg.Network) }

// ensurePodRange adds the cluster's secondary range to the subnetwork when
// it is missing and returns its step ("" when it is there). A range that
// overlaps another of the network's is refused before any change.
func (p *planner) ensurePodRange(deps ...string) (string, error) {
	if p.obs.PodRange != nil {
		return "", nil
	}
	for _, sn := range append([]*compute.Subnetwork{p.obs.Subnetwork}, p.obs.OtherSubnetworks...) {
		if sn == nil {
			continue
		}
		if err := podRangeFits(p.cfg.ClusterIPRange, p.cfg.PodRangeName(), sn, sn == p.obs.Subnetwork); err != nil {
			return "", err
		}
	}
	return p.step(ActUpdate, gce.Subnetwork(p.subnetworkKey()),
		fmt.Sprintf("add secondary range %s %s: every VM's pods get a %s of it as an alias IP range", p.cfg.PodRangeName(), p.cfg.ClusterIPRange, podRangeSize),
		p.addPodRange, deps...), nil
}

// podRangeFits refuses a pods' range that overlaps a subnetwork's own
// range or another secondary range (another cluster's pods, say). own is
// the cluster's subnetwork, where the range of its name is its own.
func podRangeFits(cidr, name string, sn *compute.Subnetwork, own bool) error {
	want, err := netip.ParsePrefix(cidr)
	if err != nil {
		return refuse("CLUSTER_IP_RANGE %q is not a CIDR", cidr)
	}
	others := []struct{ name, cidr string }{{"the subnet's own range", sn.IpCidrRange}}
	for _, r := range sn.SecondaryIpRanges {
		if r.RangeName != name || !own {
			others = append(others, struct{ name, cidr string }{"secondary range " + r.RangeName, r.IpCidrRange})
		}
	}
	for _, o := range others {
		if p, err := netip.ParsePrefix(o.cidr); err == nil && p.Overlaps(want) {
			return refuse("CLUSTER_IP_RANGE %s overlaps %s %s of subnet %s: choose a free range (CLUSTER_IP_RANGE, --cluster-ip-range)", cidr, o.name, o.cidr, gce.KeyOf(sn.SelfLink))
		}
	}
	return nil
}

// addPodRange and removePodRange change the subnetwork's secondary ranges
// with the fingerprint they read; a 412 (another cluster changed them
// meanwhile) re-reads and tries again.
func (r *run) addPodRange(ctx context.Context) error {
	return r.patchRanges(ctx, func(ranges []*compute.SubnetworkSecondaryRange) ([]*compute.SubnetworkSecondaryRange, error) {
		for _, x := range ranges {
			if x.RangeName == r.cfg.PodRangeName() {
				if x.IpCidrRange != r.cfg.ClusterIPRange {
					return nil, fmt.Errorf("secondary range %s is %s, not CLUSTER_IP_RANGE %s", x.RangeName, x.IpCidrRange, r.cfg.ClusterIPRange)
				}
				return nil, nil // there already: nothing to patch
			}
		}
		return append(ranges, &compute.SubnetworkSecondaryRange{RangeName: r.cfg.PodRangeName(), IpCidrRange: r.cfg.ClusterIPRange}), nil
	})
}

func (r *run) removePodRange(ctx context.Context) error {
	return r.patchRanges(ctx, func(ranges []*compute.SubnetworkSecondaryRange) ([]*compute.SubnetworkSecondaryRange, error) {
		kept := slices.DeleteFunc(slices.Clone(ranges), func(x *compute.SubnetworkSecondaryRange) bool { return x.RangeName == r.cfg.PodRangeName() })
		if len(kept) == len(ranges) {
			return nil, nil
		}
		return kept, nil
	})
}

// patchRanges applies change (nil: nothing to do) to the current ranges.
func (r *run) patchRanges(ctx context.Context, change func([]*compute.SubnetworkSecondaryRange) ([]*compute.SubnetworkSecondaryRange, error)) error {
	key := r.subnetworkKey()
	for attempt := 1; ; attempt++ {
		sn, err := r.env.Cloud.GetSubnetwork(ctx, key)
		if gce.IsNotFound(err) {
			return fmt.Errorf("subnetwork %s: none in %s: the pods' range needs the network's subnetwork of the region (an auto-mode network has one)", key.Name, key.Region)
		}
		if err != nil {
			return wrap(err, "read subnetwork %s", key)
		}
		ranges, err := change(sn.SecondaryIpRanges)
		if err != nil || ranges == nil {
			return err
		}
		err = r.env.Cloud.SetSecondaryRanges(ctx, key, sn.Fingerprint, ranges)
		if !gce.IsPrecondition(err) || attempt == 5 {
			return wrap(err, "change the secondary ranges of subnetwork %s", key)
		}
	}
}
