package emulator

import (
	"fmt"
	"net/netip"
	"time"

	compute "google.golang.org/api/compute/v1"
)

func (s *Server) routesAddresses() {
	s.handle("POST", "regions/{region}/addresses", "compute.addresses.insert", s.addressesInsert)
	s.handle("GET", "regions/{region}/addresses", "compute.addresses.list", s.addressesList)
	s.handle("GET", "regions/{region}/addresses/{address}", "compute.addresses.get", s.addressesGet)
	s.handle("DELETE", "regions/{region}/addresses/{address}", "compute.addresses.delete", s.addressesDelete)
	s.handle("POST", "regions/{region}/addresses/{resource}/setLabels", "compute.addresses.setLabels", s.addressesSetLabels)
	s.handle("GET", "aggregated/addresses", "compute.addresses.aggregatedList", s.addressesAggregated)
}

func (s *Server) addressesInsert(c *call) (any, *apiError) {
	var a compute.Address
	if e := c.decode(&a); e != nil {
		return nil, e
	}
	if e := checkName(a.Name); e != nil {
		return nil, e
	}
	scope := "regions/" + c.region
	if _, ok := c.p.addresses.get(scope, a.Name); ok {
		return nil, errAlreadyExists(relPath(c.p.name, scope, "addresses", a.Name))
	}
	if a.AddressType == "" {
		a.AddressType = "EXTERNAL"
	}
	if a.AddressType != "EXTERNAL" && a.AddressType != "INTERNAL" {
		return nil, errInvalidField("resource.addressType", a.AddressType, "")
	}
	// Internal addresses show the tier too (recorded: computeinstancebasicexample#22).
	if a.NetworkTier == "" {
		a.NetworkTier = "PREMIUM"
	}
	if a.AddressType == "EXTERNAL" {
		if e := c.p.checkQuota(c.region, "STATIC_ADDRESSES", 1); e != nil {
			return nil, e
		}
	}
	a.Kind = "compute#address"
	a.Id = s.newID()
	a.CreationTimestamp = timestamp(time.Now())
	a.Region = c.p.link(scope)
	a.SelfLink = c.p.link(scope, "addresses", a.Name)
	a.LabelFingerprint = fingerprint("labels", a.SelfLink, 0)
	// Labels sent at insert are not applied (recorded on real GCE); clients
	// follow with setLabels.
	a.Labels = nil
	a.ForceSendFields = append(a.ForceSendFields, "Description")
	a.Status = "RESERVING"

	promoteUser, e := c.p.reserveAddressIP(&a, c.region)
	if e != nil {
		return nil, e
	}
	obj := &a
	c.p.addresses.put(scope, obj.Name, obj)
	return s.startOp(c, opSpec{Type: "insert", Target: obj.SelfLink, TargetID: obj.Id, Scope: scope,
		Done: func() *apiError {
			if promoteUser != "" {
				obj.Status = "IN_USE"
				obj.Users = []string{promoteUser}
			} else {
				obj.Status = "RESERVED"
			}
			return nil
		},
		Fail: func() {
			c.p.addresses.del(scope, obj.Name)
			if promoteUser == "" {
				c.p.st.ips.release(addrOf(obj.Address))
			}
		}}), nil
}

// reserveAddressIP gives a new static address its IP: one of the subnet
// (internal), the one asked for, or a new external one. Asking for the
// current ephemeral IP of a VM of the region promotes it: promoteUser is
// then the VM, which keeps the IP.
func (p *project) reserveAddressIP(a *compute.Address, region string) (promoteUser string, e *apiError) {
	if a.AddressType == "INTERNAL" {
		if a.Purpose == "" {
			a.Purpose = "GCE_ENDPOINT"
		}
		n, e := p.networkRef(a.Network)
		if e != nil {
			return "", e
		}
		sn, e := p.subnetFor(n, region, a.Subnetwork)
		if e != nil {
			return "", e
		}
		if sn != nil {
			a.Subnetwork = sn.SelfLink
		}
		a.Network = ""
		if a.Address != "" {
			ip := addrOf(a.Address)
			if !ip.IsValid() || (sn != nil && !netip.MustParsePrefix(sn.IpCidrRange).Contains(ip)) {
				return "", errInvalidField("resource.address", a.Address, "The address is not within the subnetwork's range.")
			}
			if !p.st.ips.claim(ip, a.SelfLink) {
				return "", errInvalidField("resource.address", a.Address, "IP address is already in use.")
			}
		} else {
			ip, e := p.st.allocInternal(n, sn, a.SelfLink)
			if e != nil {
				return "", e
			}
			a.Address = ip.String()
		}
	} else if a.Address != "" {
		ip := addrOf(a.Address)
		if !ip.IsValid() || !ip.Is4() {
			return "", errInvalidField("resource.address", a.Address, "Must be a valid IPv4 address.")
		}
		holder, held := p.st.ips.holder(ip)
		switch {
		case !held:
			if !p.st.external.Contains(ip) {
				return "", errInvalidField("resource.address", a.Address, "The address is not available for reservation.")
			}
			p.st.ips.claim(ip, a.SelfLink)
		default:
			// Giving the current ephemeral IP of a VM promotes it to static.
			in := p.instanceByLink(holder)
			if in == nil || p.st.cat.regionOf(in.Zone) != region {
				return "", errInvalidField("resource.address", a.Address, "Specified IP address is in-use and would result in a conflict.")
			}
			promoteUser = holder
			p.st.ips.setHolder(ip, holder)
		}
	} else {
		ip, ok := p.st.ips.allocate(netip.Prefix{}, a.SelfLink)
		if !ok {
			return "", &apiError{Code: 400, Reason: "invalid", OpCode: "IP_SPACE_EXHAUSTED", Message: "No external IP addresses are available in region " + region + "."}
		}
		a.Address = ip.String()
	}
	return promoteUser, nil
}

func (s *Server) addressesGet(c *call) (any, *apiError) {
	a, _, e := getNamed(c, c.p.addresses, "addresses")
	if e != nil {
		return nil, e
	}
	return a, nil
}

func (s *Server) addressesList(c *call) (any, *apiError) {
	scope := "regions/" + c.region
	return s.listResponse(c, "compute#addressList", toAny(c.p.addresses.list(scope)), c.p.link(scope, "addresses"))
}

func (s *Server) addressesAggregated(c *call) (any, *apiError) {
	return s.aggregatedResponse(c, "compute#addressAggregatedList", "addresses", c.p.addresses.scoped(), s.regionScopes())
}

// addressesDelete releases a reservation. Releasing an address that is in use
// is allowed, as in GCE: the IP stays with its user as an ephemeral one.
func (s *Server) addressesDelete(c *call) (any, *apiError) {
	scope := "regions/" + c.region
	a, path, e := getNamed(c, c.p.addresses, "addresses")
	if e != nil {
		return nil, e
	}
	if e := c.p.checkNotBusy(a.SelfLink, path); e != nil {
		return nil, e
	}
	return s.startOp(c, opSpec{Type: "delete", Target: a.SelfLink, TargetID: a.Id, Scope: scope,
		Done: func() *apiError {
			c.p.releaseAddress(a)
			return nil
		}}), nil
}

// addressesSetLabels is DONE in the response, as recorded on GCE.
func (s *Server) addressesSetLabels(c *call) (any, *apiError) {
	a, _, e := getNamed(c, c.p.addresses, "addresses")
	if e != nil {
		return nil, e
	}
	if e := s.applyLabels(c, &a.Labels, &a.LabelFingerprint); e != nil {
		return nil, e
	}
	return s.startOp(c, opSpec{Type: "setLabels", Target: a.SelfLink, TargetID: a.Id, Scope: c.scope(), Immediate: true}), nil
}

// applyLabels is setLabels as GCE does it for every resource with labels:
// the labels must be valid and the request must carry the current label
// fingerprint. The labels apply at request time, so that a second writer
// holding the old fingerprint loses even while the operation runs; no
// labels are absent, not {}; the fingerprint changes.
func (s *Server) applyLabels(c *call, labels *map[string]string, fingerprint *string) *apiError {
	var req struct {
		Labels           map[string]string `json:"labels"`
		LabelFingerprint string            `json:"labelFingerprint"`
	}
	if e := c.decode(&req); e != nil {
		return e
	}
	if e := checkLabels(req.Labels); e != nil {
		return e
	}
	if req.LabelFingerprint != *fingerprint {
		return errFingerprint("Labels fingerprint either invalid or resource labels have changed")
	}
	if len(req.Labels) == 0 {
		req.Labels = nil
	}
	*labels, *fingerprint = req.Labels, s.newFingerprint()
	return nil
}

// checkLabels enforces GCE's label syntax: at most 64, keys start with a
// lowercase letter, keys and values ≤ 63 of [a-z0-9_-].
func checkLabels(labels map[string]string) *apiError {
	if len(labels) > 64 {
		return errInvalidField("labels", fmt.Sprint(len(labels)), "At most 64 labels are allowed.")
	}
	ok := func(s string, key bool) bool {
		if len(s) > 63 || (key && len(s) == 0) {
			return false
		}
		for i, r := range s {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9' && !(key && i == 0), r == '_' && !(key && i == 0), r == '-' && !(key && i == 0):
			default:
				return false
			}
		}
		return true
	}
	for k, v := range labels {
		if !ok(k, true) {
			return errInvalidField("labels."+k, k, "Label keys must start with a lowercase letter and contain only lowercase letters, digits, '_' and '-'.")
		}
		if !ok(v, false) {
			return errInvalidField("labels."+k, v, "Label values may contain only lowercase letters, digits, '_' and '-'.")
		}
	}
	return nil
}
