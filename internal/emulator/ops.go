package emulator

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	compute "google.golang.org/api/compute/v1"
)

// opSpec describes a mutation as an operation: what it targets, how long it
// takes, and the effects applied along the way. Effects run under Server.mu.
type opSpec struct {
	Type     string // operationType as GCE spells it ("insert", "AddInstance", "compute.instances.setLabels")
	Target   string // selfLink of the target resource
	TargetID uint64
	Scope    string // "zones/z", "regions/r" or "global"
	Kind     string // latency class; defaults to the API method
	// Steps run at fractions (0..1) of the operation's duration, e.g. the
	// PROVISIONING → STAGING transition of an instance.
	Steps []opStep
	// Done applies the final effect; a non-nil error ends the operation with
	// that error instead of success.
	Done func() *apiError
	// Fail undoes what the request already did when the operation fails
	// without running Done (an injected fault, a zone that went DOWN).
	Fail func()
	// Immediate makes the operation DONE in the response whatever the preset
	// (setLabels on addresses and forwarding rules behave so on GCE).
	Immediate bool
	// NotBusy keeps the target free for other mutations while this runs
	// (MIG resize only schedules work).
	NotBusy bool
	// Manual leaves completion to the caller through the returned
	// operation's finish (MIG delete ends when its last VM is gone); no
	// timer runs and Steps are ignored.
	Manual bool
	// Warnings appear on the operation once it is DONE without error
	// (a deprecated image was used).
	Warnings []*compute.OperationWarnings
}

type opStep struct {
	At float64
	Fn func()
}

// opName mimics GCE's operation names: operation-<epoch ms>-<hex>-<hex>-<hex>.
func (s *Server) opName(now time.Time) string {
	r := s.rng.Uint64()
	return fmt.Sprintf("operation-%d-%013x-%08x-%08x", now.UnixMilli(), r>>12, uint32(s.rng.Uint64()), uint32(s.rng.Uint64()))
}

// startOp records a new operation and schedules its progress. Called under
// Server.mu from a mutation handler.
func (s *Server) startOp(c *call, spec opSpec) *operation {
	rec := s.newOp(c, &spec)
	kind := spec.Kind
	if kind == "" {
		kind = c.method
	}
	injected := s.faults.take(c, deliverInOperation)
	zone := ""
	if strings.HasPrefix(spec.Scope, "zones/") {
		zone = strings.TrimPrefix(spec.Scope, "zones/")
	}
	finish := func() {
		var err *apiError
		switch {
		case injected != nil:
			err = injected
		case zone != "" && s.zoneDown[zone]:
			err = zoneDownError(c.p.name, zone, spec.Type)
		}
		if err != nil {
			if spec.Fail != nil {
				spec.Fail()
			}
		} else if spec.Done != nil {
			err = spec.Done()
		}
		if err == nil {
			rec.op.Warnings = spec.Warnings
		}
		c.p.endOp(rec, err)
		s.changed()
	}
	if spec.Manual {
		rec.finish = func() {
			if !rec.isDone() {
				finish()
			}
		}
		return rec
	}
	dur := s.lat.draw(kind)
	if dur <= 0 || spec.Immediate {
		for _, st := range spec.Steps {
			st.Fn()
		}
		finish()
		return rec
	}
	for _, st := range spec.Steps {
		fn := st.Fn
		s.after(time.Duration(float64(dur)*st.At), func() {
			if !rec.isDone() {
				fn()
			}
		})
	}
	s.after(dur, func() {
		if !rec.isDone() {
			finish()
		}
	})
	return rec
}

// newOp records a new RUNNING operation for spec and marks its target busy;
// spec.Scope is normalised.
func (s *Server) newOp(c *call, spec *opSpec) *operation {
	now := time.Now()
	name := s.opName(now)
	op := &compute.Operation{
		Kind:              "compute#operation",
		Id:                s.newID(),
		Name:              name,
		OperationType:     spec.Type,
		TargetLink:        spec.Target,
		TargetId:          spec.TargetID,
		Status:            "RUNNING",
		InsertTime:        timestamp(now),
		StartTime:         timestamp(now),
		User:              "emulator@" + c.p.name + ".iam.gserviceaccount.com",
		ClientOperationId: c.requestID,
		ForceSendFields:   []string{"Progress"},
	}
	switch {
	case strings.HasPrefix(spec.Scope, "zones/"):
		op.Zone = c.p.link(spec.Scope)
		op.SelfLink = c.p.link(spec.Scope, "operations", name)
	case strings.HasPrefix(spec.Scope, "regions/"):
		op.Region = c.p.link(spec.Scope)
		op.SelfLink = c.p.link(spec.Scope, "operations", name)
	default:
		spec.Scope = "global"
		op.SelfLink = c.p.link("global", "operations", name)
	}
	rec := &operation{op: op, scope: spec.Scope, done: make(chan struct{})}
	c.p.ops.put(spec.Scope, name, rec)
	if spec.Target != "" && !spec.NotBusy {
		c.p.busy[spec.Target] = rec
	}
	return rec
}

func zoneDownError(project, zone, opType string) *apiError {
	if opType == "insert" || opType == "start" || opType == "compute.instanceGroupManagers.insert" {
		return &apiError{Code: 503, Reason: "serviceUnavailable", OpCode: "ZONE_RESOURCE_POOL_EXHAUSTED",
			Message: fmt.Sprintf("The zone 'projects/%s/zones/%s' does not have enough resources available to fulfill the request.  Try a different zone, or try again later.", project, zone)}
	}
	return &apiError{Code: 503, Reason: "serviceUnavailable", OpCode: "SERVICE_UNAVAILABLE",
		Message: fmt.Sprintf("The zone 'projects/%s/zones/%s' is currently unavailable. Try again later.", project, zone)}
}

// after runs fn under Server.mu once d has passed, unless the server closed
// or was reset meanwhile. Call it with Server.mu held.
func (s *Server) after(d time.Duration, fn func()) {
	gen := s.gen // callers hold s.mu
	s.timerMu.Lock()
	defer s.timerMu.Unlock()
	if s.closed {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		s.timerMu.Lock()
		delete(s.timers, t)
		closed := s.closed
		s.timerMu.Unlock()
		if closed {
			return
		}
		s.mu.Lock()
		if s.gen == gen { // a reset abandons what was scheduled before it
			fn()
		}
		s.mu.Unlock()
		s.changed()
	})
	s.timers[t] = struct{}{}
}

// routesOperations registers get, list, delete and wait for each scope.
func (s *Server) routesOperations() {
	for _, sc := range []struct{ prefix, coll string }{
		{"zones/{zone}/", "zoneOperations"},
		{"regions/{region}/", "regionOperations"},
		{"global/", "globalOperations"},
	} {
		s.handle("GET", sc.prefix+"operations", "compute."+sc.coll+".list", s.opsList)
		s.handle("GET", sc.prefix+"operations/{operation}", "compute."+sc.coll+".get", s.opsGet)
		s.handle("DELETE", sc.prefix+"operations/{operation}", "compute."+sc.coll+".delete", s.opsDelete)
		s.handle("POST", sc.prefix+"operations/{operation}/wait", "compute."+sc.coll+".wait", nil)
	}
	s.handle("GET", "aggregated/operations", "compute.globalOperations.aggregatedList", s.opsAggregated)
}

func (s *Server) opsGet(c *call) (any, *apiError) {
	rec, _, e := getNamed(c, c.p.ops, "operations")
	if e != nil {
		return nil, e
	}
	return rec.op, nil
}

func (s *Server) opsDelete(c *call) (any, *apiError) {
	if _, _, e := getNamed(c, c.p.ops, "operations"); e != nil {
		return nil, e
	}
	c.p.ops.del(c.scope(), c.name)
	return noContent{}, nil
}

func (s *Server) opsList(c *call) (any, *apiError) {
	scope := c.scope()
	var items []any
	for _, o := range c.p.ops.list(scope) {
		items = append(items, o.op)
	}
	return s.listResponse(c, "compute#operationList", items, c.p.link(scope, "operations"))
}

// opsWait long-polls until the operation is DONE or the cap passes. It runs
// without Server.mu held while it waits.
func (s *Server) opsWait(w http.ResponseWriter, c *call) {
	s.mu.Lock()
	rec, _, e := getNamed(c, c.p.ops, "operations")
	s.mu.Unlock()
	if e != nil {
		writeError(w, e)
		return
	}
	timer := time.NewTimer(s.opts.WaitCap)
	defer timer.Stop()
	select {
	case <-rec.done:
	case <-timer.C:
	case <-c.r.Context().Done():
		return
	case <-s.closing:
	}
	s.mu.Lock()
	body, err := marshal(rec.op)
	s.mu.Unlock()
	if err != nil {
		writeError(w, &apiError{Code: 500, Reason: "internalError", Message: err.Error()})
		return
	}
	writeJSON(w, 200, body)
}

func (s *Server) opsAggregated(c *call) (any, *apiError) {
	by := c.p.ops.scoped()
	for k, v := range by {
		for i, o := range v {
			v[i] = o.(*operation).op
		}
		by[k] = v
	}
	scopes := append([]string{"global"}, s.regionScopes()...)
	scopes = append(scopes, s.zoneScopes()...)
	return s.aggregatedResponse(c, "compute#operationAggregatedList", "operations", by, scopes)
}
