package emulator

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	compute "google.golang.org/api/compute/v1"
)

func (s *Server) routesFirewalls() {
	s.handle("POST", "global/firewalls", "compute.firewalls.insert", s.firewallsInsert)
	s.handle("GET", "global/firewalls", "compute.firewalls.list", s.firewallsList)
	s.handle("GET", "global/firewalls/{firewall}", "compute.firewalls.get", s.firewallsGet)
	s.handle("DELETE", "global/firewalls/{firewall}", "compute.firewalls.delete", s.firewallsDelete)
}

// fillFirewall applies GCE's defaults (recorded: direction INGRESS, priority
// 1000, sourceRanges 0.0.0.0/0 for ingress without sources, logConfig off).
func (p *project) fillFirewall(fw *compute.Firewall) {
	fw.Kind = "compute#firewall"
	fw.Id = p.st.newID()
	fw.CreationTimestamp = timestamp(time.Now())
	fw.SelfLink = p.link("global", "firewalls", fw.Name)
	if fw.Direction == "" {
		fw.Direction = "INGRESS"
	}
	if fw.Priority == 0 && !slices.Contains(fw.ForceSendFields, "Priority") {
		fw.Priority = 1000
	}
	if fw.Direction == "INGRESS" && len(fw.SourceRanges) == 0 && len(fw.SourceTags) == 0 && len(fw.SourceServiceAccounts) == 0 {
		fw.SourceRanges = []string{"0.0.0.0/0"}
	}
	if fw.Direction == "EGRESS" && len(fw.DestinationRanges) == 0 {
		fw.DestinationRanges = []string{"0.0.0.0/0"}
	}
	fw.LogConfig = &compute.FirewallLogConfig{Enable: false, ForceSendFields: []string{"Enable"}}
	fw.ForceSendFields = append(fw.ForceSendFields, "Description", "Disabled", "Priority")
}

func (s *Server) firewallsInsert(c *call) (any, *apiError) {
	var fw compute.Firewall
	if e := c.decode(&fw); e != nil {
		return nil, e
	}
	// An explicit priority 0 is the highest priority, not "unset": decoding
	// cannot tell them apart, the raw body can.
	var raw map[string]json.RawMessage
	if json.Unmarshal(c.body, &raw) == nil && raw["priority"] != nil && string(raw["priority"]) != "null" {
		fw.ForceSendFields = append(fw.ForceSendFields, "Priority")
	}
	if e := checkName(fw.Name); e != nil {
		return nil, e
	}
	if _, ok := c.p.firewalls.get("global", fw.Name); ok {
		return nil, errAlreadyExists(relPath(c.p.name, "global", "firewalls", fw.Name))
	}
	if fw.Direction != "" && fw.Direction != "INGRESS" && fw.Direction != "EGRESS" {
		return nil, errInvalidField("resource.direction", fw.Direction, "")
	}
	if fw.Priority < 0 || fw.Priority > 65535 {
		return nil, errInvalidField("resource.priority", strconv.FormatInt(fw.Priority, 10), "Must be between 0 and 65535.")
	}
	if len(fw.Allowed) == 0 && len(fw.Denied) == 0 {
		return nil, errInvalidField("resource", fw.Name, "A firewall rule must allow or deny some traffic.")
	}
	if len(fw.Allowed) > 0 && len(fw.Denied) > 0 {
		return nil, errInvalidField("resource", fw.Name, "A firewall rule cannot both allow and deny traffic.")
	}
	for i, a := range append(append([]*compute.FirewallAllowed{}, fw.Allowed...), deniedAsAllowed(fw.Denied)...) {
		if e := checkFirewallRule(i, a.IPProtocol, a.Ports); e != nil {
			return nil, e
		}
	}
	for _, r := range append(append([]string{}, fw.SourceRanges...), fw.DestinationRanges...) {
		if _, err := netip.ParsePrefix(r); err != nil {
			if _, err := netip.ParseAddr(r); err != nil {
				return nil, errInvalidField("resource.sourceRanges", r, "Must be a valid CIDR range.")
			}
		}
	}
	n, e := c.p.networkRef(fw.Network)
	if e != nil {
		return nil, e
	}
	if e := c.p.checkQuota("", "FIREWALLS", 1); e != nil {
		return nil, e
	}
	fw.Network = n.SelfLink
	c.p.fillFirewall(&fw)
	obj := &fw
	return s.startOp(c, opSpec{Type: "insert", Target: obj.SelfLink, TargetID: obj.Id, Scope: "global",
		Done: func() *apiError {
			if _, ok := c.p.firewalls.get("global", obj.Name); ok {
				return errAlreadyExists(relPath(c.p.name, "global", "firewalls", obj.Name))
			}
			if _, ok := c.p.networks.get("global", n.Name); !ok {
				return errNotFound(relPath(c.p.name, "global", "networks", n.Name))
			}
			c.p.firewalls.put("global", obj.Name, obj)
			return nil
		}}), nil
}

func deniedAsAllowed(d []*compute.FirewallDenied) []*compute.FirewallAllowed {
	out := make([]*compute.FirewallAllowed, len(d))
	for i, x := range d {
		out[i] = &compute.FirewallAllowed{IPProtocol: x.IPProtocol, Ports: x.Ports}
	}
	return out
}

func checkFirewallRule(i int, proto string, ports []string) *apiError {
	switch strings.ToLower(proto) {
	case "tcp", "udp", "sctp":
	case "icmp", "esp", "ah", "ipip", "all":
		if len(ports) > 0 {
			return errInvalidField("resource.allowed["+strconv.Itoa(i)+"].ports", strings.Join(ports, ","), "Ports may only be given for tcp, udp and sctp.")
		}
	default:
		if n, err := strconv.Atoi(proto); err != nil || n < 0 || n > 255 {
			return errInvalidField("resource.allowed["+strconv.Itoa(i)+"].IPProtocol", proto, "")
		}
	}
	for _, p := range ports {
		lo, hi, ok := strings.Cut(p, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if ok {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 0 || b > 65535 || a > b {
			return errInvalidField("resource.allowed["+strconv.Itoa(i)+"].ports", p, "Must be a port or a port range within 0-65535.")
		}
	}
	return nil
}

func (s *Server) firewallsGet(c *call) (any, *apiError) {
	fw, _, e := getNamed(c, c.p.firewalls, "firewalls")
	if e != nil {
		return nil, e
	}
	return fw, nil
}

func (s *Server) firewallsList(c *call) (any, *apiError) {
	return s.listResponse(c, "compute#firewallList", toAny(c.p.firewalls.list("global")), c.p.link("global", "firewalls"))
}

func (s *Server) firewallsDelete(c *call) (any, *apiError) {
	fw, path, e := getNamed(c, c.p.firewalls, "firewalls")
	if e != nil {
		return nil, e
	}
	if e := c.p.checkNotBusy(fw.SelfLink, path); e != nil {
		return nil, e
	}
	return s.startOp(c, opSpec{Type: "delete", Target: fw.SelfLink, TargetID: fw.Id, Scope: "global",
		Done: func() *apiError {
			c.p.firewalls.del("global", fw.Name)
			return nil
		}}), nil
}
