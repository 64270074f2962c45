package emulator

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	compute "google.golang.org/api/compute/v1"
)

// Target pools (regional): the backends of external passthrough network
// load balancers.

func (s *Server) routesTargetPools() {
	const one = "regions/{region}/targetPools/{targetPool}"
	s.handle("POST", "regions/{region}/targetPools", "compute.targetPools.insert", s.targetPoolsInsert)
	s.handle("GET", "regions/{region}/targetPools", "compute.targetPools.list", s.targetPoolsList)
	s.handle("GET", one, "compute.targetPools.get", s.targetPoolsGet)
	s.handle("DELETE", one, "compute.targetPools.delete", s.targetPoolsDelete)
	s.handle("POST", one+"/addInstance", "compute.targetPools.addInstance", s.targetPoolsAddInstance)
	s.handle("POST", one+"/removeInstance", "compute.targetPools.removeInstance", s.targetPoolsRemoveInstance)
	s.handle("POST", one+"/addHealthCheck", "compute.targetPools.addHealthCheck", s.targetPoolsAddHealthCheck)
	s.handle("POST", one+"/removeHealthCheck", "compute.targetPools.removeHealthCheck", s.targetPoolsRemoveHealthCheck)
	s.handle("POST", one+"/getHealth", "compute.targetPools.getHealth", s.targetPoolsGetHealth)
	s.handle("GET", "aggregated/targetPools", "compute.targetPools.aggregatedList", s.targetPoolsAggregated)
}

// dropFromTargetPools removes a deleted instance from every pool, as GCE
// does on its own.
func (p *project) dropFromTargetPools(instanceLink string) {
	for _, tp := range p.targetPools.list("") {
		out := tp.Instances[:0]
		for _, l := range tp.Instances {
			if l != instanceLink {
				out = append(out, l)
			}
		}
		tp.Instances = out
		if len(tp.Instances) == 0 {
			tp.Instances = nil // absent, not [], when empty
		}
	}
}

// poolInstance resolves an instance reference given to a pool of region:
// the instance must exist (404) and live in that region (400).
func (p *project) poolInstance(region, v, field string) (*instanceRec, *apiError) {
	r, ok := parseRef(v, ref{Project: p.name, Coll: "instances"})
	if !ok || r.Coll != "instances" || !strings.HasPrefix(r.Scope, "zones/") {
		return nil, errInvalidField(field, v, "Must be an instance URL (projects/P/zones/Z/instances/N).")
	}
	in, found := p.instances.get(r.Scope, r.Name)
	if !found || r.Project != p.name {
		return nil, errNotFound(relPath(r.Project, r.Scope, "instances", r.Name))
	}
	if got := p.st.cat.regionOf(r.scopeName()); got != region {
		return nil, errInvalidField(field, v, fmt.Sprintf("Instance is in region '%s', not in the target pool's region '%s'.", got, region))
	}
	return in, nil
}

// instanceLinkOf normalises an instance reference to an absolute link without
// requiring the instance to exist (removeInstance, getHealth).
func (p *project) instanceLinkOf(v, field string) (string, *apiError) {
	r, ok := parseRef(v, ref{Project: p.name, Coll: "instances"})
	if !ok || r.Coll != "instances" || !strings.HasPrefix(r.Scope, "zones/") {
		return "", errInvalidField(field, v, "Must be an instance URL (projects/P/zones/Z/instances/N).")
	}
	return p.st.link(r.Project, r.Scope, "instances", r.Name), nil
}

func (s *Server) targetPoolsInsert(c *call) (any, *apiError) {
	var tp compute.TargetPool
	if e := c.decode(&tp); e != nil {
		return nil, e
	}
	if e := checkName(tp.Name); e != nil {
		return nil, e
	}
	scope := "regions/" + c.region
	if _, ok := c.p.targetPools.get(scope, tp.Name); ok {
		return nil, errAlreadyExists(relPath(c.p.name, scope, "targetPools", tp.Name))
	}
	switch tp.SessionAffinity {
	case "":
		tp.SessionAffinity = "NONE"
	case "NONE", "CLIENT_IP", "CLIENT_IP_PROTO":
	default:
		return nil, errInvalidField("resource.sessionAffinity", tp.SessionAffinity, "")
	}
	if tp.FailoverRatio < 0 || tp.FailoverRatio > 1 {
		return nil, errInvalidField("resource.failoverRatio", strconv.FormatFloat(tp.FailoverRatio, 'g', -1, 64), "Must be within [0, 1].")
	}
	var members []string
	for i, v := range tp.Instances {
		in, e := c.p.poolInstance(c.region, v, fmt.Sprintf("resource.instances[%d]", i))
		if e != nil {
			return nil, e
		}
		if !slices.Contains(members, in.SelfLink) {
			members = append(members, in.SelfLink)
		}
	}
	tp.Instances = members
	if len(tp.HealthChecks) > 1 {
		return nil, errInvalidField("resource.healthChecks", strings.Join(tp.HealthChecks, ","), "A target pool can have at most one health check.")
	}
	for i, v := range tp.HealthChecks {
		hc, e := c.p.httpHealthCheckRef(v, fmt.Sprintf("resource.healthChecks[%d]", i))
		if e != nil {
			return nil, e
		}
		tp.HealthChecks[i] = hc.SelfLink
	}
	if tp.BackupPool != "" {
		bp, e := c.p.targetPoolRef(c.region, tp.BackupPool, "resource.backupPool")
		if e != nil {
			return nil, e
		}
		tp.BackupPool = bp.SelfLink
	}
	if tp.SecurityPolicy != "" {
		return nil, errInvalidField("resource.securityPolicy", tp.SecurityPolicy, "Security policies are not supported by the emulator.")
	}
	if e := c.p.checkQuota(c.region, "TARGET_POOLS", 1); e != nil {
		return nil, e
	}
	tp.Kind = "compute#targetPool"
	tp.Id = s.newID()
	tp.CreationTimestamp = timestamp(time.Now())
	tp.Region = c.p.link(scope)
	tp.SelfLink = c.p.link(scope, "targetPools", tp.Name)
	tp.ForceSendFields = []string{"Description"}
	tp.NullFields = nil
	obj := &tp
	// Stored at once: a racing insert of the same name is a 409, quota counts
	// it, and mutations wait for the insert (resourceNotReady).
	c.p.targetPools.put(scope, obj.Name, obj)
	return s.startOp(c, opSpec{Type: "insert", Target: obj.SelfLink, TargetID: obj.Id, Scope: scope,
		Fail: func() { c.p.targetPools.del(scope, obj.Name) }}), nil
}

// targetPoolRef resolves a reference to an existing pool of region.
func (p *project) targetPoolRef(region, v, field string) (*compute.TargetPool, *apiError) {
	r, ok := parseRef(v, ref{Project: p.name, Scope: "regions/" + region, Coll: "targetPools"})
	if !ok || r.Coll != "targetPools" || !strings.HasPrefix(r.Scope, "regions/") {
		return nil, errInvalidField(field, v, "Must be a target pool URL (projects/P/regions/R/targetPools/N).")
	}
	tp, found := p.targetPools.get(r.Scope, r.Name)
	if !found || r.Project != p.name {
		return nil, errNotFound(relPath(r.Project, r.Scope, "targetPools", r.Name))
	}
	if r.scopeName() != region {
		return nil, errInvalidField(field, v, fmt.Sprintf("The target pool is in region '%s', not '%s'.", r.scopeName(), region))
	}
	return tp, nil
}

func (s *Server) targetPoolsGet(c *call) (any, *apiError) {
	tp, _, e := getNamed(c, c.p.targetPools, "targetPools")
	if e != nil {
		return nil, e
	}
	return tp, nil
}

func (s *Server) targetPoolsList(c *call) (any, *apiError) {
	scope := "regions/" + c.region
	return s.listResponse(c, "compute#targetPoolList", toAny(c.p.targetPools.list(scope)), c.p.link(scope, "targetPools"))
}

func (s *Server) targetPoolsAggregated(c *call) (any, *apiError) {
	return s.aggregatedResponse(c, "compute#targetPoolAggregatedList", "targetPools", c.p.targetPools.scoped(), s.regionScopes())
}

// targetPoolUser returns the selfLink of a resource that references the pool:
// a forwarding rule targeting it, or a pool using it as its backup.
func (p *project) targetPoolUser(link string) string {
	for _, fr := range p.forwardingRules.list("") {
		if fr.Target == link {
			return fr.SelfLink
		}
	}
	for _, tp := range p.targetPools.list("") {
		if tp.BackupPool == link && tp.SelfLink != link {
			return tp.SelfLink
		}
	}
	return ""
}

// mutablePool finds the pool named in the path and checks it is free for a
// mutation.
func (s *Server) mutablePool(c *call) (*compute.TargetPool, string, *apiError) {
	tp, path, e := getNamed(c, c.p.targetPools, "targetPools")
	if e != nil {
		return nil, path, e
	}
	if e := c.p.checkNotBusy(tp.SelfLink, path); e != nil {
		return nil, path, e
	}
	return tp, path, nil
}

// targetPoolsDelete refuses synchronously while a forwarding rule targets
// the pool (GCE: 400 resourceInUseByAnotherResource).
func (s *Server) targetPoolsDelete(c *call) (any, *apiError) {
	tp, path, e := s.mutablePool(c)
	if e != nil {
		return nil, e
	}
	if user := c.p.targetPoolUser(tp.SelfLink); user != "" {
		return nil, errInUse("target_pool", path, s.trimLink(user))
	}
	scope := "regions/" + c.region
	return s.startOp(c, opSpec{Type: "delete", Target: tp.SelfLink, TargetID: tp.Id, Scope: scope,
		Done: func() *apiError {
			if user := c.p.targetPoolUser(tp.SelfLink); user != "" {
				return errInUse("target_pool", path, s.trimLink(user))
			}
			c.p.targetPools.del(scope, tp.Name)
			return nil
		}}), nil
}

func (s *Server) targetPoolsAddInstance(c *call) (any, *apiError) {
	tp, _, e := s.mutablePool(c)
	if e != nil {
		return nil, e
	}
	var req compute.TargetPoolsAddInstanceRequest
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	var add []string
	for i, ir := range req.Instances {
		if ir == nil {
			continue
		}
		in, e := c.p.poolInstance(c.region, ir.Instance, fmt.Sprintf("resource.instances[%d].instance", i))
		if e != nil {
			return nil, e
		}
		add = append(add, in.SelfLink)
	}
	return s.startOp(c, opSpec{Type: "AddInstance", Target: tp.SelfLink, TargetID: tp.Id, Scope: "regions/" + c.region,
		Done: func() *apiError {
			for _, l := range add {
				// Adding a member twice is a no-op; an instance deleted
				// meanwhile is not added back.
				if !slices.Contains(tp.Instances, l) && c.p.instanceByLink(l) != nil {
					tp.Instances = append(tp.Instances, l)
				}
			}
			return nil
		}}), nil
}

func (s *Server) targetPoolsRemoveInstance(c *call) (any, *apiError) {
	tp, _, e := s.mutablePool(c)
	if e != nil {
		return nil, e
	}
	var req compute.TargetPoolsRemoveInstanceRequest
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	var drop []string
	for i, ir := range req.Instances {
		if ir == nil {
			continue
		}
		field := fmt.Sprintf("resource.instances[%d].instance", i)
		l, e := c.p.instanceLinkOf(ir.Instance, field)
		if e != nil {
			return nil, e
		}
		if !slices.Contains(tp.Instances, l) {
			return nil, errInvalidField(field, ir.Instance, "Instance is not currently attached to this target pool.")
		}
		drop = append(drop, l)
	}
	return s.startOp(c, opSpec{Type: "RemoveInstance", Target: tp.SelfLink, TargetID: tp.Id, Scope: "regions/" + c.region,
		Done: func() *apiError {
			var out []string
			for _, l := range tp.Instances {
				if !slices.Contains(drop, l) {
					out = append(out, l)
				}
			}
			tp.Instances = out
			return nil
		}}), nil
}

func (s *Server) targetPoolsAddHealthCheck(c *call) (any, *apiError) {
	tp, _, e := s.mutablePool(c)
	if e != nil {
		return nil, e
	}
	var req compute.TargetPoolsAddHealthCheckRequest
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	var add []string
	for i, r := range req.HealthChecks {
		if r == nil {
			continue
		}
		hc, e := c.p.httpHealthCheckRef(r.HealthCheck, fmt.Sprintf("resource.healthChecks[%d].healthCheck", i))
		if e != nil {
			return nil, e
		}
		if !slices.Contains(add, hc.SelfLink) {
			add = append(add, hc.SelfLink)
		}
	}
	for _, l := range add {
		if !slices.Contains(tp.HealthChecks, l) && len(tp.HealthChecks)+len(add) > 1 {
			return nil, errInvalidField("resource.healthChecks", l, "A target pool can have at most one health check.")
		}
	}
	return s.startOp(c, opSpec{Type: "AddHealthCheck", Target: tp.SelfLink, TargetID: tp.Id, Scope: "regions/" + c.region,
		Done: func() *apiError {
			for _, l := range add {
				if !slices.Contains(tp.HealthChecks, l) {
					tp.HealthChecks = append(tp.HealthChecks, l)
				}
			}
			return nil
		}}), nil
}

func (s *Server) targetPoolsRemoveHealthCheck(c *call) (any, *apiError) {
	tp, _, e := s.mutablePool(c)
	if e != nil {
		return nil, e
	}
	var req compute.TargetPoolsRemoveHealthCheckRequest
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	var drop []string
	for i, r := range req.HealthChecks {
		if r == nil {
			continue
		}
		field := fmt.Sprintf("resource.healthChecks[%d].healthCheck", i)
		hr, ok := parseRef(r.HealthCheck, ref{Project: c.p.name, Scope: "global", Coll: "httpHealthChecks"})
		if !ok || hr.Coll != "httpHealthChecks" {
			return nil, errInvalidField(field, r.HealthCheck, "Must be a legacy HTTP health check (global/httpHealthChecks).")
		}
		l := s.link(hr.Project, "global", "httpHealthChecks", hr.Name)
		if !slices.Contains(tp.HealthChecks, l) {
			return nil, errInvalidField(field, r.HealthCheck, "Health check is not currently attached to this target pool.")
		}
		drop = append(drop, l)
	}
	return s.startOp(c, opSpec{Type: "RemoveHealthCheck", Target: tp.SelfLink, TargetID: tp.Id, Scope: "regions/" + c.region,
		Done: func() *apiError {
			var out []string
			for _, l := range tp.HealthChecks {
				if !slices.Contains(drop, l) {
					out = append(out, l)
				}
			}
			tp.HealthChecks = out
			return nil
		}}), nil
}

// targetPoolsGetHealth reports a member's health once per forwarding rule
// IP that serves the pool, as GCE does.
func (s *Server) targetPoolsGetHealth(c *call) (any, *apiError) {
	scope := "regions/" + c.region
	tp, _, e := getNamed(c, c.p.targetPools, "targetPools")
	if e != nil {
		return nil, e
	}
	var req compute.InstanceReference
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	if req.Instance == "" {
		return nil, errRequired("resource.instance")
	}
	l, e := c.p.instanceLinkOf(req.Instance, "resource.instance")
	if e != nil {
		return nil, e
	}
	if !slices.Contains(tp.Instances, l) {
		return nil, errInvalidField("resource.instance", req.Instance, "Instance is not currently attached to this target pool.")
	}
	in := c.p.instanceByLink(l)
	if in == nil || in.Status != "RUNNING" {
		return nil, errNotReady(s.trimLink(l))
	}
	state := s.memberHealth(c.p, tp.SelfLink, l)
	out := &compute.TargetPoolInstanceHealth{Kind: "compute#targetPoolInstanceHealth"}
	for _, fr := range c.p.forwardingRules.list(scope) {
		if fr.Target != tp.SelfLink {
			continue
		}
		hs := &compute.HealthStatus{HealthState: state, Instance: l, IpAddress: fr.IPAddress}
		if lo, _, ok := strings.Cut(fr.PortRange, "-"); ok {
			hs.Port, _ = strconv.ParseInt(lo, 10, 64)
		}
		out.HealthStatus = append(out.HealthStatus, hs)
	}
	if len(out.HealthStatus) == 0 {
		out.HealthStatus = []*compute.HealthStatus{{HealthState: state, Instance: l}}
	}
	return out, nil
}
