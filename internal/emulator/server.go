// Package emulator is a local Google Compute Engine: the Compute v1 REST API
// (enough of it for hakube and its users' gcloud commands), operations that
// progress over a latency model, fault injection, and a control API under
// /emulator/v1/. The unmodified official Go client and gcloud talk to it.
//
// Where things are: server.go takes a request through admission to its
// handler and api.go lists the routes; each resource has its own file of
// handlers (addresses.go, instances*.go, migs.go, ...), which parse the call
// and go through *project for lookups and claims. store.go is the state:
// every project's tables, what the projects share, and the records kept
// beside the compute types. ops.go runs operations over the latency model
// (latency.go), faults.go injects failures, control.go is the control API.
// The data plane (package dataplane) and what a VM runs (package guest) sit
// beside it and see the inventory only through dataplane.go's snapshot.
package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hakube/hakube/internal/emulator/dataplane"
	"github.com/hakube/hakube/internal/emulator/guest"
	"go.uber.org/zap"
)

// Options configure a Server.
type Options struct {
	// Projects the emulator knows; any other project answers 403.
	Projects []string
	// Latency preset: realistic, fast or none.
	Latency string
	// TimeScale multiplies every modelled duration (0.1 = ten times faster).
	TimeScale float64
	// WaitCap bounds one operations.wait long poll (GCE: about 2 minutes).
	WaitCap time.Duration
	// LinkBase prefixes every selfLink and reference the emulator returns.
	// Real GCE uses https://www.googleapis.com/compute/v1/; set it to the
	// emulator's own endpoint to make links resolvable.
	LinkBase string
	// ExternalRange and InternalRange are where external and internal IPs
	// come from; loopback so that every IP can be dialled on this machine.
	ExternalRange netip.Prefix
	InternalRange netip.Prefix
	// Seed makes ids, names and latency draws reproducible (0: random).
	Seed uint64
	// DataPlane makes masters answer on their IPs and forwarding rules
	// forward (package dataplane, docs/dataplane.md). Off for pure API tests.
	DataPlane bool
	// Kubernetes makes masters run the real etcd and Kubernetes control
	// plane as processes of KubeBinary (bin/kube-rehearsal), from their
	// metadata (docs/vm-contract.md); it needs the data plane. Without it
	// masters serve static health and version endpoints only: enough for
	// network tests, never for hakube's flows.
	Kubernetes bool
	KubeBinary string
	// StateDir holds the VMs' files (PKI, kubeconfigs, etcd data on their
	// disks); empty: a temporary directory removed at Close.
	StateDir string
	// SSHPort is the port of every VM's SSH server (22 when 0).
	SSHPort int
	// Extras run in every VM at each of its boots, with or without
	// Kubernetes; with Kubernetes they default to the SSH server and the
	// kubelet stand-in (packages sshd and kubelet).
	Extras guest.Extras
	Logger *zap.Logger
}

// DefaultLinkBase is the host real GCE puts in every link.
const DefaultLinkBase = "https://www.googleapis.com/compute/v1/"

func (o *Options) setDefaults() error {
	if len(o.Projects) == 0 {
		return errors.New("at least one project is required")
	}
	for _, p := range o.Projects {
		if !validProjectID(p) {
			return fmt.Errorf("invalid project id %q: 6-30 characters, lowercase letters, digits and hyphens, starting with a letter", p)
		}
	}
	if o.Latency == "" {
		o.Latency = LatencyFast
	}
	if err := validPreset(o.Latency); err != nil {
		return err
	}
	if o.TimeScale == 0 {
		o.TimeScale = 1
	}
	if o.TimeScale < 0 {
		return fmt.Errorf("time scale must be positive, got %g", o.TimeScale)
	}
	if o.WaitCap == 0 {
		o.WaitCap = 2 * time.Minute
	}
	if o.LinkBase == "" {
		o.LinkBase = DefaultLinkBase
	}
	if !strings.HasSuffix(o.LinkBase, "/compute/v1/") {
		return fmt.Errorf("link base %q must end with /compute/v1/", o.LinkBase)
	}
	if !o.ExternalRange.IsValid() {
		o.ExternalRange = netip.MustParsePrefix("127.64.0.0/10")
	}
	if !o.InternalRange.IsValid() {
		o.InternalRange = netip.MustParsePrefix("127.128.0.0/9")
	}
	if o.InternalRange.Bits() > 32-regionSliceBits-4 {
		return fmt.Errorf("internal range %s is too small: it is split into 32 region subnets; use a /%d or larger", o.InternalRange, 32-regionSliceBits-4)
	}
	if len(regionCatalog) > 1<<regionSliceBits {
		return fmt.Errorf("%d regions do not fit in %d region subnets", len(regionCatalog), 1<<regionSliceBits)
	}
	if o.ExternalRange.Overlaps(o.InternalRange) {
		return fmt.Errorf("external range %s overlaps internal range %s", o.ExternalRange, o.InternalRange)
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Kubernetes && !o.DataPlane {
		return errors.New("the Kubernetes guests need the data plane: their processes listen on the VMs' loopback IPs")
	}
	if o.SSHPort == 0 {
		o.SSHPort = DefaultSSHPort
	}
	if o.SSHPort < 0 || o.SSHPort > 65535 {
		return fmt.Errorf("SSH port %d is not a port", o.SSHPort)
	}
	if o.Kubernetes && o.Extras == nil {
		o.Extras = defaultExtras(o.SSHPort, o.Logger)
	}
	return nil
}

// DefaultSSHPort is where VMs' SSH servers listen, as on GCE.
const DefaultSSHPort = 22

func validProjectID(p string) bool {
	if len(p) < 6 || len(p) > 30 || !validName(p) {
		return false
	}
	return true
}

// Server is one emulated GCE. It is safe for concurrent use.
type Server struct {
	opts Options
	mux  *http.ServeMux
	log  *zap.Logger

	mu     sync.Mutex // guards everything below
	state             // the inventory: projects, IP pool, zones (store.go)
	lat    latencyModel
	faults faultSet
	counts requestCounts
	rates  rateLimiter
	gen    int // bumped by a reset; timers of an older generation do nothing

	timerMu sync.Mutex
	timers  map[*time.Timer]struct{}
	closed  bool
	closing chan struct{}

	dp    *dataplane.Plane // nil without Options.DataPlane
	host  *guest.Host      // the VMs' guests; nil without the data plane
	tmpWD string           // a state directory New made, removed at Close
}

// New builds a server. Call Close to release its timers and listeners.
func New(opts Options) (*Server, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s := &Server{
		opts: opts,
		log:  opts.Logger,
		state: state{
			linkBase: opts.LinkBase,
			cat:      newCatalog(),
			rng:      rng,
			external: opts.ExternalRange,
			internal: opts.InternalRange,
			zoneDown: map[string]bool{},
		},
		lat:     latencyModel{preset: opts.Latency, scale: opts.TimeScale, rng: rng},
		timers:  map[*time.Timer]struct{}{},
		closing: make(chan struct{}),
	}
	s.counts.reset()
	s.resetProjects(opts.Projects)
	s.mux = http.NewServeMux()
	s.apiRoutes()
	s.batchRoutes()
	s.controlRoutes()
	if opts.DataPlane {
		if err := s.startDataPlane(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Handler serves the Compute API under /compute/v1/ (and its batch endpoint,
// /batch/compute/v1) and the control API under /emulator/v1/.
func (s *Server) Handler() http.Handler { return s.mux }

// Close stops timers, wakes waiters and stops the data plane.
func (s *Server) Close() error {
	s.timerMu.Lock()
	if s.closed {
		s.timerMu.Unlock()
		return nil
	}
	s.closed = true
	for t := range s.timers {
		t.Stop()
	}
	s.timers = nil
	close(s.closing)
	s.timerMu.Unlock()
	if s.dp != nil {
		s.dp.Close()
	}
	if s.host != nil {
		s.host.Close() // every guest process is gone after this
	}
	if s.tmpWD != "" {
		_ = os.RemoveAll(s.tmpWD)
	}
	return nil
}

// changed tells the data plane that the inventory moved.
func (s *Server) changed() {
	if s.dp != nil {
		s.dp.Changed()
	}
}

// call is one Compute API request on its way through a handler.
type call struct {
	s          *Server
	r          *http.Request
	p          *project
	method     string // API method id, e.g. "compute.instances.insert"
	mutation   bool
	zone       string
	region     string
	name       string // the resource named in the path, if any
	bodyName   string // "name" from the request body (inserts)
	requestID  string
	requestKey string // canonical form of requestID
	body       []byte
}

// decode parses the JSON body into v (a compute.* struct).
func (c *call) decode(v any) *apiError {
	if len(bytes.TrimSpace(c.body)) == 0 {
		return errRequired("resource")
	}
	if err := json.Unmarshal(c.body, v); err != nil {
		return &apiError{Code: 400, Reason: "parseError", Message: "Invalid JSON payload received. " + err.Error()}
	}
	return nil
}

func (c *call) query(k string) string { return c.r.URL.Query().Get(k) }

// noContent is returned by handlers that answer with an empty object.
type noContent struct{}

type handlerFunc func(c *call) (any, *apiError)

// handle registers one API method. pattern is relative to
// /compute/v1/projects/{project}/.
func (s *Server) handle(httpMethod, pattern, method string, h handlerFunc) {
	mutation := httpMethod != http.MethodGet && !strings.HasSuffix(method, ".getHealth") &&
		!strings.HasSuffix(method, ".listManagedInstances") && !strings.HasSuffix(method, ".listInstances") &&
		!strings.HasSuffix(method, ".wait")
	full := httpMethod + " /compute/v1/projects/{project}"
	if pattern != "" {
		full += "/" + pattern
	}
	s.mux.HandleFunc(full, func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, method, mutation, h)
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, method string, mutation bool, h handlerFunc) {
	c, e := s.newCall(r, method, mutation)
	if e != nil {
		writeError(w, e)
		return
	}
	s.mu.Lock()
	if e := s.admit(c, r.PathValue("project")); e != nil {
		s.mu.Unlock()
		writeError(w, e)
		return
	}
	if strings.HasSuffix(method, "Operations.wait") {
		s.mu.Unlock()
		s.opsWait(w, c)
		return
	}
	if mutation {
		prev, e := c.takeRequestID()
		if e != nil {
			s.mu.Unlock()
			writeError(w, e)
			return
		}
		if prev != nil {
			body, err := marshal(prev.op)
			s.mu.Unlock()
			writeResult(w, body, err)
			return
		}
	}
	res, apiErr := h(c)
	if apiErr != nil {
		s.mu.Unlock()
		writeError(w, apiErr)
		return
	}
	body, err := c.render(res)
	s.mu.Unlock()
	if mutation {
		s.changed()
	}
	writeResult(w, body, err)
}

// newCall reads what the request names (resource, zone, region) and its
// body; nothing of the emulator's state yet.
func (s *Server) newCall(r *http.Request, method string, mutation bool) (*call, *apiError) {
	c := &call{s: s, r: r, method: method, mutation: mutation,
		zone: r.PathValue("zone"), region: r.PathValue("region")}
	for _, k := range []string{"resource", "instance", "disk", "address", "network", "subnetwork", "firewall",
		"route", "instanceTemplate", "instanceGroupManager", "instanceGroup", "targetPool", "httpHealthCheck",
		"forwardingRule", "operation", "image", "family", "machineType", "diskType"} {
		if v := r.PathValue(k); v != "" {
			c.name = v
			break
		}
	}
	if r.Body != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		if err != nil {
			return nil, errInvalid("could not read request body: %v", err)
		}
		c.body = b
	}
	if mutation && len(c.body) > 0 {
		var named struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(c.body, &named)
		c.bodyName = named.Name
	}
	return c, nil
}

// admit counts the call and lets it through, in GCE's order: the project
// must exist, then rate limits, injected faults, and the zone or region the
// path names. Called under mu.
func (s *Server) admit(c *call, projectName string) *apiError {
	s.counts.add(c.method)
	p, ok := s.projects[projectName]
	if !ok && !(isImageProject(projectName) && strings.HasPrefix(c.method, "compute.images.")) {
		return errForbiddenProject(projectName)
	}
	c.p = p
	if p == nil { // public image project: a stand-in with no resources
		c.p = s.newProject(projectName, 0)
	}
	if e := s.rates.take(projectName, c.method, time.Now()); e != nil {
		return e
	}
	if e := s.faults.take(c, deliverSync); e != nil {
		return e
	}
	if c.zone != "" {
		if _, ok := s.cat.zoneRgn[c.zone]; !ok {
			return errNotFound("projects/" + projectName + "/zones/" + c.zone)
		}
	}
	if c.region != "" {
		if _, ok := s.cat.regions[c.region]; !ok {
			return errNotFound("projects/" + projectName + "/regions/" + c.region)
		}
	}
	return nil
}

// takeRequestID checks a mutation's requestId. A known one answers with the
// operation it started (prev); a new one is kept on the call for the
// operation about to start. Called under Server.mu.
func (c *call) takeRequestID() (prev *operation, e *apiError) {
	rid := c.query("requestId")
	if rid == "" {
		return nil, nil
	}
	u, err := uuid.Parse(rid)
	if err != nil || u == uuid.Nil {
		return nil, errInvalidField("requestId", rid, "Must be a valid non-zero UUID.")
	}
	if prev, ok := c.p.requestIDs[u.String()]; ok {
		return prev, nil
	}
	c.requestID = rid
	c.requestKey = u.String()
	return nil, nil
}

// render encodes a handler's result; an operation is remembered under the
// call's requestId. Called under Server.mu.
func (c *call) render(res any) ([]byte, error) {
	if op, ok := res.(*operation); ok {
		if c.requestID != "" {
			c.p.requestIDs[c.requestKey] = op
		}
		res = op.op
	}
	if _, ok := res.(noContent); ok {
		return []byte("{}"), nil
	}
	return marshal(res)
}

func marshal(v any) ([]byte, error) { return json.Marshal(v) }

func writeResult(w http.ResponseWriter, body []byte, err error) {
	if err != nil {
		writeError(w, &apiError{Code: 500, Reason: "internalError", Message: err.Error()})
		return
	}
	writeJSON(w, 200, body)
}

func writeJSON(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, e *apiError) {
	body, _ := json.Marshal(e.envelope())
	writeJSON(w, e.Code, body)
}

// notFoundHandler answers paths no route matches, in GCE's envelope.
func (s *Server) notFoundHandler(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/compute/v1/")
	writeError(w, errNotFound(path))
}

// scope is the scope the call's path names: "zones/z", "regions/r" or
// "global".
func (c *call) scope() string {
	switch {
	case c.zone != "":
		return "zones/" + c.zone
	case c.region != "":
		return "regions/" + c.region
	}
	return "global"
}

// getNamed finds the resource the path names in t, or answers GCE's 404.
// path is the resource's relative path, as errors quote it.
func getNamed[V any](c *call, t table[V], coll string) (v V, path string, e *apiError) {
	scope := c.scope()
	path = relPath(c.p.name, scope, coll, c.name)
	v, ok := t.get(scope, c.name)
	if !ok {
		return v, path, errNotFound(path)
	}
	return v, path, nil
}
