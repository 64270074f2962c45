package emulator

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	compute "google.golang.org/api/compute/v1"
)

// Regional forwarding rules: the front end of an external passthrough
// network load balancer (IP, protocol, ports → target pool).

func (s *Server) routesForwardingRules() {
	const one = "regions/{region}/forwardingRules/{forwardingRule}"
	s.handle("POST", "regions/{region}/forwardingRules", "compute.forwardingRules.insert", s.forwardingRulesInsert)
	s.handle("GET", "regions/{region}/forwardingRules", "compute.forwardingRules.list", s.forwardingRulesList)
	s.handle("GET", one, "compute.forwardingRules.get", s.forwardingRulesGet)
	s.handle("DELETE", one, "compute.forwardingRules.delete", s.forwardingRulesDelete)
	s.handle("POST", one+"/setTarget", "compute.forwardingRules.setTarget", s.forwardingRulesSetTarget)
	s.handle("POST", "regions/{region}/forwardingRules/{resource}/setLabels", "compute.forwardingRules.setLabels", s.forwardingRulesSetLabels)
	s.handle("GET", "aggregated/forwardingRules", "compute.forwardingRules.aggregatedList", s.forwardingRulesAggregated)
}

// portProtocols are the protocols whose rules take a port range.
var portProtocols = map[string]bool{"TCP": true, "UDP": true, "SCTP": true}

// normalisePortRange turns "443" into "443-443" and checks the bounds.
func normalisePortRange(v string) (string, bool) {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(v), "-")
	if !isRange {
		hi = lo
	}
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return "", false
	}
	return fmt.Sprintf("%d-%d", a, b), true
}

// portBounds parses a normalised range; an empty range covers every port.
func portBounds(v string) (int, int) {
	lo, hi, ok := strings.Cut(v, "-")
	if !ok {
		return 1, 65535
	}
	a, _ := strconv.Atoi(lo)
	b, _ := strconv.Atoi(hi)
	return a, b
}

func portsOverlap(x, y string) bool {
	a1, b1 := portBounds(x)
	a2, b2 := portBounds(y)
	return a1 <= b2 && a2 <= b1
}

// rulesOnIP returns the forwarding rules of the project serving ip.
func (p *project) rulesOnIP(ip netip.Addr) []*compute.ForwardingRule {
	var out []*compute.ForwardingRule
	for _, fr := range p.forwardingRules.list("") {
		if addrOf(fr.IPAddress) == ip {
			out = append(out, fr)
		}
	}
	return out
}

// resolveRuleIP turns the IPAddress field (a literal, an address URL or an
// address name) into an IP.
func (p *project) resolveRuleIP(region, v string) (netip.Addr, *compute.Address, *apiError) {
	if ip := addrOf(v); ip.IsValid() {
		if !ip.Is4() {
			return netip.Addr{}, nil, errInvalidField("resource.IPAddress", v, "Must be an IPv4 address.")
		}
		return ip, p.findAddressByIP("", ip), nil
	}
	r, ok := parseRef(v, ref{Project: p.name, Scope: "regions/" + region, Coll: "addresses"})
	if !ok || r.Coll != "addresses" || !strings.HasPrefix(r.Scope, "regions/") {
		return netip.Addr{}, nil, errInvalidField("resource.IPAddress", v, "Must be an IP address, or the URL or name of a regional address.")
	}
	a, found := p.addresses.get(r.Scope, r.Name)
	if !found || r.Project != p.name {
		return netip.Addr{}, nil, errNotFound(relPath(r.Project, r.Scope, "addresses", r.Name))
	}
	if r.scopeName() != region {
		return netip.Addr{}, nil, errInvalidField("resource.IPAddress", v,
			fmt.Sprintf("The address is in region '%s', not '%s'.", r.scopeName(), region))
	}
	return addrOf(a.Address), a, nil
}

// checkRuleProtocol checks and defaults what a target-pool rule forwards:
// scheme, protocol, tier and port range.
func checkRuleProtocol(fr *compute.ForwardingRule) *apiError {
	if fr.LoadBalancingScheme == "" {
		fr.LoadBalancingScheme = "EXTERNAL"
	}
	if fr.LoadBalancingScheme != "EXTERNAL" {
		return errInvalidField("resource.loadBalancingScheme", fr.LoadBalancingScheme,
			"The emulator supports EXTERNAL forwarding rules with a target pool.")
	}
	if fr.IPProtocol == "" {
		fr.IPProtocol = "TCP"
	}
	switch fr.IPProtocol {
	case "TCP", "UDP", "SCTP", "ESP", "AH", "ICMP", "L3_DEFAULT":
	default:
		return errInvalidField("resource.IPProtocol", fr.IPProtocol, "")
	}
	if fr.NetworkTier == "" {
		fr.NetworkTier = "PREMIUM"
	}
	if fr.NetworkTier != "PREMIUM" && fr.NetworkTier != "STANDARD" {
		return errInvalidField("resource.networkTier", fr.NetworkTier, "")
	}
	if len(fr.Ports) > 0 || fr.AllPorts {
		return errInvalidField("resource.ports", strings.Join(fr.Ports, ","),
			"Rules with a target pool take a portRange, not ports or allPorts.")
	}
	switch {
	case fr.PortRange != "" && !portProtocols[fr.IPProtocol]:
		return errInvalidField("resource.portRange", fr.PortRange, "A port range is only allowed for TCP, UDP and SCTP.")
	case fr.PortRange != "":
		pr, ok := normalisePortRange(fr.PortRange)
		if !ok {
			return errInvalidField("resource.portRange", fr.PortRange, "Must be a port or a range of ports within 1-65535.")
		}
		fr.PortRange = pr
	case portProtocols[fr.IPProtocol]:
		// A target-pool rule without ports forwards all of them.
		fr.PortRange = "1-65535"
	}
	return nil
}

func (s *Server) forwardingRulesInsert(c *call) (any, *apiError) {
	var fr compute.ForwardingRule
	if e := c.decode(&fr); e != nil {
		return nil, e
	}
	if e := checkName(fr.Name); e != nil {
		return nil, e
	}
	scope := "regions/" + c.region
	if _, ok := c.p.forwardingRules.get(scope, fr.Name); ok {
		return nil, errAlreadyExists(relPath(c.p.name, scope, "forwardingRules", fr.Name))
	}
	if e := checkRuleProtocol(&fr); e != nil {
		return nil, e
	}
	if fr.BackendService != "" {
		return nil, errInvalidField("resource.backendService", fr.BackendService, "The emulator supports target pools only.")
	}
	if fr.Target == "" {
		return nil, errRequired("resource.target")
	}
	tp, e := c.p.targetPoolRef(c.region, fr.Target, "resource.target")
	if e != nil {
		return nil, e
	}
	fr.Target = tp.SelfLink
	if e := c.p.checkQuota(c.region, "FORWARDING_RULES", 1); e != nil {
		return nil, e
	}

	fr.Kind = "compute#forwardingRule"
	fr.Id = s.newID()
	fr.CreationTimestamp = timestamp(time.Now())
	fr.Region = c.p.link(scope)
	fr.SelfLink = c.p.link(scope, "forwardingRules", fr.Name)
	fr.SelfLinkWithId = c.p.link(scope, "forwardingRules", uitoa(fr.Id))
	fr.Fingerprint = s.newFingerprint()
	fr.LabelFingerprint = fingerprint("labels", fr.SelfLink, 0)
	// Labels sent at insert are not applied (recorded on GCE); clients
	// follow with setLabels.
	fr.Labels = nil
	fr.Network, fr.Subnetwork = "", ""
	fr.ForceSendFields = []string{"Description"}
	fr.NullFields = nil

	if e := c.p.claimRuleIP(c.region, &fr); e != nil {
		return nil, e
	}
	obj := &fr
	// Stored at once: the IP, its port ranges and the quota are taken by the
	// request, and a racing insert of the same name is a 409.
	c.p.forwardingRules.put(scope, obj.Name, obj)
	return s.startOp(c, opSpec{Type: "insert", Target: obj.SelfLink, TargetID: obj.Id, Scope: scope,
		Fail: func() {
			c.p.forwardingRules.del(scope, obj.Name)
			c.p.releaseRuleIP(obj)
		}}), nil
}

// claimRuleIP gives the rule its IP: the one asked for (a static address of
// the region, possibly shared with other rules on disjoint ports) or a new
// ephemeral one.
func (p *project) claimRuleIP(region string, fr *compute.ForwardingRule) *apiError {
	if fr.IPAddress == "" {
		ip, e := p.st.allocEphemeral(fr.SelfLink)
		if e != nil {
			return e
		}
		fr.IPAddress = ip.String()
		return nil
	}
	ip, addr, e := p.resolveRuleIP(region, fr.IPAddress)
	if e != nil {
		return e
	}
	if addr != nil {
		if addr.AddressType == "INTERNAL" {
			return errInvalidField("resource.IPAddress", fr.IPAddress, "An EXTERNAL forwarding rule needs an EXTERNAL address.")
		}
		if addr.NetworkTier != "" && addr.NetworkTier != fr.NetworkTier {
			return errInvalidField("resource.networkTier", fr.NetworkTier,
				fmt.Sprintf("The network tier of the rule must match the address's tier '%s'.", addr.NetworkTier))
		}
	}
	sharers := p.rulesOnIP(ip)
	for _, o := range sharers {
		if o.IPProtocol == fr.IPProtocol && portsOverlap(o.PortRange, fr.PortRange) {
			return errInvalidField("resource.IPAddress", ip.String(), fmt.Sprintf(
				"IP address, protocol and port range conflict with forwarding rule '%s' (%s %s).",
				p.st.trimLink(o.SelfLink), o.IPProtocol, o.PortRange))
		}
	}
	if len(sharers) > 0 {
		// Only a static address may front several rules.
		if addr == nil || lastSegment(addr.Region) != region {
			return errInvalidField("resource.IPAddress", ip.String(), "Specified IP address is in-use and would result in a conflict.")
		}
		for _, u := range addr.Users {
			if p.ruleByLink(u) == nil {
				return errInvalidField("resource.IPAddress", ip.String(), "Specified IP address is in-use and would result in a conflict.")
			}
		}
		addr.Users = append(addr.Users, fr.SelfLink)
		fr.IPAddress = ip.String()
		return nil
	}
	if e := p.useExternalIP(region, ip, fr.SelfLink, "resource.IPAddress"); e != nil {
		return e
	}
	fr.IPAddress = ip.String()
	return nil
}

// releaseRuleIP gives the rule's IP back: a static address drops the rule
// from its users (RESERVED when none is left), an ephemeral IP is freed
// unless another rule still serves it.
func (p *project) releaseRuleIP(fr *compute.ForwardingRule) {
	ip := addrOf(fr.IPAddress)
	if !ip.IsValid() {
		return
	}
	if a := p.findAddressByIP("", ip); a != nil {
		var users []string
		for _, u := range a.Users {
			if u != fr.SelfLink {
				users = append(users, u)
			}
		}
		a.Users = users
		if len(users) == 0 && a.Status == "IN_USE" {
			a.Status = "RESERVED"
		}
		return
	}
	h, held := p.st.ips.holder(ip)
	if !held || h != fr.SelfLink {
		return
	}
	for _, o := range p.rulesOnIP(ip) {
		if o != fr {
			p.st.ips.setHolder(ip, o.SelfLink)
			return
		}
	}
	p.st.ips.release(ip)
}

func (p *project) ruleByLink(link string) *compute.ForwardingRule {
	r, ok := parseRef(link, ref{Project: p.name})
	if !ok || r.Coll != "forwardingRules" {
		return nil
	}
	fr, _ := p.forwardingRules.get(r.Scope, r.Name)
	return fr
}

func (s *Server) forwardingRulesGet(c *call) (any, *apiError) {
	fr, _, e := getNamed(c, c.p.forwardingRules, "forwardingRules")
	if e != nil {
		return nil, e
	}
	return fr, nil
}

func (s *Server) forwardingRulesList(c *call) (any, *apiError) {
	scope := "regions/" + c.region
	return s.listResponse(c, "compute#forwardingRuleList", toAny(c.p.forwardingRules.list(scope)),
		c.p.link(scope, "forwardingRules"))
}

func (s *Server) forwardingRulesAggregated(c *call) (any, *apiError) {
	return s.aggregatedResponse(c, "compute#forwardingRuleAggregatedList", "forwardingRules",
		c.p.forwardingRules.scoped(), s.regionScopes())
}

// mutableRule finds the rule named in the path and checks it is free for a
// mutation.
func (s *Server) mutableRule(c *call) (*compute.ForwardingRule, *apiError) {
	fr, path, e := getNamed(c, c.p.forwardingRules, "forwardingRules")
	if e != nil {
		return nil, e
	}
	if e := c.p.checkNotBusy(fr.SelfLink, path); e != nil {
		return nil, e
	}
	return fr, nil
}

func (s *Server) forwardingRulesDelete(c *call) (any, *apiError) {
	fr, e := s.mutableRule(c)
	if e != nil {
		return nil, e
	}
	scope := "regions/" + c.region
	return s.startOp(c, opSpec{Type: "delete", Target: fr.SelfLink, TargetID: fr.Id, Scope: scope,
		Done: func() *apiError {
			c.p.forwardingRules.del(scope, fr.Name)
			c.p.releaseRuleIP(fr)
			return nil
		}}), nil
}

// forwardingRulesSetTarget swaps the pool behind the rule; the IP stays.
func (s *Server) forwardingRulesSetTarget(c *call) (any, *apiError) {
	fr, e := s.mutableRule(c)
	if e != nil {
		return nil, e
	}
	var req compute.TargetReference
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	if req.Target == "" {
		return nil, errRequired("resource.target")
	}
	tp, e := c.p.targetPoolRef(c.region, req.Target, "resource.target")
	if e != nil {
		return nil, e
	}
	return s.startOp(c, opSpec{Type: "setTarget", Target: fr.SelfLink, TargetID: fr.Id, Scope: "regions/" + c.region,
		Done: func() *apiError {
			if _, ok := c.p.targetPools.get("regions/"+c.region, tp.Name); !ok {
				return errNotFound(s.trimLink(tp.SelfLink))
			}
			fr.Target = tp.SelfLink
			fr.Fingerprint = s.newFingerprint()
			return nil
		}}), nil
}

// forwardingRulesSetLabels is DONE in the response, as recorded on GCE.
func (s *Server) forwardingRulesSetLabels(c *call) (any, *apiError) {
	fr, e := s.mutableRule(c)
	if e != nil {
		return nil, e
	}
	if e := s.applyLabels(c, &fr.Labels, &fr.LabelFingerprint); e != nil {
		return nil, e
	}
	return s.startOp(c, opSpec{Type: "setLabels", Target: fr.SelfLink, TargetID: fr.Id, Scope: c.scope(), Immediate: true}), nil
}
