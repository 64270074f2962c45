package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// Actions a step can take.
const (
	ActCreate = "create"
	ActDelete = "delete"
	ActUpdate = "update"
	ActMove   = "move"
	ActWait   = "wait"
	ActLock   = "lock"
	ActWrite  = "write" // a local file
)

// Step is one node of a plan: an action on one resource, with the reason it
// is needed and the steps it must follow.
type Step struct {
	ID        string   `json:"id"`
	Action    string   `json:"action"`
	Resource  string   `json:"resource"`
	Reason    string   `json:"reason"`
	DependsOn []string `json:"dependsOn,omitempty"`
	// Awaits are steps this one waits for partway through its Run
	// (awaitStep), not before it starts: the IP's move detaches the static
	// IP while the target pool is made, and inserts the rule once it is.
	Awaits []string `json:"awaits,omitempty"`
	// Outage marks the steps of the window in which the API is unreachable.
	Outage bool `json:"outage,omitempty"`
	// Run performs the step. Steps that change nothing in GCE (waits,
	// verifications) set Mutating false.
	Run      func(ctx context.Context) error `json:"-"`
	Mutating bool                            `json:"mutating"`
}

// Plan is what a flow will do, as a DAG of steps.
type Plan struct {
	Flow    string   `json:"flow"`
	Cluster string   `json:"cluster"`
	Project string   `json:"project"`
	Region  string   `json:"region,omitempty"`
	Zone    string   `json:"zone,omitempty"`
	Steps   []*Step  `json:"steps"`
	Notes   []string `json:"notes,omitempty"`
}

// add appends a step and returns its id for dependents.
func (p *Plan) add(s *Step) string {
	if s.ID == "" {
		s.ID = s.Action + " " + s.Resource
	}
	for _, o := range p.Steps {
		if o.ID == s.ID {
			panic(fmt.Sprintf("plan: duplicate step %q", s.ID)) // a planner bug, caught by tests
		}
	}
	p.Steps = append(p.Steps, s)
	return s.ID
}

// Mutations counts the steps that change GCE.
func (p *Plan) Mutations() int {
	n := 0
	for _, s := range p.Steps {
		if s.Mutating {
			n++
		}
	}
	return n
}

// HasOutage reports whether the plan moves the static IP.
func (p *Plan) HasOutage() bool {
	return slices.ContainsFunc(p.Steps, func(s *Step) bool { return s.Outage })
}

// Empty reports a plan that changes nothing.
func (p *Plan) Empty() bool { return p.Mutations() == 0 }

// waitsFor is every step s waits for, before it starts or while it runs.
func (s *Step) waitsFor() []string {
	if len(s.Awaits) == 0 {
		return s.DependsOn
	}
	return append(slices.Clip(s.DependsOn), s.Awaits...)
}

// Validate checks the plan is a DAG whose dependencies exist; what a step
// awaits counts as a dependency (a step awaiting one that waits for it
// would never finish).
func (p *Plan) Validate() error {
	ids := map[string]*Step{}
	for _, s := range p.Steps {
		ids[s.ID] = s
	}
	for _, s := range p.Steps {
		for _, d := range s.waitsFor() {
			if ids[d] == nil {
				return fmt.Errorf("plan: step %q depends on unknown step %q", s.ID, d)
			}
		}
	}
	state := map[string]int{}
	var visit func(id string) error
	visit = func(id string) error {
		switch state[id] {
		case 1:
			return fmt.Errorf("plan: dependency cycle through %q", id)
		case 2:
			return nil
		}
		state[id] = 1
		for _, d := range ids[id].waitsFor() {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[id] = 2
		return nil
	}
	for _, s := range p.Steps {
		if err := visit(s.ID); err != nil {
			return err
		}
	}
	return nil
}

// levels orders steps for display: each step after everything it depends on.
func (p *Plan) levels() [][]*Step {
	level := map[string]int{}
	var depth func(s *Step) int
	byID := map[string]*Step{}
	for _, s := range p.Steps {
		byID[s.ID] = s
	}
	depth = func(s *Step) int {
		if l, ok := level[s.ID]; ok {
			return l
		}
		l := 0
		for _, d := range s.DependsOn {
			if dl := depth(byID[d]) + 1; dl > l {
				l = dl
			}
		}
		level[s.ID] = l
		return l
	}
	var out [][]*Step
	for _, s := range p.Steps {
		l := depth(s)
		for len(out) <= l {
			out = append(out, nil)
		}
		out[l] = append(out[l], s)
	}
	return out
}

// WriteText renders the plan for people: steps grouped in the order they
// can run, each with its reason; steps of the same group run in parallel.
func (p *Plan) WriteText(w io.Writer) error {
	var b strings.Builder
	where := p.Region
	if p.Zone != "" {
		where = p.Zone
	}
	fmt.Fprintf(&b, "Plan to %s: cluster %q, project %s", p.Flow, p.Cluster, p.Project)
	if where != "" {
		fmt.Fprintf(&b, ", %s", where)
	}
	b.WriteString("\n")
	if p.Empty() {
		b.WriteString("  Nothing to do: the cluster already matches the request.\n")
	}
	n := 0
	for i, lvl := range p.levels() {
		if len(lvl) == 0 {
			continue
		}
		sorted := append([]*Step(nil), lvl...)
		sort.SliceStable(sorted, func(a, c int) bool { return sorted[a].ID < sorted[c].ID })
		par := ""
		if len(sorted) > 1 {
			par = fmt.Sprintf(" (%d in parallel)", len(sorted))
		}
		fmt.Fprintf(&b, "  Stage %d%s:\n", i+1, par)
		for _, s := range sorted {
			n++
			mark := " "
			if s.Outage {
				mark = "!"
			}
			fmt.Fprintf(&b, "   %s %-7s %s\n", mark, s.Action, s.Resource)
			fmt.Fprintf(&b, "             %s\n", s.Reason)
		}
	}
	for _, note := range p.Notes {
		fmt.Fprintf(&b, "  Note: %s\n", note)
	}
	if hasOutage(p) {
		b.WriteString("  Steps marked ! are the outage window: the API's static IP does not answer during them.\n")
	}
	fmt.Fprintf(&b, "%d steps, %d changes.\n", n, p.Mutations())
	_, err := io.WriteString(w, b.String())
	return err
}

func hasOutage(p *Plan) bool {
	for _, s := range p.Steps {
		if s.Outage {
			return true
		}
	}
	return false
}

// WriteJSON renders the plan for machines.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// dependsOn reports whether step a waits, directly or through other steps,
// before it starts or while it runs, for step b.
func (p *Plan) dependsOn(a, b string) bool {
	byID := map[string]*Step{}
	for _, s := range p.Steps {
		byID[s.ID] = s
	}
	seen := map[string]bool{}
	var walk func(id string) bool
	walk = func(id string) bool {
		s := byID[id]
		if s == nil || seen[id] {
			return false
		}
		seen[id] = true
		for _, d := range s.waitsFor() {
			if d == b || walk(d) {
				return true
			}
		}
		return false
	}
	return walk(a)
}
