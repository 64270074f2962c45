package emulator

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	compute "google.golang.org/api/compute/v1"
)

func (s *Server) routesNetworks() {
	s.handle("POST", "global/networks", "compute.networks.insert", s.networksInsert)
	s.handle("GET", "global/networks", "compute.networks.list", s.networksList)
	s.handle("GET", "global/networks/{network}", "compute.networks.get", s.networksGet)
	s.handle("DELETE", "global/networks/{network}", "compute.networks.delete", s.networksDelete)

	s.handle("POST", "regions/{region}/subnetworks", "compute.subnetworks.insert", s.subnetworksInsert)
	s.handle("GET", "regions/{region}/subnetworks", "compute.subnetworks.list", s.subnetworksList)
	s.handle("GET", "regions/{region}/subnetworks/{subnetwork}", "compute.subnetworks.get", s.subnetworksGet)
	s.handle("DELETE", "regions/{region}/subnetworks/{subnetwork}", "compute.subnetworks.delete", s.subnetworksDelete)
	s.handle("PATCH", "regions/{region}/subnetworks/{subnetwork}", "compute.subnetworks.patch", s.subnetworksPatch)
	s.handle("GET", "aggregated/subnetworks", "compute.subnetworks.aggregatedList", s.subnetworksAggregated)
}

// seedProject gives a new project what a real one starts with: the auto-mode
// "default" network, its subnets and default route, and the four
// default-allow firewall rules.
func (p *project) seed() {
	n := p.newNetwork(&compute.Network{Name: "default", Description: "Default network for the project", Mtu: 1460}, "auto")
	p.networks.put("global", n.Name, n)
	p.createAutoSubnets(n)
	p.createDefaultRoute(n)
	for _, fw := range []*compute.Firewall{
		{Name: "default-allow-icmp", Description: "Allow ICMP from anywhere", Priority: 65534,
			SourceRanges: []string{"0.0.0.0/0"}, Allowed: []*compute.FirewallAllowed{{IPProtocol: "icmp"}}},
		{Name: "default-allow-internal", Description: "Allow internal traffic on the default network", Priority: 65534,
			SourceRanges: []string{"10.128.0.0/9"}, Allowed: []*compute.FirewallAllowed{
				{IPProtocol: "tcp", Ports: []string{"0-65535"}}, {IPProtocol: "udp", Ports: []string{"0-65535"}}, {IPProtocol: "icmp"}}},
		{Name: "default-allow-rdp", Description: "Allow RDP from anywhere", Priority: 65534,
			SourceRanges: []string{"0.0.0.0/0"}, Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"3389"}}}},
		{Name: "default-allow-ssh", Description: "Allow SSH from anywhere", Priority: 65534,
			SourceRanges: []string{"0.0.0.0/0"}, Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"22"}}}},
	} {
		fw.Network = n.SelfLink
		p.fillFirewall(fw)
		p.firewalls.put("global", fw.Name, fw)
	}
}

// newNetwork fills in what GCE adds to a network. mode is auto, custom or legacy.
func (p *project) newNetwork(n *compute.Network, mode string) *compute.Network {
	n.Kind = "compute#network"
	n.Id = p.st.newID()
	n.CreationTimestamp = timestamp(time.Now())
	n.SelfLink = p.link("global", "networks", n.Name)
	n.SelfLinkWithId = p.link("global", "networks", uitoa(n.Id))
	n.NetworkFirewallPolicyEnforcementOrder = "AFTER_CLASSIC_FIREWALL"
	if n.RoutingConfig == nil {
		n.RoutingConfig = &compute.NetworkRoutingConfig{}
	}
	if n.RoutingConfig.RoutingMode == "" {
		n.RoutingConfig.RoutingMode = "REGIONAL"
	}
	if n.RoutingConfig.BgpBestPathSelectionMode == "" {
		n.RoutingConfig.BgpBestPathSelectionMode = "LEGACY"
	}
	switch mode {
	case "auto":
		n.AutoCreateSubnetworks = true
	case "custom":
		n.AutoCreateSubnetworks = false
		n.ForceSendFields = append(n.ForceSendFields, "AutoCreateSubnetworks")
	case "legacy":
		if n.IPv4Range == "" {
			n.IPv4Range = "10.240.0.0/16"
		}
		if pr, err := netip.ParsePrefix(n.IPv4Range); err == nil {
			n.GatewayIPv4 = pr.Masked().Addr().Next().String()
		}
	}
	return n
}

func (p *project) createAutoSubnets(n *compute.Network) {
	for _, r := range p.st.cat.regNames {
		sn := &compute.Subnetwork{Name: n.Name, Network: n.SelfLink, IpCidrRange: p.st.autoSubnetRange(r)}
		p.fillSubnetwork(r, sn)
		p.subnetworks.put("regions/"+r, sn.Name, sn)
		n.Subnetworks = append(n.Subnetworks, sn.SelfLink)
	}
}

func (p *project) createDefaultRoute(n *compute.Network) {
	name := fmt.Sprintf("default-route-%016x", p.st.rng.Uint64())
	rt := &compute.Route{
		Kind: "compute#route", Id: p.st.newID(), CreationTimestamp: timestamp(time.Now()),
		Name: name, Description: "Default route to the Internet.", Network: n.SelfLink,
		DestRange: "0.0.0.0/0", Priority: 1000, RouteType: "STATIC", RouteStatus: "ACTIVE",
		NextHopGateway: p.link("global", "gateways", "default-internet-gateway"),
		SelfLink:       p.link("global", "routes", name),
	}
	p.routes.put("global", name, rt)
}

func (p *project) fillSubnetwork(region string, sn *compute.Subnetwork) {
	sn.Kind = "compute#subnetwork"
	sn.Id = p.st.newID()
	sn.CreationTimestamp = timestamp(time.Now())
	sn.Region = p.link("regions", region)
	sn.SelfLink = p.link("regions", region, "subnetworks", sn.Name)
	sn.Fingerprint = p.st.newFingerprint()
	if pr, err := netip.ParsePrefix(sn.IpCidrRange); err == nil {
		sn.GatewayAddress = pr.Masked().Addr().Next().String()
	}
	sn.PrivateIpGoogleAccess = false
	sn.PrivateIpv6GoogleAccess = "DISABLE_GOOGLE_ACCESS"
	if sn.Purpose == "" {
		sn.Purpose = "PRIVATE"
	}
	// Recorded: only PRIVATE subnets show a stack type; proxy-only ones
	// show a role and a state instead, PRIVATE_NAT ones neither.
	switch sn.Purpose {
	case "PRIVATE":
		if sn.StackType == "" {
			sn.StackType = "IPV4_ONLY"
		}
	case "REGIONAL_MANAGED_PROXY", "GLOBAL_MANAGED_PROXY", "INTERNAL_HTTPS_LOAD_BALANCER":
		if sn.Role == "" {
			sn.Role = "ACTIVE"
		}
		sn.State = "READY"
	}
	sn.AllowSubnetCidrRoutesOverlap = false
	sn.ForceSendFields = append(sn.ForceSendFields, "PrivateIpGoogleAccess", "AllowSubnetCidrRoutesOverlap")
}

// networkRef resolves a network reference (default: global/networks/default).
func (p *project) networkRef(v string) (*compute.Network, *apiError) {
	if v == "" {
		v = "default"
	}
	r, ok := parseRef(v, ref{Project: p.name, Scope: "global", Coll: "networks"})
	if !ok || r.Coll != "networks" {
		return nil, errInvalidField("resource.network", v, "")
	}
	n, found := p.networks.get("global", r.Name)
	if !found || r.Project != p.name {
		return nil, errNotFound(relPath(r.Project, "global", "networks", r.Name))
	}
	return n, nil
}

// subnetFor finds the subnetwork an interface uses in region: the one named,
// or the network's subnet in that region (auto mode).
func (p *project) subnetFor(n *compute.Network, region, subnet string) (*compute.Subnetwork, *apiError) {
	if subnet != "" {
		r, ok := parseRef(subnet, ref{Project: p.name, Scope: "regions/" + region, Coll: "subnetworks"})
		if !ok {
			return nil, errInvalidField("resource.networkInterfaces[0].subnetwork", subnet, "")
		}
		sn, found := p.subnetworks.get(r.Scope, r.Name)
		if !found {
			return nil, errNotFound(relPath(r.Project, r.Scope, "subnetworks", r.Name))
		}
		if r.Scope != "regions/"+region {
			return nil, errInvalidField("resource.networkInterfaces[0].subnetwork", subnet,
				"Subnetwork must be in the same region as the resource.")
		}
		return sn, nil
	}
	for _, sn := range p.subnetworks.list("regions/" + region) {
		if sn.Network == n.SelfLink {
			return sn, nil
		}
	}
	if n.IPv4Range != "" { // legacy network: no subnets
		return nil, nil
	}
	return nil, errInvalidField("resource.networkInterfaces[0].subnetwork", "",
		fmt.Sprintf("Network '%s' has no subnetwork in region '%s'.", n.Name, region))
}

func (s *Server) networksInsert(c *call) (any, *apiError) {
	var n compute.Network
	if e := c.decode(&n); e != nil {
		return nil, e
	}
	if e := checkName(n.Name); e != nil {
		return nil, e
	}
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(c.body, &raw)
	mode := "legacy"
	if v, ok := raw["autoCreateSubnetworks"]; ok {
		mode = "custom"
		if string(v) == "true" {
			mode = "auto"
		}
	}
	if _, ok := c.p.networks.get("global", n.Name); ok {
		return nil, errAlreadyExists(relPath(c.p.name, "global", "networks", n.Name))
	}
	if n.NetworkProfile != "" {
		// Stored as an absolute link, like every reference (recorded: computenetworkbasic#4).
		r, ok := parseRef(n.NetworkProfile, ref{Project: c.p.name, Scope: "global", Coll: "networkProfiles"})
		if !ok || r.Coll != "networkProfiles" || r.Scope != "global" {
			return nil, errInvalidField("resource.networkProfile", n.NetworkProfile, "")
		}
		n.NetworkProfile = s.link(r.Project, "global", "networkProfiles", r.Name)
	}
	if e := c.p.checkQuota("", "NETWORKS", 1); e != nil {
		return nil, e
	}
	nw := c.p.newNetwork(&n, mode)
	return s.startOp(c, opSpec{Type: "insert", Target: nw.SelfLink, TargetID: nw.Id, Scope: "global",
		Done: func() *apiError {
			if _, ok := c.p.networks.get("global", nw.Name); ok {
				return errAlreadyExists(relPath(c.p.name, "global", "networks", nw.Name))
			}
			c.p.networks.put("global", nw.Name, nw)
			if mode == "auto" {
				c.p.createAutoSubnets(nw)
			}
			c.p.createDefaultRoute(nw)
			return nil
		}}), nil
}

func (s *Server) networksGet(c *call) (any, *apiError) {
	n, _, e := getNamed(c, c.p.networks, "networks")
	if e != nil {
		return nil, e
	}
	return n, nil
}

func (s *Server) networksList(c *call) (any, *apiError) {
	return s.listResponse(c, "compute#networkList", toAny(c.p.networks.list("global")), c.p.link("global", "networks"))
}

// networkUser returns a resource that still uses the network, if any.
func (p *project) networkUser(n *compute.Network) string {
	for _, fw := range p.firewalls.list("") {
		if fw.Network == n.SelfLink {
			return fw.SelfLink
		}
	}
	for _, rt := range p.routes.list("") {
		if rt.Network == n.SelfLink && rt.NextHopGateway == "" {
			return rt.SelfLink
		}
	}
	for _, in := range p.instances.list("") {
		for _, ni := range in.NetworkInterfaces {
			if ni.Network == n.SelfLink {
				return in.SelfLink
			}
		}
	}
	if !n.AutoCreateSubnetworks {
		for _, sn := range p.subnetworks.list("") {
			if sn.Network == n.SelfLink {
				return sn.SelfLink
			}
		}
	}
	for _, fr := range p.forwardingRules.list("") {
		if fr.Network == n.SelfLink {
			return fr.SelfLink
		}
	}
	return ""
}

// subnetWithSecondaryRanges is a subnetwork of an auto-mode network that
// has secondary ranges: GCE does not delete such a network.
func (p *project) subnetWithSecondaryRanges(n *compute.Network) *compute.Subnetwork {
	if !n.AutoCreateSubnetworks {
		return nil
	}
	for _, sn := range p.subnetworks.list("") {
		if sn.Network == n.SelfLink && len(sn.SecondaryIpRanges) > 0 {
			return sn
		}
	}
	return nil
}

func (s *Server) networksDelete(c *call) (any, *apiError) {
	n, path, e := getNamed(c, c.p.networks, "networks")
	if e != nil {
		return nil, e
	}
	if e := c.p.checkNotBusy(n.SelfLink, path); e != nil {
		return nil, e
	}
	// GCE reports a network in use inside the DONE operation, not as an HTTP
	// error (recorded: computerouternatprivate).
	return s.startOp(c, opSpec{Type: "delete", Target: n.SelfLink, TargetID: n.Id, Scope: "global",
		Done: func() *apiError {
			if user := c.p.networkUser(n); user != "" {
				return errInUse("network", relPath(c.p.name, "global", "networks", n.Name), s.trimLink(user))
			}
			if sn := c.p.subnetWithSecondaryRanges(n); sn != nil {
				// Documented for auto-mode networks; the wording is a guess.
				return errInUse("network", relPath(c.p.name, "global", "networks", n.Name), s.trimLink(sn.SelfLink))
			}
			for _, sn := range c.p.subnetworks.list("") {
				if sn.Network == n.SelfLink {
					c.p.subnetworks.del("regions/"+lastSegment(sn.Region), sn.Name)
				}
			}
			for _, rt := range c.p.routes.list("") {
				if rt.Network == n.SelfLink {
					c.p.routes.del("global", rt.Name)
				}
			}
			c.p.networks.del("global", n.Name)
			return nil
		}}), nil
}

func (s *Server) subnetworksInsert(c *call) (any, *apiError) {
	var sn compute.Subnetwork
	if e := c.decode(&sn); e != nil {
		return nil, e
	}
	if e := checkName(sn.Name); e != nil {
		return nil, e
	}
	n, e := c.p.networkRef(sn.Network)
	if e != nil {
		return nil, e
	}
	if n.IPv4Range != "" {
		return nil, errInvalidField("resource.network", sn.Network, "Legacy networks cannot have subnetworks.")
	}
	pr, err := netip.ParsePrefix(sn.IpCidrRange)
	if err != nil || !pr.Addr().Is4() {
		return nil, errInvalidField("resource.ipCidrRange", sn.IpCidrRange, "Must be a valid IPv4 CIDR range.")
	}
	scope := "regions/" + c.region
	if _, ok := c.p.subnetworks.get(scope, sn.Name); ok {
		return nil, errAlreadyExists(relPath(c.p.name, scope, "subnetworks", sn.Name))
	}
	// Every range stays apart from the network's others: checked now, and
	// again at DONE against subnetworks created meanwhile.
	checkRanges := func(secondary []*compute.SubnetworkSecondaryRange) ([]*compute.SubnetworkSecondaryRange, *apiError) {
		if r, ok := overlapping(c.p.networkRanges(n, ""), pr); ok {
			return nil, errRangeConflict("resource.ipCidrRange", sn.IpCidrRange, r)
		}
		return c.p.checkSecondaryRanges(n, "", sn.Name, c.region, pr, secondary)
	}
	ranges, e := checkRanges(sn.SecondaryIpRanges)
	if e != nil {
		return nil, e
	}
	sn.SecondaryIpRanges = ranges
	sn.Network = n.SelfLink
	if sn.LogConfig != nil {
		// A logConfig sent is echoed with its enable flag, mirrored in
		// enableFlowLogs (recorded: fullalloydbcluster#8).
		sn.LogConfig.ForceSendFields = append(sn.LogConfig.ForceSendFields, "Enable")
		sn.EnableFlowLogs = sn.LogConfig.Enable
		sn.ForceSendFields = append(sn.ForceSendFields, "EnableFlowLogs")
	}
	c.p.fillSubnetwork(c.region, &sn)
	obj := &sn
	return s.startOp(c, opSpec{Type: "insert", Target: obj.SelfLink, TargetID: obj.Id, Scope: scope,
		Done: func() *apiError {
			if _, ok := c.p.subnetworks.get(scope, obj.Name); ok {
				return errAlreadyExists(relPath(c.p.name, scope, "subnetworks", obj.Name))
			}
			if _, e := checkRanges(obj.SecondaryIpRanges); e != nil {
				return e
			}
			c.p.subnetworks.put(scope, obj.Name, obj)
			n.Subnetworks = append(n.Subnetworks, obj.SelfLink)
			return nil
		}}), nil
}

func (s *Server) subnetworksGet(c *call) (any, *apiError) {
	sn, _, e := getNamed(c, c.p.subnetworks, "subnetworks")
	if e != nil {
		return nil, e
	}
	return sn, nil
}

func (s *Server) subnetworksList(c *call) (any, *apiError) {
	scope := "regions/" + c.region
	return s.listResponse(c, "compute#subnetworkList", toAny(c.p.subnetworks.list(scope)), c.p.link(scope, "subnetworks"))
}

func (s *Server) subnetworksAggregated(c *call) (any, *apiError) {
	return s.aggregatedResponse(c, "compute#subnetworkAggregatedList", "subnetworks", c.p.subnetworks.scoped(), s.regionScopes())
}

func (s *Server) subnetworksDelete(c *call) (any, *apiError) {
	scope := "regions/" + c.region
	sn, _, e := getNamed(c, c.p.subnetworks, "subnetworks")
	if e != nil {
		return nil, e
	}
	if n, ok := c.p.networks.get("global", lastSegment(sn.Network)); ok && n.AutoCreateSubnetworks {
		return nil, errBadRequest("Cannot delete the subnetwork of an auto-mode network.")
	}
	for _, in := range c.p.instances.list("") {
		for _, ni := range in.NetworkInterfaces {
			if ni.Subnetwork == sn.SelfLink {
				return nil, errInUse("subnetwork", relPath(c.p.name, scope, "subnetworks", sn.Name), s.trimLink(in.SelfLink))
			}
		}
	}
	return s.startOp(c, opSpec{Type: "delete", Target: sn.SelfLink, TargetID: sn.Id, Scope: scope,
		Done: func() *apiError {
			c.p.subnetworks.del(scope, sn.Name)
			delete(c.p.aliases, sn.SelfLink)
			if n, ok := c.p.networks.get("global", lastSegment(sn.Network)); ok {
				out := n.Subnetworks[:0]
				for _, l := range n.Subnetworks {
					if l != sn.SelfLink {
						out = append(out, l)
					}
				}
				n.Subnetworks = out
			}
			return nil
		}}), nil
}
