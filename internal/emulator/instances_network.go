// An instance's external IPs: adding and removing access configs.

package emulator

import (
	"net/netip"

	compute "google.golang.org/api/compute/v1"
)

// nicByQuery finds the NIC named by the networkInterface query parameter.
func nicByQuery(c *call, in *instanceRec) (*compute.NetworkInterface, *apiError) {
	name := c.query("networkInterface")
	if name == "" {
		return nil, errRequired("networkInterface")
	}
	for _, ni := range in.NetworkInterfaces {
		if ni.Name == name {
			return ni, nil
		}
	}
	return nil, errInvalidField("networkInterface", name, "The network interface does not exist on this instance.")
}

// bumpNIC gives a NIC (and the instance) new fingerprints after a change.
func (s *Server) bumpNIC(in *instanceRec, ni *compute.NetworkInterface) {
	ni.Fingerprint = s.newFingerprint()
	in.Fingerprint = s.newFingerprint()
}

// instancesAddAccessConfig claims the IP at request time (so a conflicting
// claim fails synchronously) and attaches it when the operation is DONE.
func (s *Server) instancesAddAccessConfig(c *call) (any, *apiError) {
	in, e := s.mutableInstance(c)
	if e != nil {
		return nil, e
	}
	ni, e := nicByQuery(c, in)
	if e != nil {
		return nil, e
	}
	var ac compute.AccessConfig
	if e := c.decode(&ac); e != nil {
		return nil, e
	}
	if len(ni.AccessConfigs) > 0 {
		return nil, errBadRequest("At most one access config currently supported.")
	}
	if e := checkAccessConfig(&ac, "resource"); e != nil {
		return nil, e
	}
	region := s.cat.regionOf(c.zone)
	var ip netip.Addr
	switch {
	case ac.NatIP != "":
		ip = addrOf(ac.NatIP)
		if !ip.Is4() {
			return nil, errInvalidField("resource.natIP", ac.NatIP, "Must be a valid IPv4 address.")
		}
		if e := c.p.useExternalIP(region, ip, in.SelfLink, "resource.natIP"); e != nil {
			return nil, e
		}
	case in.Status != "TERMINATED":
		a, e := s.allocEphemeral(in.SelfLink)
		if e != nil {
			return nil, e
		}
		ip = a
		ac.NatIP = ip.String()
	}
	obj := &ac
	return s.startInstanceOp(c, in, opSpec{Type: "addAccessConfig", Target: in.SelfLink, TargetID: in.Id, Scope: "zones/" + c.zone,
		Done: func() *apiError {
			if in.deleting || in.gone {
				c.p.releaseExternalIP(ip, in.SelfLink)
				return nil
			}
			if len(ni.AccessConfigs) > 0 {
				c.p.releaseExternalIP(ip, in.SelfLink)
				return errBadRequest("At most one access config currently supported.")
			}
			ni.AccessConfigs = append(ni.AccessConfigs, obj)
			s.bumpNIC(in, ni)
			return nil
		},
		Fail: func() { c.p.releaseExternalIP(ip, in.SelfLink) }}), nil
}

// instancesDeleteAccessConfig detaches the IP when the operation is DONE:
// until then the old IP still reaches the VM.
func (s *Server) instancesDeleteAccessConfig(c *call) (any, *apiError) {
	in, e := s.mutableInstance(c)
	if e != nil {
		return nil, e
	}
	name := c.query("accessConfig")
	if name == "" {
		return nil, errRequired("accessConfig")
	}
	ni, e := nicByQuery(c, in)
	if e != nil {
		return nil, e
	}
	found := false
	for _, ac := range ni.AccessConfigs {
		found = found || ac.Name == name
	}
	if !found {
		return nil, errInvalidField("accessConfig", name, "The access config does not exist on this network interface.")
	}
	return s.startInstanceOp(c, in, opSpec{Type: "deleteAccessConfig", Target: in.SelfLink, TargetID: in.Id, Scope: "zones/" + c.zone,
		Done: func() *apiError {
			if in.deleting || in.gone {
				return nil
			}
			out := ni.AccessConfigs[:0]
			for _, ac := range ni.AccessConfigs {
				if ac.Name == name {
					c.p.releaseExternalIP(addrOf(ac.NatIP), in.SelfLink)
					continue
				}
				out = append(out, ac)
			}
			if len(out) == 0 {
				out = nil
			}
			ni.AccessConfigs = out
			s.bumpNIC(in, ni)
			return nil
		}}), nil
}

func checkAccessConfig(ac *compute.AccessConfig, f string) *apiError {
	if ac.Type == "" {
		ac.Type = "ONE_TO_ONE_NAT"
	}
	if ac.Type != "ONE_TO_ONE_NAT" {
		return errInvalidField(f+".type", ac.Type, "Only ONE_TO_ONE_NAT access configs are supported.")
	}
	if ac.Name == "" {
		ac.Name = "external-nat"
	}
	if ac.NetworkTier == "" {
		ac.NetworkTier = "PREMIUM"
	}
	if ac.NetworkTier != "PREMIUM" && ac.NetworkTier != "STANDARD" {
		return errInvalidField(f+".networkTier", ac.NetworkTier, "")
	}
	ac.Kind = "compute#accessConfig"
	return nil
}
