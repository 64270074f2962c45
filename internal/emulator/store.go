// The store: the emulator's state (every project's tables, the IP pool they
// share) and the records it keeps beside the compute types. Handlers find
// and claim things through methods on *project; Server.mu guards it all.

package emulator

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sort"
	"time"

	"github.com/hakube/hakube/internal/emulator/guest"
	compute "google.golang.org/api/compute/v1"
)

// state is the emulated cloud's inventory: every project, and what the
// projects share. Server.mu guards it and everything it points to.
//
// The lookups and claims are methods on *project, not on state: each one is
// scoped to one project's tables (a name, a link, a quota), so the project
// is the natural receiver, and a state method taking p would only rename
// the (s *Server) f(p *project, ...) it replaces. state holds what every
// project of one emulator draws from: the IP pool (an IP is unique across
// projects, because the data plane binds them all on this machine's
// loopback), the seeded source of ids and fingerprints, the link base, the
// catalogue and which zones are DOWN.
type state struct {
	linkBase           string
	cat                *catalog
	rng                *rand.Rand   // shared with the latency model, so that one seed fixes both
	external, internal netip.Prefix // where external and internal IPs come from
	projects           map[string]*project
	ips                *ipPool
	zoneDown           map[string]bool
}

// resetProjects recreates every project as a fresh one (default network and
// firewall rules included), with a fresh IP pool.
func (st *state) resetProjects(names []string) {
	st.projects = map[string]*project{}
	st.ips = newIPPool(st.external)
	for i, name := range names {
		p := st.newProject(name, 100000000000+uint64(i)*7919+uint64(len(name)))
		p.seed()
		st.projects[name] = p
	}
}

// newID returns a fresh numeric id.
func (st *state) newID() uint64 {
	for {
		id := st.rng.Uint64() >> 1
		if id > 1e18 {
			return id
		}
	}
}

func (st *state) newFingerprint() string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], st.rng.Uint64())
	return base64.URLEncoding.EncodeToString(b[:])
}

// project is everything one GCP project holds.
type project struct {
	st     *state // what it shares with the other projects
	name   string
	number uint64

	networks         table[*compute.Network]
	subnetworks      table[*compute.Subnetwork]
	firewalls        table[*compute.Firewall]
	routes           table[*compute.Route]
	addresses        table[*compute.Address]
	disks            table[*compute.Disk]
	instances        table[*instanceRec]
	templates        table[*compute.InstanceTemplate]
	migs             table[*migRec]
	instanceGroups   table[*compute.InstanceGroup]
	targetPools      table[*compute.TargetPool]
	httpHealthChecks table[*compute.HttpHealthCheck]
	forwardingRules  table[*compute.ForwardingRule]

	ops        table[*operation]
	requestIDs map[string]*operation
	// busy maps a resource's selfLink to the running operation that mutates it.
	busy map[string]*operation
	// quotaLimits overrides default limits: key "regions/<r>/<METRIC>" or "global/<METRIC>".
	quotaLimits map[string]float64
	// commonMetadata is the project-wide metadata every VM also reads
	// (project ssh-keys, enable-guest-attributes, ...).
	commonMetadata *compute.Metadata
	// aliases holds, by subnetwork selfLink, the alias IP ranges instances
	// took from its secondary ranges (the IP pool holds the primary's).
	aliases map[string]*blockSet
}

func (st *state) newProject(name string, number uint64) *project {
	return &project{
		st:               st,
		name:             name,
		number:           number,
		networks:         newTable[*compute.Network](),
		subnetworks:      newTable[*compute.Subnetwork](),
		firewalls:        newTable[*compute.Firewall](),
		routes:           newTable[*compute.Route](),
		addresses:        newTable[*compute.Address](),
		disks:            newTable[*compute.Disk](),
		instances:        newTable[*instanceRec](),
		templates:        newTable[*compute.InstanceTemplate](),
		migs:             newTable[*migRec](),
		instanceGroups:   newTable[*compute.InstanceGroup](),
		targetPools:      newTable[*compute.TargetPool](),
		httpHealthChecks: newTable[*compute.HttpHealthCheck](),
		forwardingRules:  newTable[*compute.ForwardingRule](),
		ops:              newTable[*operation](),
		requestIDs:       map[string]*operation{},
		busy:             map[string]*operation{},
		quotaLimits:      map[string]float64{},
		commonMetadata:   &compute.Metadata{Kind: "compute#metadata", Fingerprint: fingerprint("common-metadata", name)},
		aliases:          map[string]*blockSet{},
	}
}

// table holds one collection of a project, keyed by scope ("zones/z",
// "regions/r" or "global") and name.
type table[V any] struct {
	rows map[string]row[V]
}

type row[V any] struct {
	scope, name string
	v           V
}

func newTable[V any]() table[V] { return table[V]{rows: map[string]row[V]{}} }

func (t table[V]) get(scope, name string) (V, bool) {
	r, ok := t.rows[scope+"/"+name]
	return r.v, ok
}

func (t table[V]) put(scope, name string, v V) { t.rows[scope+"/"+name] = row[V]{scope, name, v} }

func (t table[V]) del(scope, name string) { delete(t.rows, scope+"/"+name) }

func (t table[V]) len() int { return len(t.rows) }

// list returns the values in scope (all scopes when scope is ""), sorted by
// name and then scope: GCE's default order is alphanumeric by name.
func (t table[V]) list(scope string) []V {
	rows := t.sortedRows(scope)
	out := make([]V, len(rows))
	for i, r := range rows {
		out[i] = r.v
	}
	return out
}

func (t table[V]) sortedRows(scope string) []row[V] {
	rows := make([]row[V], 0, len(t.rows))
	for _, r := range t.rows {
		if scope == "" || r.scope == scope {
			rows = append(rows, r)
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].name != rows[j].name {
			return rows[i].name < rows[j].name
		}
		return rows[i].scope < rows[j].scope
	})
	return rows
}

// scoped returns values grouped by scope, each group in name order, for
// aggregatedList.
func (t table[V]) scoped() map[string][]any {
	out := map[string][]any{}
	for _, r := range t.sortedRows("") {
		out[r.scope] = append(out[r.scope], r.v)
	}
	return out
}

// Timestamps are RFC 3339 with milliseconds and a US-Pacific offset, as GCE
// prints them.
var pacific = time.FixedZone("PDT", -7*60*60)

func timestamp(t time.Time) string { return t.In(pacific).Format("2006-01-02T15:04:05.000-07:00") }

// fingerprint derives an 8-byte URL-safe base64 fingerprint from content and a
// generation counter, so it changes on every successful update.
func fingerprint(parts ...any) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%v\x00", p)
	}
	return base64.URLEncoding.EncodeToString(h.Sum(nil)[:8])
}

// The records the store keeps beside the compute types.

// instanceRec is an instance plus the emulator's private state about it.
type instanceRec struct {
	*compute.Instance
	member   *migMember      // the MIG slot this VM fills; nil for a standalone VM
	insertOp *operation      // the insert operation while it runs
	created  []*compute.Disk // disks the insert created, deleted again if it fails
	deleting bool            // a delete is under way
	gone     bool            // removed from the inventory
	cpus     int64           // guest CPUs of the machine type (see guestCPUs)
	// guestAttrs is what the guest wrote to its metadata server's
	// guest-attributes/ (namespace → key → value), for the instance's life.
	guestAttrs map[string]map[string]string
	region     string // region of the zone (see usageRegion)
	// reboots counts resets and guest reboots since the last start: each is
	// a new boot of the guest (dataplane.VM.Reboots).
	reboots uint64
	console *guest.Console // serial port 1, for the instance's life
	view    fieldCache     // decoded fields of raw that list filters read
	// raw caches the wire form: encoding a compute.Instance costs ~100µs,
	// too much to repeat for every VM on every page of a 5,000-VM zone.
	// Every change goes through startInstanceOp, which drops it.
	raw json.RawMessage
}

// usageRegion and guestCPUs serve quota accounting, which visits every
// instance on every insert: parsing links there dominated insert latency at
// thousands of VMs. Both are filled lazily from the instance itself.
func (r *instanceRec) usageRegion(cat *catalog) string {
	if r.region == "" {
		r.region = cat.regionOf(r.Zone)
	}
	return r.region
}

func (r *instanceRec) guestCPUs() int64 {
	if r.cpus == 0 {
		if mt, ok := findMachineType(lastSegment(r.MachineType)); ok {
			r.cpus = mt.cpus
		}
	}
	return r.cpus
}

// wire returns the instance as GCE sends it, encoding at most once per change.
func (r *instanceRec) wire() (json.RawMessage, *apiError) {
	if r.raw == nil {
		b, err := json.Marshal(r.Instance)
		if err != nil {
			return nil, &apiError{Code: 500, Reason: "internalError", Message: err.Error()}
		}
		r.raw = b
	}
	return r.raw, nil
}

// lazyWire lets a list encode only the instances it returns, from cache.
type lazyWire struct{ r *instanceRec }

func (l lazyWire) filterView(fields []string) (map[string]any, error) {
	raw, e := l.r.wire()
	if e != nil {
		return nil, e
	}
	return l.r.view.of(raw, fields)
}

// fieldCache keeps the decoded top-level fields filters asked for, for as
// long as the encoding they came from is current.
type fieldCache struct {
	raw  []byte // the encoding the values were decoded from
	vals map[string]any
}

func (fc *fieldCache) of(raw []byte, fields []string) (map[string]any, error) {
	if len(fc.raw) != len(raw) || len(raw) == 0 || &fc.raw[0] != &raw[0] {
		fc.raw, fc.vals = raw, map[string]any{}
	}
	var missing []string
	for _, f := range fields {
		if _, ok := fc.vals[f]; !ok {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		var top map[string]json.RawMessage
		if err := json.Unmarshal(raw, &top); err != nil {
			return nil, err
		}
		for _, f := range missing {
			var v any // nil: the field is absent
			if b, ok := top[f]; ok {
				if err := json.Unmarshal(b, &v); err != nil {
					return nil, err
				}
			}
			fc.vals[f] = v
		}
	}
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		if v := fc.vals[f]; v != nil {
			out[f] = v
		}
	}
	return out, nil
}

func (l lazyWire) MarshalJSON() ([]byte, error) {
	b, e := l.r.wire()
	if e != nil {
		return nil, e
	}
	return b, nil
}

// migRec is a managed instance group plus its private state.
type migRec struct {
	*compute.InstanceGroupManager
	p        *project
	zone     string
	group    *compute.InstanceGroup
	members  map[string]*migMember // by VM name
	seq      int64                 // creation order of members
	deleting *operation            // the delete operation while it runs
	retrying bool                  // a retry timer is pending
	removed  bool
}

// migMember is one slot of a MIG: a VM that exists, is being created or
// could not be created yet.
type migMember struct {
	mig        *migRec
	name       string
	seq        int64
	in         *instanceRec // nil while the VM does not exist
	deleting   bool         // the MIG is deleting this VM
	attempt    *operation   // the last creation attempt's operation
	attemptErr *apiError    // the last attempt's synchronous failure
}

// currentAction is what the MIG is doing with a member, as
// listManagedInstances reports it.
func (mem *migMember) currentAction() string {
	switch {
	case mem.deleting:
		return "DELETING"
	case mem.in == nil, mem.in.Status == "PROVISIONING", mem.in.Status == "STAGING":
		return "CREATING"
	}
	return "NONE"
}

// readiness orders members for scale-down: the least ready go first.
func (mem *migMember) readiness() int {
	switch {
	case mem.in == nil:
		return 0
	case mem.in.Status == "PROVISIONING" || mem.in.Status == "STAGING":
		return 1
	case mem.in.Status != "RUNNING":
		return 2
	}
	return 3
}

func (m *migRec) sortedMembers() []*migMember {
	out := make([]*migMember, 0, len(m.members))
	for _, mem := range m.members {
		out = append(out, mem)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// operation is the emulator's record of one Compute operation.
type operation struct {
	op    *compute.Operation
	scope string
	done  chan struct{} // closed at DONE; wait long-polls on it
	// finish completes a Manual operation (no-op once DONE).
	finish func()
}

func (o *operation) isDone() bool { return o.op.Status == "DONE" }

// checkNotBusy refuses a mutation while another operation is changing the
// same resource, as GCE does with resourceNotReady.
func (p *project) checkNotBusy(selfLink, path string) *apiError {
	if o, ok := p.busy[selfLink]; ok && !o.isDone() {
		return errNotReady(path)
	}
	return nil
}

// endOp marks an operation DONE, with err inside it when non-nil, and frees
// its target for other mutations.
func (p *project) endOp(rec *operation, err *apiError) {
	op := rec.op
	op.Status = "DONE"
	op.Progress = 100
	op.EndTime = timestamp(time.Now())
	if err != nil {
		op.Error = &compute.OperationError{Errors: []*compute.OperationErrorErrors{{
			Code: err.opCode(), Message: err.Message,
		}}}
		op.HttpErrorStatusCode = int64(err.Code)
		op.HttpErrorMessage = httpStatusText(err.Code)
	}
	if p.busy[op.TargetLink] == rec {
		delete(p.busy, op.TargetLink)
	}
	close(rec.done)
}
