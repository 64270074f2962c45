package emulator

import (
	"net/netip"
	"strings"
	"time"

	compute "google.golang.org/api/compute/v1"
)

// Routes (global): a network's static routes.

func (s *Server) routesRoutes() {
	s.handle("POST", "global/routes", "compute.routes.insert", s.routesInsert)
	s.handle("GET", "global/routes", "compute.routes.list", s.routesList)
	s.handle("GET", "global/routes/{route}", "compute.routes.get", s.routesGet)
	s.handle("DELETE", "global/routes/{route}", "compute.routes.delete", s.routesDelete)
}

func (s *Server) routesInsert(c *call) (any, *apiError) {
	var rt compute.Route
	if e := c.decode(&rt); e != nil {
		return nil, e
	}
	if e := checkName(rt.Name); e != nil {
		return nil, e
	}
	if _, ok := c.p.routes.get("global", rt.Name); ok {
		return nil, errAlreadyExists(relPath(c.p.name, "global", "routes", rt.Name))
	}
	if rt.DestRange == "" {
		return nil, errRequired("resource.destRange")
	}
	if _, err := netip.ParsePrefix(rt.DestRange); err != nil {
		return nil, errInvalidField("resource.destRange", rt.DestRange, "Must be a valid CIDR range.")
	}
	if !strings.Contains(string(c.body), `"priority"`) {
		return nil, errRequired("resource.priority")
	}
	hops := 0
	for _, h := range []string{rt.NextHopInstance, rt.NextHopIp, rt.NextHopGateway, rt.NextHopNetwork, rt.NextHopVpnTunnel, rt.NextHopIlb} {
		if h != "" {
			hops++
		}
	}
	if hops != 1 {
		return nil, errInvalidField("resource", rt.Name, "Exactly one next hop must be specified.")
	}
	n, e := c.p.networkRef(rt.Network)
	if e != nil {
		return nil, e
	}
	if e := c.p.checkQuota("", "ROUTES", 1); e != nil {
		return nil, e
	}
	rt.Network = n.SelfLink
	rt.Kind = "compute#route"
	rt.Id = s.newID()
	rt.CreationTimestamp = timestamp(time.Now())
	rt.SelfLink = c.p.link("global", "routes", rt.Name)
	rt.RouteType = "STATIC"
	rt.RouteStatus = "ACTIVE"
	rt.ForceSendFields = append(rt.ForceSendFields, "Priority")
	if rt.NextHopInstance != "" {
		r, ok := parseRef(rt.NextHopInstance, ref{Project: c.p.name, Coll: "instances"})
		if !ok || r.Coll != "instances" || r.Scope == "" {
			return nil, errInvalidField("resource.nextHopInstance", rt.NextHopInstance, "")
		}
		rt.NextHopInstance = s.link(r.Project, r.Scope, "instances", r.Name)
		if in, ok := c.p.instances.get(r.Scope, r.Name); !ok {
			rt.Warnings = []*compute.RouteWarnings{{Code: "NEXT_HOP_INSTANCE_NOT_FOUND",
				Message: "Next hop instance '" + s.trimLink(rt.NextHopInstance) + "' does not exist."}}
		} else if in.Status != "RUNNING" {
			rt.Warnings = []*compute.RouteWarnings{{Code: "NEXT_HOP_NOT_RUNNING",
				Message: "Next hop instance '" + s.trimLink(rt.NextHopInstance) + "' is not running."}}
		}
	}
	if rt.NextHopGateway != "" {
		rt.NextHopGateway = c.p.link("global", "gateways", lastSegment(rt.NextHopGateway))
	}
	obj := &rt
	return s.startOp(c, opSpec{Type: "insert", Target: obj.SelfLink, TargetID: obj.Id, Scope: "global",
		Done: func() *apiError {
			c.p.routes.put("global", obj.Name, obj)
			return nil
		}}), nil
}

func (s *Server) routesGet(c *call) (any, *apiError) {
	rt, _, e := getNamed(c, c.p.routes, "routes")
	if e != nil {
		return nil, e
	}
	return rt, nil
}

func (s *Server) routesList(c *call) (any, *apiError) {
	return s.listResponse(c, "compute#routeList", toAny(c.p.routes.list("global")), c.p.link("global", "routes"))
}

func (s *Server) routesDelete(c *call) (any, *apiError) {
	rt, _, e := getNamed(c, c.p.routes, "routes")
	if e != nil {
		return nil, e
	}
	return s.startOp(c, opSpec{Type: "delete", Target: rt.SelfLink, TargetID: rt.Id, Scope: "global",
		Done: func() *apiError {
			c.p.routes.del("global", rt.Name)
			return nil
		}}), nil
}
