package emulator

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// The control API lives under /emulator/v1/, never under /compute/, so no
// Compute client can reach it by accident. It is how tests and benchmarks
// look inside the cloud and bend it.

func (s *Server) controlRoutes() {
	s.mux.HandleFunc("GET /emulator/v1/healthz", func(w http.ResponseWriter, r *http.Request) {
		ctlJSON(w, 200, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /emulator/v1/inventory", s.ctlInventory)
	s.mux.HandleFunc("POST /emulator/v1/marks", s.ctlMark)
	s.mux.HandleFunc("GET /emulator/v1/requests", s.ctlRequests)
	s.mux.HandleFunc("POST /emulator/v1/reset", s.ctlReset)
	s.mux.HandleFunc("GET /emulator/v1/latency", s.ctlGetLatency)
	s.mux.HandleFunc("PUT /emulator/v1/latency", s.ctlSetLatency)
	s.mux.HandleFunc("GET /emulator/v1/faults", s.ctlFaults)
	s.mux.HandleFunc("POST /emulator/v1/faults", s.ctlAddFault)
	s.mux.HandleFunc("DELETE /emulator/v1/faults", s.ctlClearFaults)
	s.mux.HandleFunc("DELETE /emulator/v1/faults/{id}", s.ctlDeleteFault)
	s.mux.HandleFunc("GET /emulator/v1/zones", s.ctlZones)
	s.mux.HandleFunc("PUT /emulator/v1/zones/{zone}", s.ctlSetZone)
	s.mux.HandleFunc("PUT /emulator/v1/quotas", s.ctlSetQuota)
	s.mux.HandleFunc("PUT /emulator/v1/ratelimits", s.ctlSetRateLimits)
	s.mux.HandleFunc("GET /emulator/v1/instances/{project}/{zone}/{name}/console", s.ctlConsole)
	s.mux.HandleFunc("/emulator/", func(w http.ResponseWriter, r *http.Request) {
		ctlError(w, 404, fmt.Sprintf("no control endpoint %s %s", r.Method, r.URL.Path))
	})
	s.dataPlaneRoutes()
}

func ctlJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		ctlError(w, 500, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func ctlError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func ctlDecode(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad request body: %v", err)
	}
	return nil
}

// Inventory is every resource of every project (or of one), by collection.
type Inventory struct {
	Projects map[string]map[string][]json.RawMessage `json:"projects"`
}

func (s *Server) ctlInventory(w http.ResponseWriter, r *http.Request) {
	only := r.URL.Query().Get("project")
	s.mu.Lock()
	inv := Inventory{Projects: map[string]map[string][]json.RawMessage{}}
	for name, p := range s.projects {
		if only != "" && only != name {
			continue
		}
		colls := map[string][]any{
			"networks":          toAny(p.networks.list("")),
			"subnetworks":       toAny(p.subnetworks.list("")),
			"firewalls":         toAny(p.firewalls.list("")),
			"routes":            toAny(p.routes.list("")),
			"addresses":         toAny(p.addresses.list("")),
			"disks":             toAny(p.disks.list("")),
			"instanceTemplates": toAny(p.templates.list("")),
			"instanceGroups":    toAny(p.instanceGroups.list("")),
			"targetPools":       toAny(p.targetPools.list("")),
			"httpHealthChecks":  toAny(p.httpHealthChecks.list("")),
			"forwardingRules":   toAny(p.forwardingRules.list("")),
		}
		var ins, migs []any
		for _, in := range p.instances.list("") {
			ins = append(ins, in.Instance)
		}
		for _, m := range p.migs.list("") {
			migs = append(migs, m.InstanceGroupManager)
		}
		colls["instances"] = ins
		colls["instanceGroupManagers"] = migs
		out := map[string][]json.RawMessage{}
		for coll, items := range colls {
			for _, it := range items {
				b, err := json.Marshal(it)
				if err != nil {
					s.mu.Unlock()
					ctlError(w, 500, err.Error())
					return
				}
				out[coll] = append(out[coll], b)
			}
		}
		inv.Projects[name] = out
	}
	s.mu.Unlock()
	ctlJSON(w, 200, inv)
}

func (s *Server) ctlMark(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	id := s.counts.mark()
	s.mu.Unlock()
	ctlJSON(w, 200, map[string]int{"mark": id})
}

// RequestCounts is the answer of GET /emulator/v1/requests.
type RequestCounts struct {
	Mark   int              `json:"mark"`
	Total  int64            `json:"total"`
	Counts map[string]int64 `json:"counts"`
}

func (s *Server) ctlRequests(w http.ResponseWriter, r *http.Request) {
	id := 0
	if v := r.URL.Query().Get("mark"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			ctlError(w, 400, "mark must be a number")
			return
		}
		id = n
	}
	s.mu.Lock()
	counts, ok := s.counts.since(id)
	s.mu.Unlock()
	if !ok {
		ctlError(w, 404, fmt.Sprintf("no mark %d", id))
		return
	}
	rc := RequestCounts{Mark: id, Counts: counts}
	for _, v := range counts {
		rc.Total += v
	}
	ctlJSON(w, 200, rc)
}

// ctlReset returns the emulator to its starting state: fresh projects, no
// faults, all zones UP, counters cleared. Running operations are abandoned.
func (s *Server) ctlReset(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.gen++
	s.resetProjects(s.opts.Projects)
	s.faults = faultSet{}
	s.zoneDown = map[string]bool{}
	s.rates = rateLimiter{}
	s.counts.reset()
	s.mu.Unlock()
	s.changed()
	ctlJSON(w, 200, map[string]string{"status": "reset"})
}

// Latency is the latency setting of the emulator.
type Latency struct {
	Preset    string  `json:"preset"`
	TimeScale float64 `json:"timeScale"`
}

func (s *Server) ctlGetLatency(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	l := Latency{Preset: s.lat.preset, TimeScale: s.lat.scale}
	s.mu.Unlock()
	ctlJSON(w, 200, l)
}

func (s *Server) ctlSetLatency(w http.ResponseWriter, r *http.Request) {
	var l Latency
	if err := ctlDecode(r, &l); err != nil {
		ctlError(w, 400, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.Preset == "" {
		l.Preset = s.lat.preset
	}
	if err := validPreset(l.Preset); err != nil {
		ctlError(w, 400, err.Error())
		return
	}
	if l.TimeScale < 0 {
		ctlError(w, 400, "timeScale must be positive")
		return
	}
	if l.TimeScale == 0 {
		l.TimeScale = s.lat.scale
	}
	s.lat.preset, s.lat.scale = l.Preset, l.TimeScale
	ctlJSON(w, 200, l)
}

func (s *Server) ctlFaults(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	list := s.faults.list()
	s.mu.Unlock()
	ctlJSON(w, 200, map[string][]Fault{"faults": list})
}

func (s *Server) ctlAddFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if err := ctlDecode(r, &f); err != nil {
		ctlError(w, 400, err.Error())
		return
	}
	s.mu.Lock()
	added, err := s.faults.add(f)
	s.mu.Unlock()
	if err != nil {
		ctlError(w, 400, err.Error())
		return
	}
	ctlJSON(w, 200, added)
}

func (s *Server) ctlClearFaults(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.faults.rules = nil
	s.mu.Unlock()
	ctlJSON(w, 200, map[string][]Fault{"faults": {}})
}

func (s *Server) ctlDeleteFault(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ok := s.faults.remove(r.PathValue("id"))
	s.mu.Unlock()
	if !ok {
		ctlError(w, 404, "no fault "+r.PathValue("id"))
		return
	}
	ctlJSON(w, 200, map[string]string{"deleted": r.PathValue("id")})
}

// ZoneStatus is a zone's status in the control API.
type ZoneStatus struct {
	Zone   string `json:"zone"`
	Status string `json:"status"`
}

func (s *Server) ctlZones(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var out []ZoneStatus
	for _, z := range s.cat.zones {
		st := "UP"
		if s.zoneDown[z] {
			st = "DOWN"
		}
		out = append(out, ZoneStatus{z, st})
	}
	s.mu.Unlock()
	ctlJSON(w, 200, map[string][]ZoneStatus{"zones": out})
}

func (s *Server) ctlSetZone(w http.ResponseWriter, r *http.Request) {
	zone := r.PathValue("zone")
	var body struct {
		Status string `json:"status"`
	}
	if err := ctlDecode(r, &body); err != nil {
		ctlError(w, 400, err.Error())
		return
	}
	if body.Status != "UP" && body.Status != "DOWN" {
		ctlError(w, 400, fmt.Sprintf("status must be UP or DOWN, got %q", body.Status))
		return
	}
	s.mu.Lock()
	if _, ok := s.cat.zoneRgn[zone]; !ok {
		s.mu.Unlock()
		ctlError(w, 404, "unknown zone "+zone)
		return
	}
	if body.Status == "DOWN" {
		s.zoneDown[zone] = true
	} else {
		delete(s.zoneDown, zone)
	}
	s.mu.Unlock()
	s.changed()
	ctlJSON(w, 200, ZoneStatus{zone, body.Status})
}

// QuotaLimit sets one quota limit. Region empty means a project-level metric.
type QuotaLimit struct {
	Project string  `json:"project"`
	Region  string  `json:"region,omitempty"`
	Metric  string  `json:"metric"`
	Limit   float64 `json:"limit"`
}

func (s *Server) ctlSetQuota(w http.ResponseWriter, r *http.Request) {
	var q QuotaLimit
	if err := ctlDecode(r, &q); err != nil {
		ctlError(w, 400, err.Error())
		return
	}
	if !knownQuotaMetric(q.Metric) {
		known := slices.Sorted(maps.Keys(defaultQuota))
		ctlError(w, 400, fmt.Sprintf("unknown metric %q (known: %s)", q.Metric, strings.Join(known, ", ")))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.projects[q.Project]
	if !ok {
		ctlError(w, 404, "unknown project "+q.Project)
		return
	}
	scope := "global"
	if q.Region != "" {
		if _, ok := s.cat.regions[q.Region]; !ok {
			ctlError(w, 404, "unknown region "+q.Region)
			return
		}
		scope = "regions/" + q.Region
	}
	p.quotaLimits[scope+"/"+q.Metric] = q.Limit
	ctlJSON(w, 200, q)
}

func (s *Server) ctlSetRateLimits(w http.ResponseWriter, r *http.Request) {
	var limits map[string]int
	if err := ctlDecode(r, &limits); err != nil {
		ctlError(w, 400, err.Error())
		return
	}
	for g := range limits {
		switch g {
		case "default", "read_requests", "list_requests", "operation_read_requests":
		default:
			ctlError(w, 400, fmt.Sprintf("unknown rate group %q (default, read_requests, list_requests, operation_read_requests)", g))
			return
		}
	}
	s.mu.Lock()
	s.rates = rateLimiter{limits: limits}
	s.mu.Unlock()
	ctlJSON(w, 200, limits)
}

// requestCounts counts API requests per method since start, and keeps marks
// so callers can ask for counts since a point in time.
type requestCounts struct {
	total map[string]int64
	marks []map[string]int64
}

func (rc *requestCounts) reset() {
	rc.total = map[string]int64{}
	rc.marks = nil
}

func (rc *requestCounts) add(method string) { rc.total[method]++ }

// mark snapshots the counters and returns the mark's id.
func (rc *requestCounts) mark() int {
	rc.marks = append(rc.marks, maps.Clone(rc.total))
	return len(rc.marks)
}

// since returns counts since mark id (0: since start).
func (rc *requestCounts) since(id int) (map[string]int64, bool) {
	if id < 0 || id > len(rc.marks) {
		return nil, false
	}
	out := map[string]int64{}
	for k, v := range rc.total {
		if id > 0 {
			v -= rc.marks[id-1][k]
		}
		if v > 0 {
			out[k] = v
		}
	}
	return out, true
}
