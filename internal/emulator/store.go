package emulator

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	compute "google.golang.org/api/compute/v1"
)

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

// project is everything one GCP project holds. All access happens under
// Server.mu.
type project struct {
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
}

func newProject(name string, number uint64) *project {
	return &project{
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
	}
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

// newID returns a fresh numeric id. Called under Server.mu.
func (s *Server) newID() uint64 {
	for {
		id := s.rng.Uint64() >> 1
		if id > 1e18 {
			return id
		}
	}
}

func (s *Server) newFingerprint() string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], s.rng.Uint64())
	return base64.URLEncoding.EncodeToString(b[:])
}

// validName reports whether name follows RFC 1035 as Compute requires.
func validName(name string) bool {
	if len(name) == 0 || len(name) > 63 {
		return false
	}
	for i, c := range name {
		switch {
		case c >= 'a' && c <= 'z':
		case (c >= '0' && c <= '9') || c == '-':
			if i == 0 {
				return false
			}
		default:
			return false
		}
	}
	return name[len(name)-1] != '-'
}

func checkName(name string) *apiError {
	if name == "" {
		return errRequired("resource.name")
	}
	if !validName(name) {
		return errInvalidField("resource.name", name,
			"Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?|[1-9][0-9]{0,19})'")
	}
	return nil
}
