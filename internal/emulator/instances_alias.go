// An instance's alias IP ranges: planned with its network interfaces,
// taken from its subnetwork's primary or secondary ranges at insert, given
// back when it goes, and changed by updateNetworkInterface.

package emulator

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	compute "google.golang.org/api/compute/v1"
)

// aliasPlan is one alias IP range an interface asks for.
type aliasPlan struct {
	rangeName string       // the secondary range; "" for the primary range
	within    netip.Prefix // the range it comes from
	bits      int          // a netmask to pick a block of (with want invalid)
	want      netip.Prefix // an explicit block
	got       netip.Prefix // what it holds once claimed
}

// parseAliasCIDR reads an ipCidrRange as GCE takes it: a netmask ("/24"),
// a CIDR ("10.64.3.0/24") or one address ("10.64.3.7", a /32).
func parseAliasCIDR(v string) (bits int, want netip.Prefix, ok bool) {
	if rest, isMask := strings.CutPrefix(v, "/"); isMask {
		n, err := strconv.Atoi(rest)
		return n, netip.Prefix{}, err == nil && n >= 0 && n <= 32 && rest == strconv.Itoa(n)
	}
	if a, err := netip.ParseAddr(v); err == nil {
		return 32, netip.PrefixFrom(a, 32), a.Is4()
	}
	p, err := netip.ParsePrefix(v)
	return p.Bits(), p, err == nil && p.Addr().Is4() && p.Masked() == p
}

// planAliases checks an interface's alias IP ranges against its subnetwork
// (nil on a legacy network); f names the interface in errors.
func planAliases(ni *compute.NetworkInterface, sn *compute.Subnetwork, f string) ([]aliasPlan, *apiError) {
	var plans []aliasPlan
	for i, ar := range ni.AliasIpRanges {
		if ar == nil {
			continue
		}
		ff := fmt.Sprintf("%s.aliasIpRanges[%d]", f, i)
		if sn == nil {
			return nil, errInvalidField(ff, ar.IpCidrRange, "Alias IP ranges are only supported in VPC networks, not legacy networks.")
		}
		pl := aliasPlan{rangeName: ar.SubnetworkRangeName}
		var ok bool
		if pl.rangeName == "" {
			pl.within, _ = netip.ParsePrefix(sn.IpCidrRange)
		} else if pl.within, ok = secondaryRange(sn, pl.rangeName); !ok {
			// GCE's answer names the field and the value, nothing more.
			return nil, errInvalidField(ff+".subnetworkRangeName", pl.rangeName, "")
		}
		if ar.IpCidrRange == "" {
			return nil, errRequired(ff + ".ipCidrRange")
		}
		bits, want, ok := parseAliasCIDR(ar.IpCidrRange)
		switch {
		case !ok:
			return nil, errInvalidField(ff+".ipCidrRange", ar.IpCidrRange,
				"Must be a netmask such as '/24', an IPv4 CIDR range or an IPv4 address.")
		case bits < pl.within.Bits():
			return nil, errInvalidField(ff+".ipCidrRange", ar.IpCidrRange,
				fmt.Sprintf("The alias IP range is larger than the subnetwork range %s it comes from.", pl.within))
		case want.IsValid() && !(pl.within.Contains(want.Addr()) && want.Bits() >= pl.within.Bits()):
			return nil, errInvalidField(ff+".ipCidrRange", ar.IpCidrRange,
				fmt.Sprintf("The alias IP range must lie inside the subnetwork range %s.", pl.within))
		}
		pl.bits, pl.want = bits, want
		plans = append(plans, pl)
	}
	return plans, nil
}

// errAliasExhausted and errAliasInUse fail an insert's operation, as GCE
// fails it when it cannot give the range (IP_SPACE_EXHAUSTED, in the
// message a managed instance group reported; IP_IN_USE_BY_ANOTHER_RESOURCE
// as Deployment Manager relayed it). The HTTP statuses are guesses.
func errAliasExhausted(p *project, sn *compute.Subnetwork, rangeName string) *apiError {
	name := sn.Name
	if rangeName != "" {
		name += "-" + rangeName
	}
	return &apiError{Code: 400, Reason: "invalid", OpCode: "IP_SPACE_EXHAUSTED", Message: fmt.Sprintf(
		"IP space of '%s' is exhausted.", relPath(p.name, "regions/"+lastSegment(sn.Region), "subnetworks", name))}
}

func errAliasInUse(cidr netip.Prefix) *apiError {
	return &apiError{Code: 409, Reason: "conflict", OpCode: "IP_IN_USE_BY_ANOTHER_RESOURCE",
		Message: fmt.Sprintf("IP '%s' is already being used by another resource.", cidr)}
}

// claimAlias takes the block pl asks for, for holder.
func (p *project) claimAlias(sn *compute.Subnetwork, pl *aliasPlan, holder string) *apiError {
	if pl.rangeName == "" {
		return p.claimPrimaryAlias(sn, pl, holder)
	}
	set := p.aliasSet(sn)
	if pl.want.IsValid() {
		if _, ok := set.claim(pl.want, holder); !ok {
			return errAliasInUse(pl.want)
		}
		pl.got = pl.want
		return nil
	}
	got, ok := set.alloc(pl.within, pl.bits, holder, nil)
	if !ok {
		return errAliasExhausted(p, sn, pl.rangeName)
	}
	pl.got = got
	return nil
}

// claimPrimaryAlias takes a block of a subnetwork's primary range, kept in
// the IP pool since VMs' IPs come from there too: none of its addresses
// may be held, nor be one of the four GCE reserves (the network's, the
// gateway's, the second-to-last and the broadcast).
func (p *project) claimPrimaryAlias(sn *compute.Subnetwork, pl *aliasPlan, holder string) *apiError {
	st := p.st
	lo, hi := bounds(pl.within)
	skip := func(from, to uint64) bool {
		if from <= lo+1 || to >= hi-1 {
			return true
		}
		for n := from; n <= to; n++ {
			if _, held := st.ips.used[numAddr(n)]; held {
				return true
			}
		}
		return false
	}
	pool := st.ips.aliases
	if pl.want.IsValid() {
		from, to := bounds(pl.want)
		if skip(from, to) {
			return errAliasInUse(pl.want)
		}
		if _, ok := pool.claim(pl.want, holder); !ok {
			return errAliasInUse(pl.want)
		}
		pl.got = pl.want
		return nil
	}
	got, ok := pool.alloc(pl.within, pl.bits, holder, skip)
	if !ok {
		return errAliasExhausted(p, sn, "")
	}
	pl.got = got
	return nil
}

// releaseAlias gives back a block an interface of holder holds.
func (p *project) releaseAlias(subnet string, ar *compute.AliasIpRange, holder string) {
	pr, err := netip.ParsePrefix(ar.IpCidrRange)
	if err != nil {
		return
	}
	if ar.SubnetworkRangeName == "" {
		p.st.ips.aliases.release(pr, holder)
		return
	}
	if s := p.aliases[subnet]; s != nil {
		s.release(pr, holder)
	}
}

// claimAliases takes every interface's alias blocks; on failure it gives
// back what it took.
func (p *project) claimAliases(nics []nicPlan, holder string) *apiError {
	for i := range nics {
		np := &nics[i]
		for j := range np.aliases {
			if e := p.claimAlias(np.subnet, &np.aliases[j], holder); e != nil {
				p.releaseAliasPlans(nics, holder)
				return e
			}
		}
	}
	return nil
}

// releaseAliasPlans gives back the blocks claimAliases took.
func (p *project) releaseAliasPlans(nics []nicPlan, holder string) {
	for _, np := range nics {
		for _, pl := range np.aliases {
			if pl.got.IsValid() {
				p.releaseAlias(np.subnet.SelfLink, &compute.AliasIpRange{IpCidrRange: pl.got.String(), SubnetworkRangeName: pl.rangeName}, holder)
			}
		}
	}
}

// renderAliases is an interface's aliasIpRanges as GCE returns them: the
// blocks it holds, with the range each came from.
func renderAliases(plans []aliasPlan) []*compute.AliasIpRange {
	var out []*compute.AliasIpRange
	for _, pl := range plans {
		out = append(out, &compute.AliasIpRange{IpCidrRange: pl.got.String(), SubnetworkRangeName: pl.rangeName})
	}
	return out
}

// instancesUpdateNetworkInterface changes an interface's alias IP ranges
// (PATCH semantics: without aliasIpRanges nothing changes), under the
// interface's fingerprint. Ranges the request repeats stay; new ones are
// taken at once, so that a block someone holds fails the operation as an
// insert's does; the interface shows them, and gives back the ones left
// out, when the operation is DONE. Moving an interface to another network,
// which GCE also does here, is not modelled.
func (s *Server) instancesUpdateNetworkInterface(c *call) (any, *apiError) {
	in, e := s.mutableInstance(c)
	if e != nil {
		return nil, e
	}
	ni, e := nicByQuery(c, in)
	if e != nil {
		return nil, e
	}
	var body compute.NetworkInterface
	if e := c.decode(&body); e != nil {
		return nil, e
	}
	if body.Fingerprint != ni.Fingerprint {
		return nil, errFingerprint("Invalid fingerprint.")
	}
	if body.Network != "" && lastSegment(body.Network) != lastSegment(ni.Network) ||
		body.Subnetwork != "" && lastSegment(body.Subnetwork) != lastSegment(ni.Subnetwork) {
		return nil, errInvalidField("resource.network", body.Network, "The emulator does not move interfaces between networks.")
	}
	spec := opSpec{Type: "updateNetworkInterface", Target: in.SelfLink, TargetID: in.Id, Scope: "zones/" + c.zone}
	var keys map[string]json.RawMessage
	_ = json.Unmarshal(c.body, &keys)
	if _, ok := keys["aliasIpRanges"]; !ok {
		return s.startInstanceOp(c, in, spec), nil
	}
	sn := c.p.subnetOfLink(ni.Subnetwork)
	plans, e := planAliases(&body, sn, "resource")
	if e != nil {
		return nil, e
	}
	key := func(rangeName, cidr string) string { return rangeName + " " + cidr }
	held := map[string]bool{}
	for _, ar := range ni.AliasIpRanges {
		held[key(ar.SubnetworkRangeName, ar.IpCidrRange)] = true
	}
	var added []int
	kept := map[string]bool{}
	for i, pl := range plans {
		k := key(pl.rangeName, pl.want.String())
		if pl.want.IsValid() && held[k] && !kept[k] {
			plans[i].got = pl.want
			kept[k] = true
			continue
		}
		added = append(added, i)
	}
	if len(added) > 0 && len(kept) < len(held) {
		// GCE documents the rule for gcloud; its API wording is unknown.
		return nil, errInvalidField("resource.aliasIpRanges", "", "Cannot add and remove alias IP ranges in the same request.")
	}
	release := func(idx []int) {
		for _, i := range idx {
			if plans[i].got.IsValid() {
				c.p.releaseAlias(ni.Subnetwork, &compute.AliasIpRange{IpCidrRange: plans[i].got.String(), SubnetworkRangeName: plans[i].rangeName}, in.SelfLink)
			}
		}
	}
	for n, i := range added {
		if e := c.p.claimAlias(sn, &plans[i], in.SelfLink); e != nil {
			release(added[:n])
			spec.Done = func() *apiError { return e }
			return s.startInstanceOp(c, in, spec), nil
		}
	}
	spec.Done = func() *apiError {
		if in.deleting || in.gone {
			release(added)
			return nil
		}
		for _, ar := range ni.AliasIpRanges {
			if !kept[key(ar.SubnetworkRangeName, ar.IpCidrRange)] {
				c.p.releaseAlias(ni.Subnetwork, ar, in.SelfLink)
			}
		}
		ni.AliasIpRanges = renderAliases(plans)
		s.bumpNIC(in, ni)
		return nil
	}
	spec.Fail = func() { release(added) }
	return s.startInstanceOp(c, in, spec), nil
}

// subnetOfLink finds a subnetwork by its selfLink (nil: none, as on a
// legacy network).
func (p *project) subnetOfLink(link string) *compute.Subnetwork {
	r, ok := parseRef(link, ref{Project: p.name})
	if !ok || r.Coll != "subnetworks" {
		return nil
	}
	sn, _ := p.subnetworks.get(r.Scope, r.Name)
	return sn
}
