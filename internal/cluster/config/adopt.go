package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// SourceCluster marks a value read back from the existing cluster: what it
// was made with wins over hakube's defaults, so that a later command without
// the original flags acts on the cluster as it is.
const SourceCluster = "cluster"

// Drift is a setting the user gave that differs from what the cluster was
// made with.
type Drift struct {
	Key       string // config-file key
	Input     string // the input as given: "--apiserver-port=443", "NODE_SIZE=e2-standard-4"
	Requested string // rendered as in a config file
	Cluster   string
	From      string // where the cluster records it: "kube-env of kubernetes-master"
}

// Clone returns a copy that can be changed without changing c.
func (c *Config) Clone() *Config {
	out := *c
	out.Origins = maps.Clone(c.Origins)
	return &out
}

// Adopt takes the value an existing cluster records for a setting (raw, as a
// config file would spell it; from says where it was read). A value the user
// did not give is replaced by it. A value the user gave is kept, and when it
// differs, Adopt returns the drift for the caller to refuse.
func (c *Config) Adopt(key, raw, from string) (*Drift, error) {
	spec, ok := specByKey(key)
	if !ok {
		return nil, fmt.Errorf("setting %s: no such setting", key)
	}
	recorded := &Config{}
	if err := spec.set(recorded, raw); err != nil {
		return nil, fmt.Errorf("cluster's %s %q (%s): %w", key, raw, from, err)
	}
	want := spec.render(recorded)
	o := c.Origins[key]
	if o.userGiven() {
		if got := spec.render(c); got != want {
			return &Drift{Key: key, Input: o.Name + "=" + shellQuote(got), Requested: got, Cluster: want, From: from}, nil
		}
		return nil, nil
	}
	if err := spec.set(c, raw); err != nil {
		return nil, err
	}
	if c.Origins == nil {
		c.Origins = map[string]Origin{}
	}
	c.Origins[key] = Origin{Source: SourceCluster, Name: from}
	return nil, nil
}

// Input names a setting's value the way the user would recognise it:
// "NODE_SIZE=e2-standrd-2", "--zone=europe-west1-b", "the default
// nodeDiskType pd-standard", "masterSize e2-standard-2 (derived from numNodes)".
func (c *Config) Input(key string) string {
	spec, ok := specByKey(key)
	if !ok {
		return key
	}
	v := spec.render(c)
	switch o := c.Origins[key]; {
	case o.Source == SourceGcloud:
		return fmt.Sprintf("%s (%s)", v, o)
	case o.userGiven():
		return o.Name + "=" + shellQuote(v)
	case o.Source == SourceDefault:
		return fmt.Sprintf("the default %s %s", key, v)
	default:
		return fmt.Sprintf("%s %s (%s)", key, v, o)
	}
}

// Value is a setting's value as a config file spells it ("" for no such
// setting).
func (c *Config) Value(key string) string {
	spec, ok := specByKey(key)
	if !ok {
		return ""
	}
	return spec.render(c)
}

// Reads reports whether the command reads the setting (see BindFlags).
func Reads(command, key string) bool {
	spec, ok := specByKey(key)
	return ok && spec.readBy(command)
}

// FlagHint explains a setting flag to a command that does not read it:
// which commands do, and what it means there ("" for no such setting).
func FlagHint(flag string) string {
	for _, s := range settingSpecs() {
		if s.flag == flag && s.commands != nil {
			return fmt.Sprintf("it is a setting of hakube %s (%s)", strings.Join(s.commands, " and "), s.help)
		}
	}
	return ""
}

func specByKey(key string) (settingSpec, bool) {
	for _, s := range settingSpecs() {
		if s.key == key {
			return s, true
		}
	}
	return settingSpec{}, false
}

// DriftError refuses a request whose settings differ from the cluster's:
// hakube never changes what an existing cluster was made with behind the
// user's back, and never ignores a setting silently.
type DriftError struct {
	Cluster string
	Drifts  []Drift
}

// NewDriftError lists the drifts in the settings table's order.
func NewDriftError(cluster string, drifts []Drift) *DriftError {
	order := map[string]int{}
	for i, s := range settingSpecs() {
		order[s.key] = i
	}
	drifts = slices.Clone(drifts)
	slices.SortStableFunc(drifts, func(a, b Drift) int { return order[a.Key] - order[b.Key] })
	return &DriftError{Cluster: cluster, Drifts: drifts}
}

func (e *DriftError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: the request differs from what cluster %q was made with:\n", ErrInvalidConfig, e.Cluster)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  SETTING\tCLUSTER\tREQUESTED\tRECORDED IN")
	for _, d := range e.Drifts {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", d.Key, d.Cluster, d.Input, d.From)
	}
	tw.Flush()
	b.WriteString("hakube does not change these on an existing cluster: drop them (the cluster's values apply), or make a new cluster with another --prefix")
	return b.String()
}

func (e *DriftError) Unwrap() error { return ErrInvalidConfig }
