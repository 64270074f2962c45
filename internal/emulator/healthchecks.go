package emulator

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	compute "google.golang.org/api/compute/v1"
)

// Legacy HTTP health checks (global). Target pools accept only these.

func (s *Server) routesHealthChecks() {
	s.handle("POST", "global/httpHealthChecks", "compute.httpHealthChecks.insert", s.httpHealthChecksInsert)
	s.handle("GET", "global/httpHealthChecks", "compute.httpHealthChecks.list", s.httpHealthChecksList)
	s.handle("GET", "global/httpHealthChecks/{httpHealthCheck}", "compute.httpHealthChecks.get", s.httpHealthChecksGet)
	s.handle("DELETE", "global/httpHealthChecks/{httpHealthCheck}", "compute.httpHealthChecks.delete", s.httpHealthChecksDelete)
	s.handle("PUT", "global/httpHealthChecks/{httpHealthCheck}", "compute.httpHealthChecks.update", s.httpHealthChecksUpdate)
	s.handle("PATCH", "global/httpHealthChecks/{httpHealthCheck}", "compute.httpHealthChecks.patch", s.httpHealthChecksPatch)
}

// httpHealthCheckDefaults fills what GCE defaults (recorded: port 80, "/",
// 5 s interval and timeout, thresholds of 2).
func httpHealthCheckDefaults(hc *compute.HttpHealthCheck) {
	if hc.Port == 0 {
		hc.Port = 80
	}
	if hc.RequestPath == "" {
		hc.RequestPath = "/"
	}
	if hc.CheckIntervalSec == 0 {
		hc.CheckIntervalSec = 5
	}
	if hc.TimeoutSec == 0 {
		hc.TimeoutSec = 5
	}
	if hc.HealthyThreshold == 0 {
		hc.HealthyThreshold = 2
	}
	if hc.UnhealthyThreshold == 0 {
		hc.UnhealthyThreshold = 2
	}
}

func checkHTTPHealthCheck(hc *compute.HttpHealthCheck) *apiError {
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	switch {
	case hc.Port < 1 || hc.Port > 65535:
		return errInvalidField("resource.port", i64(hc.Port), "Must be between 1 and 65535.")
	case !strings.HasPrefix(hc.RequestPath, "/"):
		return errInvalidField("resource.requestPath", hc.RequestPath, "Must start with '/'.")
	case hc.CheckIntervalSec < 1 || hc.CheckIntervalSec > 300:
		return errInvalidField("resource.checkIntervalSec", i64(hc.CheckIntervalSec), "Must be between 1 and 300.")
	case hc.TimeoutSec < 1 || hc.TimeoutSec > 300:
		return errInvalidField("resource.timeoutSec", i64(hc.TimeoutSec), "Must be between 1 and 300.")
	case hc.TimeoutSec > hc.CheckIntervalSec:
		return errInvalidField("resource.timeoutSec", i64(hc.TimeoutSec), "TimeoutSec should be less than or equal to checkIntervalSec.")
	case hc.HealthyThreshold < 1 || hc.HealthyThreshold > 10:
		return errInvalidField("resource.healthyThreshold", i64(hc.HealthyThreshold), "Must be between 1 and 10.")
	case hc.UnhealthyThreshold < 1 || hc.UnhealthyThreshold > 10:
		return errInvalidField("resource.unhealthyThreshold", i64(hc.UnhealthyThreshold), "Must be between 1 and 10.")
	}
	return nil
}

func (s *Server) httpHealthChecksInsert(c *call) (any, *apiError) {
	var hc compute.HttpHealthCheck
	if e := c.decode(&hc); e != nil {
		return nil, e
	}
	if e := checkName(hc.Name); e != nil {
		return nil, e
	}
	if _, ok := c.p.httpHealthChecks.get("global", hc.Name); ok {
		return nil, errAlreadyExists(relPath(c.p.name, "global", "httpHealthChecks", hc.Name))
	}
	httpHealthCheckDefaults(&hc)
	if e := checkHTTPHealthCheck(&hc); e != nil {
		return nil, e
	}
	if e := c.p.checkQuota("", "HEALTH_CHECKS", 1); e != nil {
		return nil, e
	}
	hc.Kind = "compute#httpHealthCheck"
	hc.Id = s.newID()
	hc.CreationTimestamp = timestamp(time.Now())
	hc.SelfLink = c.p.link("global", "httpHealthChecks", hc.Name)
	// GCE returns host even when empty (recorded: computetargetpool#4).
	hc.ForceSendFields = []string{"Description", "Host"}
	hc.NullFields = nil
	obj := &hc
	// Stored at once so that a racing insert of the same name is a 409 and
	// quota counts it; an operation that fails takes it away again.
	c.p.httpHealthChecks.put("global", obj.Name, obj)
	return s.startOp(c, opSpec{Type: "insert", Target: obj.SelfLink, TargetID: obj.Id, Scope: "global",
		Fail: func() { c.p.httpHealthChecks.del("global", obj.Name) }}), nil
}

func (s *Server) httpHealthChecksGet(c *call) (any, *apiError) {
	hc, _, e := getNamed(c, c.p.httpHealthChecks, "httpHealthChecks")
	if e != nil {
		return nil, e
	}
	return hc, nil
}

func (s *Server) httpHealthChecksList(c *call) (any, *apiError) {
	return s.listResponse(c, "compute#httpHealthCheckList", toAny(c.p.httpHealthChecks.list("global")),
		c.p.link("global", "httpHealthChecks"))
}

// healthCheckUser returns the selfLink of a target pool using the check.
func (p *project) healthCheckUser(hcLink string) string {
	for _, tp := range p.targetPools.list("") {
		for _, l := range tp.HealthChecks {
			if l == hcLink {
				return tp.SelfLink
			}
		}
	}
	return ""
}

// httpHealthChecksDelete refuses a check a pool still uses inside the
// operation, as observed on GCE, and leaves the check in place.
func (s *Server) httpHealthChecksDelete(c *call) (any, *apiError) {
	hc, path, e := getNamed(c, c.p.httpHealthChecks, "httpHealthChecks")
	if e != nil {
		return nil, e
	}
	if e := c.p.checkNotBusy(hc.SelfLink, path); e != nil {
		return nil, e
	}
	return s.startOp(c, opSpec{Type: "delete", Target: hc.SelfLink, TargetID: hc.Id, Scope: "global",
		Done: func() *apiError {
			if user := c.p.healthCheckUser(hc.SelfLink); user != "" {
				return errInUse("http_health_check", path, s.trimLink(user))
			}
			c.p.httpHealthChecks.del("global", hc.Name)
			return nil
		}}), nil
}

// httpHealthChecksUpdate replaces the check (PUT): fields left out take
// their defaults again.
func (s *Server) httpHealthChecksUpdate(c *call) (any, *apiError) {
	return s.httpHealthCheckChange(c, "update", func(cur *compute.HttpHealthCheck) (*compute.HttpHealthCheck, *apiError) {
		var hc compute.HttpHealthCheck
		if e := c.decode(&hc); e != nil {
			return nil, e
		}
		return &hc, nil
	})
}

// httpHealthChecksPatch merges the fields present in the body.
func (s *Server) httpHealthChecksPatch(c *call) (any, *apiError) {
	return s.httpHealthCheckChange(c, "patch", func(cur *compute.HttpHealthCheck) (*compute.HttpHealthCheck, *apiError) {
		next := *cur
		next.ForceSendFields = nil
		if len(strings.TrimSpace(string(c.body))) == 0 {
			return nil, errRequired("resource")
		}
		if err := json.Unmarshal(c.body, &next); err != nil {
			return nil, &apiError{Code: 400, Reason: "parseError", Message: "Invalid JSON payload received. " + err.Error()}
		}
		return &next, nil
	})
}

func (s *Server) httpHealthCheckChange(c *call, opType string, build func(cur *compute.HttpHealthCheck) (*compute.HttpHealthCheck, *apiError)) (any, *apiError) {
	cur, path, e := getNamed(c, c.p.httpHealthChecks, "httpHealthChecks")
	if e != nil {
		return nil, e
	}
	next, e := build(cur)
	if e != nil {
		return nil, e
	}
	if next.Name != "" && next.Name != cur.Name {
		return nil, errInvalidField("resource.name", next.Name, "The name of a health check cannot be changed.")
	}
	httpHealthCheckDefaults(next)
	if e := checkHTTPHealthCheck(next); e != nil {
		return nil, e
	}
	if e := c.p.checkNotBusy(cur.SelfLink, path); e != nil {
		return nil, e
	}
	// Identity and output fields are the server's, whatever the body says.
	next.Name, next.Kind, next.Id = cur.Name, cur.Kind, cur.Id
	next.CreationTimestamp, next.SelfLink = cur.CreationTimestamp, cur.SelfLink
	next.ForceSendFields = []string{"Description", "Host"}
	next.NullFields = nil
	return s.startOp(c, opSpec{Type: opType, Target: cur.SelfLink, TargetID: cur.Id, Scope: "global",
		Done: func() *apiError {
			if _, ok := c.p.httpHealthChecks.get("global", cur.Name); !ok {
				return errNotFound(path)
			}
			*cur = *next
			return nil
		}}), nil
}

// httpHealthCheckRef resolves a reference to an existing legacy HTTP health
// check and returns it.
func (p *project) httpHealthCheckRef(v, field string) (*compute.HttpHealthCheck, *apiError) {
	r, ok := parseRef(v, ref{Project: p.name, Scope: "global", Coll: "httpHealthChecks"})
	if !ok || r.Coll != "httpHealthChecks" || r.Scope != "global" {
		return nil, errInvalidField(field, v, "Must be a legacy HTTP health check (global/httpHealthChecks).")
	}
	hc, found := p.httpHealthChecks.get("global", r.Name)
	if !found || r.Project != p.name {
		return nil, errNotFound(relPath(r.Project, "global", "httpHealthChecks", r.Name))
	}
	return hc, nil
}
