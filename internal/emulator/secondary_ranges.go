// A subnetwork's secondary IP ranges, where instances' alias IP ranges come
// from: checked on insert and on subnetworks.patch, which adds or removes
// them under the subnetwork's fingerprint.

package emulator

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	compute "google.golang.org/api/compute/v1"
)

// netRange is one range of a network: a subnetwork's primary range or one
// of its secondary ranges.
type netRange struct {
	prefix         netip.Prefix
	subnet, region string
}

// networkRanges lists the ranges of every subnetwork of n but the one
// whose selfLink is except: GCE keeps all of a network's ranges apart.
func (p *project) networkRanges(n *compute.Network, except string) []netRange {
	var out []netRange
	for _, sn := range p.subnetworks.list("") {
		if sn.Network != n.SelfLink || sn.SelfLink == except {
			continue
		}
		r := lastSegment(sn.Region)
		if pr, err := netip.ParsePrefix(sn.IpCidrRange); err == nil {
			out = append(out, netRange{pr, sn.Name, r})
		}
		for _, sr := range sn.SecondaryIpRanges {
			if pr, err := netip.ParsePrefix(sr.IpCidrRange); err == nil {
				out = append(out, netRange{pr, sn.Name, r})
			}
		}
	}
	return out
}

// overlapping returns the first range that overlaps pr.
func overlapping(ranges []netRange, pr netip.Prefix) (netRange, bool) {
	for _, r := range ranges {
		if r.prefix.Overlaps(pr) {
			return r, true
		}
	}
	return netRange{}, false
}

// errRangeConflict is GCE's answer to a range overlapping another of the
// network (recorded on a secondary range that overlapped its own subnet's).
func errRangeConflict(field, cidr string, with netRange) *apiError {
	return errInvalidField(field, cidr, fmt.Sprintf("Invalid IPCidrRange: %s conflicts with existing subnetwork '%s' in region '%s'.",
		cidr, with.subnet, with.region))
}

// checkSecondaryRanges checks the secondary ranges a subnetwork is to
// have (name, region, primary range as given; self is its selfLink once
// it exists): RFC 1035 names unique in the subnetwork, IPv4 CIDRs, apart
// from the primary range, from each other and from every range of the
// network's other subnetworks. It returns them as GCE keeps them.
func (p *project) checkSecondaryRanges(n *compute.Network, self, name, region string, primary netip.Prefix,
	ranges []*compute.SubnetworkSecondaryRange) ([]*compute.SubnetworkSecondaryRange, *apiError) {
	taken := append([]netRange{{primary, name, region}}, p.networkRanges(n, self)...)
	names := map[string]bool{}
	var out []*compute.SubnetworkSecondaryRange
	for i, sr := range ranges {
		if sr == nil {
			continue
		}
		f := fmt.Sprintf("resource.secondaryIpRanges[%d]", i)
		switch {
		case sr.RangeName == "":
			return nil, errRequired(f + ".rangeName")
		case !validName(sr.RangeName):
			return nil, errInvalidField(f+".rangeName", sr.RangeName, "Must be a match of regex '[a-z]([-a-z0-9]*[a-z0-9])?'")
		case names[sr.RangeName]:
			// A guess at GCE's wording; the rule is documented.
			return nil, errInvalidField(f+".rangeName", sr.RangeName, "Secondary range names must be unique within the subnetwork.")
		case sr.IpCidrRange == "":
			return nil, errRequired(f + ".ipCidrRange")
		case sr.IpVersion == "IPV6" || sr.IpCollection != "" || sr.ReservedInternalRange != "":
			return nil, errInvalidField(f, sr.RangeName, "The emulator supports IPv4 secondary ranges given by their CIDR only.")
		}
		pr, err := netip.ParsePrefix(sr.IpCidrRange)
		if err != nil || !pr.Addr().Is4() || pr.Masked() != pr {
			return nil, errInvalidField(f+".ipCidrRange", sr.IpCidrRange, "Must be a valid IPv4 CIDR range.")
		}
		if r, ok := overlapping(taken, pr); ok {
			return nil, errRangeConflict(f+".ipCidrRange", sr.IpCidrRange, r)
		}
		names[sr.RangeName] = true
		taken = append(taken, netRange{pr, name, region})
		out = append(out, &compute.SubnetworkSecondaryRange{RangeName: sr.RangeName, IpCidrRange: pr.String()})
	}
	return out, nil
}

// secondaryRange finds a subnetwork's secondary range by name.
func secondaryRange(sn *compute.Subnetwork, name string) (netip.Prefix, bool) {
	for _, sr := range sn.SecondaryIpRanges {
		if sr.RangeName == name {
			pr, err := netip.ParsePrefix(sr.IpCidrRange)
			return pr, err == nil
		}
	}
	return netip.Prefix{}, false
}

// aliasSet is where the alias blocks taken from a subnetwork's secondary
// ranges are kept (its primary range's are the IP pool's).
func (p *project) aliasSet(sn *compute.Subnetwork) *blockSet {
	s := p.aliases[sn.SelfLink]
	if s == nil {
		s = newBlockSet()
		p.aliases[sn.SelfLink] = s
	}
	return s
}

// secondaryRangeUser is an instance with an alias block in the range.
func (p *project) secondaryRangeUser(sn *compute.Subnetwork, pr netip.Prefix) (string, bool) {
	if s := p.aliases[sn.SelfLink]; s != nil {
		return s.holderOf(pr)
	}
	return "", false
}

// subnetworksPatch changes what GCE lets a patch change and the emulator
// models: secondaryIpRanges (added or removed, never both, never modified;
// a range an alias uses stays), logConfig, enableFlowLogs and
// privateIpv6GoogleAccess. The request is checked at once and applied when
// the operation is DONE, checked again then; the fingerprint changes with
// the content. Fields GCE does not let a patch change are ignored, as are
// output fields a client echoes from a get, unless they differ where that
// would hide a mistake (ipCidrRange, stackType).
func (s *Server) subnetworksPatch(c *call) (any, *apiError) {
	scope := "regions/" + c.region
	sn, path, e := getNamed(c, c.p.subnetworks, "subnetworks")
	if e != nil {
		return nil, e
	}
	if e := c.p.checkNotBusy(sn.SelfLink, path); e != nil {
		return nil, e
	}
	var body compute.Subnetwork
	if e := c.decode(&body); e != nil {
		return nil, e
	}
	var keys map[string]json.RawMessage
	_ = json.Unmarshal(c.body, &keys)
	if body.Fingerprint != sn.Fingerprint {
		// One of the texts GCE's 412 on a stale fingerprint carries.
		return nil, errFingerprint("Invalid fingerprint.")
	}
	if _, e := c.p.planSubnetPatch(sn, &body, keys); e != nil {
		return nil, e
	}
	return s.startOp(c, opSpec{Type: "compute.subnetworks.patch", Target: sn.SelfLink, TargetID: sn.Id, Scope: scope,
		Done: func() *apiError {
			if cur, ok := c.p.subnetworks.get(scope, sn.Name); !ok || cur != sn {
				return errNotFound(path)
			}
			apply, e := c.p.planSubnetPatch(sn, &body, keys)
			if e != nil {
				return e
			}
			if apply() {
				sn.Fingerprint = s.newFingerprint()
			}
			return nil
		}}), nil
}

// planSubnetPatch checks a patch of sn; apply makes it and reports whether
// anything changed.
func (p *project) planSubnetPatch(sn *compute.Subnetwork, body *compute.Subnetwork, keys map[string]json.RawMessage) (apply func() bool, e *apiError) {
	if _, ok := keys["ipCidrRange"]; ok && body.IpCidrRange != sn.IpCidrRange {
		return nil, errInvalidField("resource.ipCidrRange", body.IpCidrRange,
			"A patch cannot change the primary range; expandIpCidrRange can widen it.")
	}
	if _, ok := keys["stackType"]; ok && body.StackType != "" && body.StackType != "IPV4_ONLY" {
		return nil, errInvalidField("resource.stackType", body.StackType, "The emulator supports IPV4_ONLY subnetworks only.")
	}
	var changes []func() bool
	if _, ok := keys["privateIpv6GoogleAccess"]; ok {
		v := body.PrivateIpv6GoogleAccess
		if !slices.Contains([]string{"DISABLE_GOOGLE_ACCESS", "ENABLE_BIDIRECTIONAL_ACCESS_TO_GOOGLE", "ENABLE_OUTBOUND_VM_ACCESS_TO_GOOGLE"}, v) {
			return nil, errInvalidField("resource.privateIpv6GoogleAccess", v, "")
		}
		changes = append(changes, func() bool {
			old := sn.PrivateIpv6GoogleAccess
			sn.PrivateIpv6GoogleAccess = v
			return old != v
		})
	}
	_, setLog := keys["logConfig"]
	_, setFlow := keys["enableFlowLogs"]
	if setLog || setFlow {
		enable := body.EnableFlowLogs
		if body.LogConfig != nil {
			enable = body.LogConfig.Enable
		}
		changes = append(changes, func() bool {
			old := sn.LogConfig
			sn.LogConfig = &compute.SubnetworkLogConfig{Enable: enable, ForceSendFields: []string{"Enable"}}
			sn.EnableFlowLogs = enable
			sn.ForceSendFields = appendOnce(sn.ForceSendFields, "EnableFlowLogs")
			return old == nil || old.Enable != enable
		})
	}
	if _, ok := keys["secondaryIpRanges"]; ok {
		ranges, e := p.patchSecondaryRanges(sn, body.SecondaryIpRanges)
		if e != nil {
			return nil, e
		}
		changes = append(changes, func() bool {
			changed := !slices.EqualFunc(sn.SecondaryIpRanges, ranges, sameRange)
			for _, sr := range sn.SecondaryIpRanges {
				if _, kept := secondaryRange(&compute.Subnetwork{SecondaryIpRanges: ranges}, sr.RangeName); !kept {
					if pr, err := netip.ParsePrefix(sr.IpCidrRange); err == nil && p.aliases[sn.SelfLink] != nil {
						p.aliases[sn.SelfLink].untrack(pr)
					}
				}
			}
			sn.SecondaryIpRanges = ranges
			return changed
		})
	}
	return func() bool {
		changed := false
		for _, f := range changes {
			changed = f() || changed
		}
		return changed
	}, nil
}

// patchSecondaryRanges checks the secondary ranges a patch gives sn: GCE
// refuses a request that both adds and removes ranges, or that changes an
// existing range's CIDR (both recorded in public reports), and the
// emulator refuses to remove a range an instance's alias uses (GCE's
// wording unknown).
func (p *project) patchSecondaryRanges(sn *compute.Subnetwork, want []*compute.SubnetworkSecondaryRange) ([]*compute.SubnetworkSecondaryRange, *apiError) {
	n, e := p.networkRef(sn.Network)
	if e != nil {
		return nil, e
	}
	primary, err := netip.ParsePrefix(sn.IpCidrRange)
	if err != nil {
		return nil, errInvalidField("resource.ipCidrRange", sn.IpCidrRange, "")
	}
	region := lastSegment(sn.Region)
	old := map[string]string{}
	for _, sr := range sn.SecondaryIpRanges {
		old[sr.RangeName] = sr.IpCidrRange
	}
	ranges, e := p.checkSecondaryRanges(n, sn.SelfLink, sn.Name, region, primary, want)
	if e != nil {
		return nil, e
	}
	var added, removed []string
	kept := map[string]bool{}
	for i, sr := range ranges {
		cidr, ok := old[sr.RangeName]
		switch {
		case !ok:
			added = append(added, sr.IpCidrRange)
		case cidr != sr.IpCidrRange:
			return nil, errInvalidField(fmt.Sprintf("resource.secondaryIpRanges[%d].ipCidrRange", i), sr.IpCidrRange,
				"Existing secondary range cannot be modified.")
		}
		kept[sr.RangeName] = true
	}
	for _, sr := range sn.SecondaryIpRanges {
		if !kept[sr.RangeName] {
			removed = append(removed, sr.IpCidrRange)
		}
	}
	if len(added) > 0 && len(removed) > 0 {
		return nil, errInvalidField("resource.secondaryIpRanges", "", fmt.Sprintf(
			"Cannot add and remove secondary IP ranges in the same request. Added ranges: [%s]. Removed ranges: [%s].",
			strings.Join(added, ", "), strings.Join(removed, ", ")))
	}
	for _, sr := range sn.SecondaryIpRanges {
		if kept[sr.RangeName] {
			continue
		}
		pr, err := netip.ParsePrefix(sr.IpCidrRange)
		if err != nil {
			continue
		}
		if user, ok := p.secondaryRangeUser(sn, pr); ok {
			return nil, &apiError{Code: 400, Reason: "resourceInUseByAnotherResource", Message: fmt.Sprintf(
				"The secondary IP range '%s' of subnetwork '%s' is already being used by '%s'",
				sr.RangeName, relPath(p.name, "regions/"+region, "subnetworks", sn.Name), p.st.trimLink(user))}
		}
	}
	return ranges, nil
}

func appendOnce(list []string, v string) []string {
	if slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}

func sameRange(a, b *compute.SubnetworkSecondaryRange) bool {
	return a.RangeName == b.RangeName && a.IpCidrRange == b.IpCidrRange
}
