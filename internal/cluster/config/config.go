package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// ErrInvalidConfig marks every error caused by what the user gave us (flags,
// environment, config file), so the CLI can map it to exit code 2 with errors.Is.
var ErrInvalidConfig = errors.New("invalid configuration")

// ConfigFileEnv names the config file when --config is not given.
const ConfigFileEnv = "HAKUBE_CONFIG"

// Config file header; both keys are optional, but a wrong value is an error so
// that a future incompatible format is never half-understood.
const (
	APIVersion = "hakube.io/v1alpha1"
	Kind       = "ClusterConfig"
)

// Config is the effective, validated configuration of one hakube run. It is a
// plain value: the flows read it and never see flags, environment or files.
type Config struct {
	Provider string
	Project  string
	Zone     string
	Prefix   string

	NumNodes           int
	MaxInstancesPerMIG int
	Multizone          bool
	EtcdQuorumRead     bool
	UseExistingMaster  bool
	ReplicateMaster    bool
	DeleteNodes        bool
	Replica            string

	MasterSize           string
	NodeSize             string
	MasterDiskType       string
	MasterDiskSizeGB     int
	MasterRootDiskSizeGB int
	NodeDiskType         string
	NodeDiskSizeGB       int

	Network       string
	DeleteNetwork bool
	Endpoint      string

	LBFirst     bool
	MaxDowntime time.Duration // 0: no limit

	APIServerPort   int
	HealthCheckPort int
	SSHPort         int // the masters' sshd, for etcd's membership
	// ClusterIPRange is the pods' range (CIDR): each VM's /24 alias range
	// comes from it.
	ClusterIPRange string

	ImageProject string
	ImageFamily  string

	// Extra flags of each component (kube-up's *_TEST_ARGS).
	EtcdTestArgs              string
	APIServerTestArgs         string
	ControllerManagerTestArgs string
	SchedulerTestArgs         string
	KubeletTestArgs           string

	// Origins records where each setting's value came from, by setting key.
	// Load fills it; a Config built by hand has none.
	Origins map[string]Origin
}

// LoadOptions are the inputs of Load besides the process environment, which
// Load reads for every setting's environment variables and HAKUBE_CONFIG (an
// empty variable counts as unset). Nil Flags and Warn mean "none".
type LoadOptions struct {
	Flags      *pflag.FlagSet   // flags parsed by cobra; only Changed flags count
	ConfigFile string           // from --config; when empty, HAKUBE_CONFIG names the file
	Command    string           // "up", "down", "status", "validate", "config": see commandNeedsProject and the zone default
	Warn       func(msg string) // deprecation and compatibility warnings (may be nil)
}

// Origin sources.
const (
	SourceFlag    = "flag"
	SourceEnv     = "env"
	SourceFile    = "file"
	SourceDefault = "default"
	SourceDerived = "derived"
)

// Origin says where a setting's value came from, for `config view --show-origin`
// and for error messages that name the input exactly as the user gave it.
type Origin struct {
	Source string `json:"source"` // SourceFlag, SourceEnv, SourceFile, SourceGcloud, SourceDefault, SourceDerived or SourceCluster
	// Name is "--zone", "KUBE_GCE_ZONE", "/path/x.yaml:zone", the key a derived
	// value was computed from ("numNodes"), or "" for a default.
	Name string `json:"name,omitempty"`
}

func (o Origin) String() string {
	switch o.Source {
	case SourceFlag, SourceEnv, SourceFile:
		return o.Source + " " + o.Name
	case SourceGcloud:
		return "gcloud config " + o.Name
	case SourceCluster:
		return "cluster: " + o.Name
	case SourceDefault:
		return SourceDefault
	case SourceDerived:
		if o.Name == "" {
			return SourceDerived
		}
		return "derived from " + o.Name
	}
	return "unknown"
}

// userGiven reports whether the value came from the user rather than hakube.
func (o Origin) userGiven() bool {
	return o.Source == SourceFlag || o.Source == SourceEnv || o.Source == SourceFile || o.Source == SourceGcloud
}

// Setting is one effective setting rendered for display.
type Setting struct {
	Key    string `json:"key"`   // config-file key, e.g. "numNodes"
	Value  string `json:"value"` // rendered as in the config file, e.g. "3", "true", "90s", "100GB"
	Origin Origin `json:"origin"`
}

// Settings returns every setting, settable and derived, in table order.
func (c *Config) Settings() []Setting {
	specs := settingSpecs()
	out := make([]Setting, 0, len(specs))
	for _, s := range specs {
		out = append(out, Setting{Key: s.key, Value: s.display(c), Origin: c.Origins[s.key]})
	}
	return out
}

// commandNeedsProject reports whether the command talks to GCE. Commands not
// listed here (config, version, ...) get no command-specific requirements.
func commandNeedsProject(cmd string) bool {
	switch cmd {
	case "up", "down", "status", "validate":
		return true
	}
	return false
}

// BindFlags registers one flag per settable setting that the command reads
// on fs. Flag defaults are the table's defaults, so --help shows them; Load
// only looks at Changed flags.
func BindFlags(fs *pflag.FlagSet, command string) {
	for _, s := range settingSpecs() {
		if !s.settable() || !s.readBy(command) {
			continue
		}
		usage := s.usage()
		switch s.kind {
		case kindBool:
			b, _ := parseBool(s.def)
			fs.Bool(s.flag, b, usage)
		case kindInt:
			n, _ := parseInt(s.def)
			fs.Int(s.flag, n, usage)
		case kindDuration:
			d, _ := parseDuration(s.def)
			fs.Duration(s.flag, d, usage)
		default: // strings and disk sizes keep the text the user typed
			fs.String(s.flag, s.def, usage)
		}
		_ = fs.SetAnnotation(s.flag, FlagGroupAnnotation, []string{s.group})
	}
}

// input is one raw value as the user gave it, with its origin.
type input struct {
	raw    string
	origin Origin
}

// name is how error messages refer to the input: "--num-nodes", "NUM_NODES"
// or "config.yaml:numNodes".
func (in input) name() string {
	if in.origin.Source == SourceGcloud {
		return in.origin.Name + ": [core] project"
	}
	return in.origin.Name
}

// problem puts the input, as the user gave it, in front of what is wrong with
// it: NUM_NODES="abc": not a whole number. The value is always quoted so that
// stray spaces and empty values show.
func (in input) problem(err error) error {
	return fmt.Errorf("%s=%q: %w", in.name(), in.raw, err)
}

// describe renders an input as the user would have typed it, for messages
// about combinations ("KUBE_USE_EXISTING_MASTER=true and --replicate-master").
func (in input) describe() string {
	switch in.origin.Source {
	case SourceFlag:
		if in.raw == "true" {
			return in.name()
		}
		return in.name() + "=" + shellQuote(in.raw)
	}
	return in.name() + "=" + shellQuote(in.raw)
}

// Load resolves every setting with precedence flag > environment > config file
// > default, derives kube-up's size-dependent values, and validates the
// result. Every problem found is reported at once, each naming its input.
//
// Viper resolves the values (see newViper); source finds where each came
// from, which viper does not say, and Load checks that the two agree so that
// `config view --show-origin` never names the wrong input.
func Load(opts LoadOptions) (*Config, error) {
	warn := opts.Warn
	if warn == nil {
		warn = func(string) {}
	}

	path, fromEnv := opts.ConfigFile, false
	if path == "" {
		path = os.Getenv(ConfigFileEnv) // empty is unset, like every variable
		fromEnv = path != ""
	}
	specs := settingSpecs()
	var file map[string]string
	var problems []error
	if path != "" {
		var err error
		file, problems, err = readConfigFile(path, specs)
		if err != nil && fromEnv {
			err = fmt.Errorf("%s=%q: %w", ConfigFileEnv, path, err)
		}
		if err != nil {
			return nil, invalid(err)
		}
	}
	v, err := newViper(specs, opts.Command, opts.Flags, file)
	if err != nil {
		return nil, err
	}

	c := &Config{Origins: make(map[string]Origin, len(specs))}
	given := make(map[string]input, len(specs)) // user-given inputs, by key
	bad := make(map[string]error)               // the problem with a given input, by key
	for _, s := range specs {
		if !s.readBy(opts.Command) {
			s.warnUnread(opts.Command, warn)
			continue
		}
		layer, ok := s.source(v, opts.Flags, path, file, warn)
		in := input{raw: v.GetString(s.key), origin: layer.origin}
		switch {
		case ok && in.raw != layer.raw:
			return nil, disagree(s.key, in.raw, layer)
		case !ok && s.fallback != nil:
			// Outside viper's layers: below every one of them.
			raw, origin, found := s.fallback()
			if !found {
				continue
			}
			in = input{raw: raw, origin: origin}
		case !ok:
			continue
		}
		given[s.key] = in
		c.Origins[s.key] = in.origin
		if err := s.set(c, in.raw); err != nil {
			bad[s.key] = in.problem(err)
		}
	}
	// Defaults and derivations run after every given value is in place,
	// because a derived value (master size) depends on another (node count).
	if err := applyDefaults(c, specs, v, opts.Command, given); err != nil {
		return nil, err
	}

	for _, s := range specs {
		in, ok := given[s.key]
		if !ok || bad[s.key] != nil || s.check == nil {
			continue
		}
		if err := s.check(c); err != nil {
			bad[s.key] = in.problem(err)
		}
	}
	for _, s := range specs { // report in table order, whatever the stage
		if err := bad[s.key]; err != nil {
			problems = append(problems, err)
		}
	}
	problems = append(problems, crossCheck(c, opts.Command, given, bad)...)
	if len(problems) > 0 {
		return nil, invalid(problems...)
	}
	return c, nil
}

// applyDefaults gives every setting the user did not give its default for
// the command, or derives it.
func applyDefaults(c *Config, specs []settingSpec, v *viper.Viper, command string, given map[string]input) error {
	for _, s := range specs {
		if _, ok := given[s.key]; ok {
			continue
		}
		// Viper holds the table's default for the command; derived settings
		// have none there ("").
		def := input{raw: v.GetString(s.key), origin: Origin{Source: SourceDefault}}
		if want := s.defaultFor(command); def.raw != want {
			return disagree(s.key, def.raw, input{raw: want, origin: def.origin})
		}
		if s.derive != nil {
			s.derive(c)
			c.Origins[s.key] = Origin{Source: SourceDerived, Name: s.derivedFrom}
			continue
		}
		if err := s.set(c, def.raw); err != nil {
			// The table's own defaults are tested; this is a programming error.
			return fmt.Errorf("setting %s: bad default %q: %w", s.key, def.raw, err)
		}
		c.Origins[s.key] = def.origin
	}
	return nil
}

// crossCheck validates what no single setting can: required settings and
// contradictory combinations.
func crossCheck(c *Config, cmd string, given map[string]input, bad map[string]error) []error {
	var problems []error
	if commandNeedsProject(cmd) && c.Project == "" && bad["project"] == nil {
		problems = append(problems, fmt.Errorf("no GCP project: pass --project or set PROJECT (or CLOUDSDK_CORE_PROJECT, GOOGLE_CLOUD_PROJECT, project: in the config file, or `gcloud config set project`); hakube %s needs one", cmd))
	}
	if c.UseExistingMaster && c.ReplicateMaster {
		problems = append(problems, fmt.Errorf("%s and %s both set: choose one (add a node pool, or add a master replica)",
			given["useExistingMaster"].describe(), given["replicateMaster"].describe()))
	}
	if c.LBFirst && (c.ReplicateMaster || c.UseExistingMaster) {
		other := "replicateMaster"
		if c.UseExistingMaster {
			other = "useExistingMaster"
		}
		problems = append(problems, fmt.Errorf("%s and %s both set: --lb-first shapes a fresh cluster only (an existing cluster keeps the mode it was made with); drop it",
			given["lbFirst"].describe(), given[other].describe()))
	}
	if n := PodRangeVMs(c.ClusterIPRange); cmd == "up" && bad["clusterIPRange"] == nil && bad["numNodes"] == nil && c.NumNodes+maxMasters > n {
		problems = append(problems, fmt.Errorf("%s gives %d VMs a /24 of pod addresses each, and %s with up to %d masters needs %d: give CLUSTER_IP_RANGE a shorter prefix (a /%d holds %d)",
			describeOrDefault(given, "clusterIPRange", c.ClusterIPRange), n, describeOrDefault(given, "numNodes", c.NumNodes), maxMasters, c.NumNodes+maxMasters,
			prefixFor(c.NumNodes+maxMasters), 1<<(24-prefixFor(c.NumNodes+maxMasters))))
	}
	if cmd == "down" && c.UseExistingMaster && !c.DeleteNodes {
		problems = append(problems, fmt.Errorf("%s and %s both set: the first removes the zone's node pool, the second only its master replica; choose one",
			given["useExistingMaster"].describe(), given["deleteNodes"].describe()))
	}
	if cmd == "down" && c.UseExistingMaster && c.Replica != "" {
		problems = append(problems, fmt.Errorf("%s and %s both set: the first removes a node pool, the second names a master replica to remove; choose one",
			given["useExistingMaster"].describe(), given["replica"].describe()))
	}
	if c.APIServerPort == c.HealthCheckPort && bad["apiserverPort"] == nil && bad["healthcheckPort"] == nil {
		problems = append(problems, fmt.Errorf("%s and %s name the same port: the apiserver and the health check need their own",
			describeOrDefault(given, "apiserverPort", c.APIServerPort), describeOrDefault(given, "healthcheckPort", c.HealthCheckPort)))
	}
	if in, ok := given["replica"]; ok && c.Replica != "" && bad["replica"] == nil && bad["prefix"] == nil {
		if err := checkReplicaOf(c.Replica, c.MasterName()); err != nil {
			problems = append(problems, in.problem(err))
		}
	}
	return problems
}

func describeOrDefault[T int | string](given map[string]input, key string, v T) string {
	if in, ok := given[key]; ok {
		return in.describe()
	}
	return fmt.Sprintf("the default %s %v", key, v)
}

// invalidError lists every problem found, so one run shows them all.
type invalidError struct{ problems []error }

func invalid(problems ...error) error { return &invalidError{problems: problems} }

// Invalid reports problems with the user's input found outside Load (the
// preflight's unknown machine types, say) the way Load reports its own.
func Invalid(problems ...error) error { return invalid(problems...) }

func (e *invalidError) Error() string {
	if len(e.problems) == 1 {
		return ErrInvalidConfig.Error() + ": " + e.problems[0].Error()
	}
	var b strings.Builder
	b.WriteString(ErrInvalidConfig.Error())
	b.WriteString(":")
	for _, p := range e.problems {
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap exposes ErrInvalidConfig and each problem to errors.Is and errors.As.
func (e *invalidError) Unwrap() []error { return append([]error{ErrInvalidConfig}, e.problems...) }

// NumNodesSet reports whether the node count was asked for (not the
// default), so a re-run only resizes a pool when told to.
func (c *Config) NumNodesSet() bool {
	o, ok := c.Origins["numNodes"]
	return ok && o.Source != SourceDefault && o.Source != ""
}
