package emulator

import (
	"fmt"
	"path"
	"strings"
	"time"
)

// Fault delivery channels: synchronously as an HTTP error, or inside the
// DONE operation of an accepted mutation (GCE uses both for the same
// failures, and clients must handle both).
const (
	deliverSync        = "sync"
	deliverInOperation = "operation"
)

// Fault is one injected failure rule, as set through the control API.
type Fault struct {
	ID string `json:"id,omitempty"`
	// Method is a glob over API method ids: "compute.instances.insert",
	// "compute.targetPools.*", "*". The "compute." prefix may be left out.
	Method string `json:"method"`
	// Project, Zone, Region and Name narrow the rule (empty matches all).
	// Name is a glob over the resource named in the path or, for inserts,
	// in the body.
	Project string `json:"project,omitempty"`
	Zone    string `json:"zone,omitempty"`
	Region  string `json:"region,omitempty"`
	Name    string `json:"name,omitempty"`
	// Code, Reason and Message make the error (defaults: 503 backendError).
	Code    int    `json:"code,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// OpCode is the UPPER_SNAKE code used inside operations (derived from
	// Reason when empty).
	OpCode string `json:"opCode,omitempty"`
	// Delivery is "sync" (default) or "operation".
	Delivery string `json:"delivery,omitempty"`
	// Rate in (0,1] fires on that fraction of matching calls (default 1).
	Rate float64 `json:"rate,omitempty"`
	// Skip lets the first Skip matching calls through.
	Skip int `json:"skip,omitempty"`
	// Count limits how often the rule fires (0: unlimited).
	Count int `json:"count,omitempty"`
	// Fired reports how often it fired so far.
	Fired int `json:"fired"`
	seen  int
}

func (f *Fault) normalise() error {
	if f.Method == "" {
		return fmt.Errorf("fault needs a method pattern")
	}
	if !strings.HasPrefix(f.Method, "compute.") && f.Method != "*" {
		f.Method = "compute." + f.Method
	}
	if _, err := path.Match(f.Method, "compute.x"); err != nil {
		return fmt.Errorf("bad method pattern %q: %v", f.Method, err)
	}
	if f.Delivery == "" {
		f.Delivery = deliverSync
	}
	if f.Delivery != deliverSync && f.Delivery != deliverInOperation {
		return fmt.Errorf("delivery must be %q or %q, got %q", deliverSync, deliverInOperation, f.Delivery)
	}
	if f.Code == 0 {
		f.Code = 503
	}
	if f.Reason == "" {
		f.Reason = defaultReason(f.Code)
	}
	if f.Message == "" {
		f.Message = fmt.Sprintf("Injected fault for %s.", f.Method)
	}
	if f.Rate < 0 || f.Rate > 1 {
		return fmt.Errorf("rate must be within [0,1], got %g", f.Rate)
	}
	if f.Count < 0 || f.Skip < 0 {
		return fmt.Errorf("count and skip must not be negative")
	}
	return nil
}

func defaultReason(code int) string {
	switch code {
	case 400:
		return "invalid"
	case 403:
		return "forbidden"
	case 404:
		return "notFound"
	case 409:
		return "alreadyExists"
	case 412:
		return "conditionNotMet"
	case 429:
		return "rateLimitExceeded"
	case 500:
		return "internalError"
	}
	return "backendError"
}

func (f *Fault) matches(c *call) bool {
	if ok, _ := path.Match(f.Method, c.method); !ok {
		return false
	}
	if f.Project != "" && c.p != nil && f.Project != c.p.name {
		return false
	}
	if f.Zone != "" && f.Zone != c.zone {
		return false
	}
	if f.Region != "" && f.Region != c.region {
		return false
	}
	if f.Name != "" {
		name := c.name
		if name == "" {
			name = c.bodyName
		}
		if ok, _ := path.Match(f.Name, name); !ok {
			return false
		}
	}
	return true
}

// faultSet holds the active rules. Guarded by Server.mu.
type faultSet struct {
	rules  []*Fault
	nextID int
}

func (fs *faultSet) add(f Fault) (Fault, error) {
	if err := f.normalise(); err != nil {
		return Fault{}, err
	}
	fs.nextID++
	f.ID = fmt.Sprintf("f%d", fs.nextID)
	fs.rules = append(fs.rules, &f)
	return f, nil
}

// take returns the error of the first rule that fires for c on the given
// channel, counting the firing.
func (fs *faultSet) take(c *call, delivery string) *apiError {
	for _, f := range fs.rules {
		if f.Delivery != delivery || !f.matches(c) {
			continue
		}
		if f.Count > 0 && f.Fired >= f.Count {
			continue
		}
		f.seen++
		if f.seen <= f.Skip {
			continue
		}
		if f.Rate > 0 && f.Rate < 1 && c.s.rng.Float64() >= f.Rate {
			continue
		}
		f.Fired++
		return &apiError{Code: f.Code, Reason: f.Reason, OpCode: f.OpCode, Message: f.Message,
			Domain: domainFor(f.Reason)}
	}
	return nil
}

func domainFor(reason string) string {
	switch reason {
	case "rateLimitExceeded", "quotaExceeded", "accessNotConfigured":
		return "usageLimits"
	}
	return "global"
}

func (fs *faultSet) list() []Fault {
	out := make([]Fault, len(fs.rules))
	for i, f := range fs.rules {
		out[i] = *f
	}
	return out
}

func (fs *faultSet) remove(id string) bool {
	for i, f := range fs.rules {
		if f.ID == id {
			fs.rules = append(fs.rules[:i], fs.rules[i+1:]...)
			return true
		}
	}
	return false
}

// rateLimiter enforces per-project, per-group requests per minute over
// synchronized 60-second windows, as Compute's API rate quotas do. A limit of
// 0 means unlimited (the default). Guarded by Server.mu.
type rateLimiter struct {
	limits map[string]int // group → per minute
	window time.Time
	used   map[string]int // project/group → requests in window
}

// rateGroup maps a method to its rate-quota group.
func rateGroup(method string) string {
	switch {
	case strings.HasSuffix(method, "Operations.get") || strings.HasSuffix(method, "Operations.wait"):
		return "operation_read_requests"
	case strings.HasSuffix(method, ".list") || strings.HasSuffix(method, ".aggregatedList") ||
		strings.HasSuffix(method, ".listManagedInstances"):
		return "list_requests"
	case strings.HasSuffix(method, ".get") || strings.HasSuffix(method, ".getFromFamily") ||
		strings.HasSuffix(method, ".getHealth"):
		return "read_requests"
	}
	return "default"
}

func (rl *rateLimiter) take(project, method string, now time.Time) *apiError {
	if len(rl.limits) == 0 {
		return nil
	}
	group := rateGroup(method)
	limit := rl.limits[group]
	if limit <= 0 {
		return nil
	}
	w := now.Truncate(time.Minute)
	if !w.Equal(rl.window) {
		rl.window = w
		rl.used = map[string]int{}
	}
	k := project + "/" + group
	if rl.used[k] >= limit {
		return errRateLimit(group)
	}
	rl.used[k]++
	return nil
}
