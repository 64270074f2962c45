package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"gopkg.in/yaml.v3"

	"github.com/hakube/hakube/internal/golden"
)

// run describes one invocation: command, flags, environment and config file.
type run struct {
	cmd  string
	args []string          // command-line flags, parsed by a real pflag.FlagSet
	env  map[string]string // the environment
	file string            // config file contents; written to a temporary file
	path string            // config file path, when not from file
}

// setEnv makes env the process environment of every variable Load reads: the
// settings' variables and HAKUBE_CONFIG are unset unless env sets them, so a
// developer's own PROJECT or KUBE_GCE_ZONE cannot leak into a test. t.Setenv
// restores the variables when the test ends, and panics in a parallel test:
// tests that load a config cannot use t.Parallel.
func setEnv(t testing.TB, env map[string]string) {
	t.Helper()
	names := []string{ConfigFileEnv}
	for _, s := range settingSpecs() {
		names = append(names, s.env...)
	}
	for _, name := range names {
		t.Setenv(name, "") // registers the restore
		if err := os.Unsetenv(name); err != nil {
			t.Fatal(err)
		}
	}
	// gcloud's configuration is the project's last fallback: an empty one,
	// unless the test brings its own.
	t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
	t.Setenv("CLOUDSDK_ACTIVE_CONFIG_NAME", "")
	for k, v := range env {
		t.Setenv(k, v)
	}
}

type loaded struct {
	cfg      *Config
	err      error
	warnings []string
	path     string // config file used
}

func (r run) load(t testing.TB) loaded {
	t.Helper()
	fs := pflag.NewFlagSet("hakube", pflag.ContinueOnError)
	BindFlags(fs, r.cmd)
	if err := fs.Parse(r.args); err != nil {
		t.Fatalf("parse %v: %v", r.args, err)
	}
	var l loaded
	l.path = r.path
	if r.file != "" {
		l.path = writeFile(t, "config.yaml", r.file)
	}
	setEnv(t, r.env)
	l.cfg, l.err = Load(LoadOptions{
		Flags:      fs,
		ConfigFile: l.path,
		Command:    r.cmd,
		Warn:       func(msg string) { l.warnings = append(l.warnings, msg) },
	})
	return l
}

func (r run) mustLoad(t testing.TB) *Config {
	t.Helper()
	l := r.load(t)
	if l.err != nil {
		t.Fatalf("Load: %v", l.err)
	}
	return l.cfg
}

func writeFile(t testing.TB, name, contents string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(contents), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func setting(t *testing.T, c *Config, key string) Setting {
	t.Helper()
	for _, s := range c.Settings() {
		if s.Key == key {
			return s
		}
	}
	t.Fatalf("no setting %q", key)
	return Setting{}
}

// value is a raw input and how Settings() renders it.
type value struct{ raw, want string }

// precedenceSamples holds, for every settable key, three valid values for the
// file, environment and flag layers. For booleans the flag value equals the
// file value, so each case below still tells the layers apart.
func precedenceSamples() map[string][3]value {
	return map[string][3]value{
		"provider":                  {{"gce", "gce"}, {"gce", "gce"}, {"gce", "gce"}},
		"project":                   {{"file-proj", "file-proj"}, {"env-proj", "env-proj"}, {"flag-proj", "flag-proj"}},
		"zone":                      {{"europe-west1-b", "europe-west1-b"}, {"europe-west1-c", "europe-west1-c"}, {"asia-southeast1-a", "asia-southeast1-a"}},
		"prefix":                    {{"file", "file"}, {"env", "env"}, {"flag", "flag"}},
		"numNodes":                  {{"5", "5"}, {"0", "0"}, {"7", "7"}},
		"maxInstancesPerMIG":        {{"500", "500"}, {"1000", "1000"}, {"250", "250"}},
		"multizone":                 {{"yes", "true"}, {"0", "false"}, {"true", "true"}},
		"etcdQuorumRead":            {{"TRUE", "true"}, {"no", "false"}, {"true", "true"}},
		"useExistingMaster":         {{"1", "true"}, {"False", "false"}, {"true", "true"}},
		"replicateMaster":           {{"Yes", "true"}, {"false", "false"}, {"true", "true"}},
		"deleteNodes":               {{"no", "false"}, {"yes", "true"}, {"false", "false"}},
		"replica":                   {{"kubernetes-master-aaa", "kubernetes-master-aaa"}, {"kubernetes-master", "kubernetes-master"}, {"kubernetes-master-ccc", "kubernetes-master-ccc"}},
		"masterSize":                {{"e2-standard-8", "e2-standard-8"}, {"n2-standard-4", "n2-standard-4"}, {"e2-highmem-2", "e2-highmem-2"}},
		"nodeSize":                  {{"e2-standard-4", "e2-standard-4"}, {"e2-medium", "e2-medium"}, {"n1-standard-1", "n1-standard-1"}},
		"masterDiskType":            {{"pd-balanced", "pd-balanced"}, {"pd-standard", "pd-standard"}, {"hyperdisk-balanced", "hyperdisk-balanced"}},
		"masterDiskSize":            {{"30", "30GB"}, {"1TB", "1024GB"}, {"64TB", "65536GB"}},
		"masterRootDiskSize":        {{"10gb", "10GB"}, {"50GB", "50GB"}, {"2tb", "2048GB"}},
		"nodeDiskType":              {{"pd-ssd", "pd-ssd"}, {"pd-balanced", "pd-balanced"}, {"hyperdisk-balanced", "hyperdisk-balanced"}},
		"nodeDiskSize":              {{"200", "200GB"}, {"1TB", "1024GB"}, {"50gb", "50GB"}},
		"network":                   {{"file-net", "file-net"}, {"env-net", "env-net"}, {"flag-net", "flag-net"}},
		"deleteNetwork":             {{"true", "true"}, {"no", "false"}, {"1", "true"}},
		"endpoint":                  {{"http://127.0.0.1:8080/compute/v1/", "http://127.0.0.1:8080/compute/v1/"}, {"https://compute.example.com/compute/v1/", "https://compute.example.com/compute/v1/"}, {"http://[::1]:9/x/compute/v1/", "http://[::1]:9/x/compute/v1/"}},
		"lbFirst":                   {{"yes", "true"}, {"NO", "false"}, {"true", "true"}},
		"maxDowntime":               {{"90s", "1m30s"}, {"5m", "5m0s"}, {"1h", "1h0m0s"}},
		"apiserverPort":             {{"6443", "6443"}, {"8443", "8443"}, {"65535", "65535"}},
		"healthcheckPort":           {{"1", "1"}, {"8080", "8080"}, {"9443", "9443"}},
		"sshPort":                   {{"2222", "2222"}, {"22", "22"}, {"65535", "65535"}},
		"clusterIPRange":            {{"10.64.0.0/14", "10.64.0.0/14"}, {"10.0.0.0/11", "10.0.0.0/11"}, {"172.16.0.0/12", "172.16.0.0/12"}},
		"etcdTestArgs":              {{"--heartbeat-interval=200", "--heartbeat-interval=200"}, {"--snapshot-count=5000", "--snapshot-count=5000"}, {"--election-timeout=2000", "--election-timeout=2000"}},
		"apiserverTestArgs":         {{"--v=2", "--v=2"}, {"--max-requests-inflight=800", "--max-requests-inflight=800"}, {"--v=4", "--v=4"}},
		"controllerManagerTestArgs": {{"--node-monitor-grace-period=8s", "--node-monitor-grace-period=8s"}, {"--node-monitor-period=1s", "--node-monitor-period=1s"}, {"--v=3", "--v=3"}},
		"schedulerTestArgs":         {{"--v=1", "--v=1"}, {"--v=2", "--v=2"}, {"--v=3", "--v=3"}},
		"kubeletTestArgs":           {{"--max-pods=50", "--max-pods=50"}, {"--v=2", "--v=2"}, {"--max-pods=200", "--max-pods=200"}},
		"imageProject":              {{"cos-cloud", "cos-cloud"}, {"ubuntu-os-cloud", "ubuntu-os-cloud"}, {"my-images", "my-images"}},
		"imageFamily":               {{"cos-stable", "cos-stable"}, {"ubuntu-2404-lts", "ubuntu-2404-lts"}, {"debian-13", "debian-13"}},
	}
}

func TestConfigPrecedence(t *testing.T) {
	samples := precedenceSamples()
	for _, s := range settingSpecs() {
		if !s.settable() {
			if _, ok := samples[s.key]; ok {
				t.Errorf("samples has %q, which is not settable", s.key)
			}
			continue
		}
		sample, ok := samples[s.key]
		if !ok {
			t.Errorf("no samples for setting %q: add them", s.key)
			continue
		}
		fileV, envV, flagV := sample[0], sample[1], sample[2]
		t.Run(s.key, func(t *testing.T) {
			fileText := fmt.Sprintf("%s: %q\n", s.key, fileV.raw)
			env := map[string]string{s.env[0]: envV.raw}
			flagArg := "--" + s.flag + "=" + flagV.raw
			cases := []struct {
				name       string
				r          run
				want       string
				wantSource string
				wantName   string
			}{
				{"file", run{file: fileText}, fileV.want, SourceFile, ":" + s.key},
				{"env beats file", run{file: fileText, env: env}, envV.want, SourceEnv, s.env[0]},
				{"flag beats env and file", run{file: fileText, env: env, args: []string{flagArg}}, flagV.want, SourceFlag, "--" + s.flag},
				{"flag beats file", run{file: fileText, args: []string{"--" + s.flag + "=" + envV.want}}, envV.want, SourceFlag, "--" + s.flag},
				{"env", run{env: env}, envV.want, SourceEnv, s.env[0]},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					tc.r.cmd = "config"
					l := tc.r.load(t)
					if l.err != nil {
						t.Fatalf("Load: %v", l.err)
					}
					got := setting(t, l.cfg, s.key)
					wantName := tc.wantName
					if tc.wantSource == SourceFile {
						wantName = l.path + wantName
					}
					want := Setting{Key: s.key, Value: tc.want, Origin: Origin{Source: tc.wantSource, Name: wantName}}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("setting (-want +got):\n%s", diff)
					}
				})
			}
		})
	}
}

// TestConfigLayerCombinations checks, for every settable setting, every
// environment name it is bound to, and every combination of the file,
// environment and flag layers, that Load returns the value of the highest
// layer given and reports that layer as the origin: the value viper resolved
// and the origin source found agree. A layer not given is present but empty
// (an empty variable, `key: ""` in the file), which must count as unset.
func TestConfigLayerCombinations(t *testing.T) {
	samples := precedenceSamples()
	for _, s := range settingSpecs() {
		if !s.settable() {
			continue
		}
		sample, ok := samples[s.key]
		if !ok {
			t.Errorf("no samples for setting %q: add them", s.key)
			continue
		}
		fileV, envV, flagV := sample[0], sample[1], sample[2]
		for _, envName := range s.env {
			for mask := range 8 {
				hasFile, hasEnv, hasFlag := mask&1 != 0, mask&2 != 0, mask&4 != 0
				name := fmt.Sprintf("%s/%s/file=%v,env=%v,flag=%v", s.key, envName, hasFile, hasEnv, hasFlag)
				t.Run(name, func(t *testing.T) {
					def := setting(t, run{cmd: "config"}.mustLoad(t), s.key)
					r := run{cmd: "config", file: fmt.Sprintf("%s: \"\"\n", s.key), env: map[string]string{envName: ""}}
					if hasFile {
						r.file = fmt.Sprintf("%s: %q\n", s.key, fileV.raw)
					}
					if hasEnv {
						r.env[envName] = envV.raw
					}
					if hasFlag {
						r.args = []string{"--" + s.flag + "=" + flagV.raw}
					}
					l := r.load(t)
					if l.err != nil {
						t.Fatalf("Load: %v", l.err)
					}
					want := def
					switch {
					case hasFlag:
						want = Setting{Key: s.key, Value: flagV.want, Origin: Origin{Source: SourceFlag, Name: "--" + s.flag}}
					case hasEnv:
						want = Setting{Key: s.key, Value: envV.want, Origin: Origin{Source: SourceEnv, Name: envName}}
					case hasFile:
						want = Setting{Key: s.key, Value: fileV.want, Origin: Origin{Source: SourceFile, Name: l.path + ":" + s.key}}
					}
					if diff := cmp.Diff(want, setting(t, l.cfg, s.key)); diff != "" {
						t.Errorf("setting (-want +got):\n%s", diff)
					}
				})
			}
		}
	}
}

// Viper's rule for a key bound to several environment variables, which the
// settings table relies on: the first name in binding order that is set and
// non-empty wins, whatever the names. Pinned here so that a viper upgrade
// changing it fails this test rather than silently reordering kube-up's names.
func TestConfigViperEnvOrder(t *testing.T) {
	resolve := func(t *testing.T, env map[string]string, names ...string) string {
		t.Helper()
		for _, n := range []string{"HAKUBE_TEST_A", "HAKUBE_TEST_B"} {
			t.Setenv(n, "")
			if err := os.Unsetenv(n); err != nil {
				t.Fatal(err)
			}
		}
		for k, v := range env {
			t.Setenv(k, v)
		}
		v := viper.New()
		v.SetDefault("k", "default")
		if err := v.BindEnv(append([]string{"k"}, names...)...); err != nil {
			t.Fatal(err)
		}
		return v.GetString("k")
	}
	both := map[string]string{"HAKUBE_TEST_A": "a", "HAKUBE_TEST_B": "b"}
	cases := []struct {
		name  string
		env   map[string]string
		names []string
		want  string
	}{
		{"both set: first bound wins", both, []string{"HAKUBE_TEST_A", "HAKUBE_TEST_B"}, "a"},
		{"both set, bound the other way", both, []string{"HAKUBE_TEST_B", "HAKUBE_TEST_A"}, "b"},
		{"first unset", map[string]string{"HAKUBE_TEST_B": "b"}, []string{"HAKUBE_TEST_A", "HAKUBE_TEST_B"}, "b"},
		{"first empty is unset", map[string]string{"HAKUBE_TEST_A": "", "HAKUBE_TEST_B": "b"}, []string{"HAKUBE_TEST_A", "HAKUBE_TEST_B"}, "b"},
		{"all empty: default", map[string]string{"HAKUBE_TEST_A": "", "HAKUBE_TEST_B": ""}, []string{"HAKUBE_TEST_A", "HAKUBE_TEST_B"}, "default"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := resolve(t, tc.env, tc.names...); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := run{cmd: "config"}.mustLoad(t)
	want := &Config{
		Provider: "gce", Prefix: "kubernetes", NumNodes: 3, MaxInstancesPerMIG: 1000, DeleteNodes: true,
		MasterSize: "e2-standard-2", NodeSize: "e2-standard-2",
		MasterDiskType: "pd-ssd", MasterDiskSizeGB: 20, MasterRootDiskSizeGB: 20,
		NodeDiskType: "pd-standard", NodeDiskSizeGB: 100,
		Network: "default", APIServerPort: 443, HealthCheckPort: 3990, SSHPort: 22, ClusterIPRange: "10.64.0.0/14",
		ImageProject: "debian-cloud", ImageFamily: "debian-12",
	}
	if diff := cmp.Diff(want, c, cmpopts.IgnoreFields(Config{}, "Origins")); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	for _, s := range c.Settings() {
		switch s.Key {
		case "masterSize", "masterDiskSize", "masterRootDiskSize":
			if want := (Origin{Source: SourceDerived, Name: "numNodes"}); s.Origin != want {
				t.Errorf("%s: origin %v, want %v", s.Key, s.Origin, want)
			}
		default:
			if s.Origin != (Origin{Source: SourceDefault}) {
				t.Errorf("%s: origin %v, want default", s.Key, s.Origin)
			}
		}
	}
}

// The flag defaults BindFlags registers (shown by --help) must be the defaults
// Load applies: passing every flag with its shown default changes nothing.
func TestConfigFlagDefaultsMatchTable(t *testing.T) {
	for _, cmd := range []string{"up", "down", "status", "config"} {
		fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
		BindFlags(fs, cmd)
		var args []string
		fs.VisitAll(func(f *pflag.Flag) {
			if f.DefValue != "" { // zone and master size have no fixed default
				args = append(args, "--"+f.Name+"="+f.DefValue)
			}
		})
		want := run{cmd: cmd, env: map[string]string{"PROJECT": "p"}}.mustLoad(t)
		got := run{cmd: cmd, env: map[string]string{"PROJECT": "p"}, args: args}.mustLoad(t)
		if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Config{}, "Origins")); diff != "" {
			t.Errorf("%s: flags at their defaults changed the config (-want +got):\n%s", cmd, diff)
		}
	}
}

func TestConfigBindFlags(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	BindFlags(fs, "")
	for _, s := range settingSpecs() {
		f := fs.Lookup(s.flag)
		if !s.settable() {
			if f != nil {
				t.Errorf("%s is derived but has flag --%s", s.key, s.flag)
			}
			continue
		}
		if f == nil {
			t.Errorf("no flag --%s for %s", s.flag, s.key)
			continue
		}
		if !strings.Contains(f.Usage, s.env[0]) {
			t.Errorf("--%s help %q does not name %s", s.flag, f.Usage, s.env[0])
		}
	}
	for flag, want := range map[string]string{
		"zone":             "zone to act on",
		"project":          "(env PROJECT, CLOUDSDK_CORE_PROJECT or GOOGLE_CLOUD_PROJECT)",
		"etcd-quorum-read": "(env ENABLE_ETCD_QUORUM_READ)",
		"num-nodes":        "(env NUM_NODES)",
	} {
		if got := fs.Lookup(flag).Usage; !strings.Contains(got, want) {
			t.Errorf("--%s help = %q, want it to contain %q", flag, got, want)
		}
	}
	if got := fs.Lookup("zone").Usage; !strings.HasSuffix(got, "(env KUBE_GCE_ZONE)") {
		t.Errorf("--zone help = %q", got)
	}
	for flag, def := range map[string]string{"num-nodes": "3", "delete-nodes": "true", "prefix": "kubernetes", "max-downtime": "0s", "node-disk-size": "100GB", "zone": ""} {
		if got := fs.Lookup(flag).DefValue; got != def {
			t.Errorf("--%s default %q, want %q", flag, got, def)
		}
	}
}

// Each command binds only the flags of the settings it reads (issue: status
// --help listed --replicate-master, up --help listed --replica).
func TestConfigBindFlagsPerCommand(t *testing.T) {
	cases := []struct {
		cmd      string
		has, not []string
	}{
		{"up", []string{"zone", "num-nodes", "replicate-master", "use-existing-master", "lb-first", "max-downtime", "master-disk-size"}, []string{"replica", "delete-nodes", "delete-network"}},
		{"down", []string{"zone", "replica", "delete-nodes", "delete-network", "use-existing-master"}, []string{"replicate-master", "num-nodes", "lb-first", "max-downtime", "node-size"}},
		{"status", []string{"zone", "project", "prefix", "endpoint", "apiserver-port"}, []string{"replicate-master", "num-nodes", "max-downtime", "replica", "delete-nodes"}},
		{"validate", []string{"zone", "project"}, []string{"replicate-master", "num-nodes", "max-downtime"}},
		{"config", []string{"zone", "replica", "replicate-master", "num-nodes", "delete-network"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.cmd, func(t *testing.T) {
			fs := pflag.NewFlagSet(tc.cmd, pflag.ContinueOnError)
			BindFlags(fs, tc.cmd)
			for _, f := range tc.has {
				if fs.Lookup(f) == nil {
					t.Errorf("hakube %s has no --%s", tc.cmd, f)
				}
			}
			for _, f := range tc.not {
				if fs.Lookup(f) != nil {
					t.Errorf("hakube %s has --%s, which it does not read", tc.cmd, f)
				}
			}
		})
	}
}

// A command ignores the settings it does not read (kube-down never looked at
// NUM_NODES), but says so for a flow switch set in the environment.
func TestConfigUnreadSettings(t *testing.T) {
	l := run{cmd: "up", env: map[string]string{"PROJECT": "p", "KUBE_REPLICA_NAME": "kubernetes-master-abc", "KUBE_DELETE_NETWORK": "maybe"}}.load(t)
	if l.err != nil {
		t.Fatalf("Load: %v (up does not read KUBE_DELETE_NETWORK, so its bad value is no error)", l.err)
	}
	want := []string{"KUBE_REPLICA_NAME=kubernetes-master-abc is set, but hakube up does not read it (down: the exact master replica to remove)"}
	if diff := cmp.Diff(want, l.warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if l.cfg.Replica != "" || l.cfg.Origins["replica"].Source != SourceDefault {
		t.Errorf("replica %q from %v, want the default", l.cfg.Replica, l.cfg.Origins["replica"])
	}
	d := run{cmd: "down", env: map[string]string{"PROJECT": "p", "NUM_NODES": "many", "KUBE_REPLICATE_EXISTING_MASTER": "true"}}.load(t)
	if d.err != nil {
		t.Fatalf("down: %v", d.err)
	}
	if len(d.warnings) != 1 || !strings.Contains(d.warnings[0], "KUBE_REPLICATE_EXISTING_MASTER=true is set, but hakube down does not read it") {
		t.Errorf("down warnings %q", d.warnings)
	}
}

// The project falls back to gcloud's active configuration, as kube-up's
// detect-project did, and config view says so.
func TestConfigProjectFromGcloud(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, "configurations"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "configurations", "config_"+name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("default", "[core]\naccount = me@example.com\nproject = from-gcloud\n\n[compute]\nzone = europe-west1-b\n")
	write("work", "[compute]\nproject = not-core\n[core]\nproject=work-proj\n")
	cases := []struct {
		name   string
		env    map[string]string
		active string // contents of active_config
		want   string
		origin string
	}{
		{"default configuration", nil, "", "from-gcloud", "gcloud config " + filepath.Join(dir, "configurations", "config_default")},
		{"active_config names it", nil, "work\n", "work-proj", "gcloud config " + filepath.Join(dir, "configurations", "config_work")},
		{"CLOUDSDK_ACTIVE_CONFIG_NAME wins", map[string]string{"CLOUDSDK_ACTIVE_CONFIG_NAME": "work"}, "default", "work-proj", "gcloud config " + filepath.Join(dir, "configurations", "config_work")},
		{"a variable beats gcloud", map[string]string{"PROJECT": "from-env"}, "", "from-env", "env PROJECT"},
		{"a missing configuration is no project", map[string]string{"CLOUDSDK_ACTIVE_CONFIG_NAME": "nope"}, "", "", "default"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, "active_config"))
			if tc.active != "" {
				if err := os.WriteFile(filepath.Join(dir, "active_config"), []byte(tc.active), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			env := map[string]string{"CLOUDSDK_CONFIG": dir}
			for k, v := range tc.env {
				env[k] = v
			}
			c := run{cmd: "config", env: env}.mustLoad(t)
			if c.Project != tc.want || setting(t, c, "project").Origin.String() != tc.origin {
				t.Errorf("project %q from %q, want %q from %q", c.Project, setting(t, c, "project").Origin, tc.want, tc.origin)
			}
		})
	}
	t.Run("a bad project there is named", func(t *testing.T) {
		write("bad", "[core]\nproject = My Project\n")
		l := run{cmd: "status", env: map[string]string{"CLOUDSDK_CONFIG": dir, "CLOUDSDK_ACTIVE_CONFIG_NAME": "bad"}}.load(t)
		if l.err == nil || !strings.Contains(l.err.Error(), "config_bad: [core] project=\"My Project\": want a project ID") {
			t.Errorf("err = %v", l.err)
		}
	})
}

func TestConfigProjectEnvOrder(t *testing.T) {
	cases := []struct {
		name     string
		env      map[string]string
		want     string
		wantFrom Origin
	}{
		{"all set: PROJECT wins", map[string]string{"PROJECT": "a", "CLOUDSDK_CORE_PROJECT": "b", "GOOGLE_CLOUD_PROJECT": "c"}, "a", Origin{SourceEnv, "PROJECT"}},
		{"gcloud's beats google's", map[string]string{"CLOUDSDK_CORE_PROJECT": "b", "GOOGLE_CLOUD_PROJECT": "c"}, "b", Origin{SourceEnv, "CLOUDSDK_CORE_PROJECT"}},
		{"empty PROJECT is unset", map[string]string{"PROJECT": "", "CLOUDSDK_CORE_PROJECT": "b", "GOOGLE_CLOUD_PROJECT": "c"}, "b", Origin{SourceEnv, "CLOUDSDK_CORE_PROJECT"}},
		{"google's alone", map[string]string{"GOOGLE_CLOUD_PROJECT": "c"}, "c", Origin{SourceEnv, "GOOGLE_CLOUD_PROJECT"}},
		{"none", map[string]string{"PROJECT": ""}, "", Origin{SourceDefault, ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := run{cmd: "config", env: tc.env}.mustLoad(t)
			got := setting(t, c, "project")
			if diff := cmp.Diff(Setting{Key: "project", Value: tc.want, Origin: tc.wantFrom}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if c.Project != tc.want {
				t.Errorf("Project = %q, want %q", c.Project, tc.want)
			}
		})
	}
}

func TestConfigEmptyEnvIsUnset(t *testing.T) {
	c := run{cmd: "up", env: map[string]string{"PROJECT": "p", "NUM_NODES": "", "KUBE_GCE_ZONE": "", "MULTIZONE": ""}}.mustLoad(t)
	if c.NumNodes != 3 || c.Zone != "us-central1-b" || c.Multizone || c.Origins["zone"].Source != SourceDefault {
		t.Errorf("got NumNodes=%d Zone=%q Multizone=%v zone from %v, want the defaults", c.NumNodes, c.Zone, c.Multizone, c.Origins["zone"])
	}
}

func TestConfigZoneDefault(t *testing.T) {
	cases := []struct {
		cmd      string
		r        run
		wantZone string
		wantSet  bool
	}{
		{cmd: "up", wantZone: "us-central1-b"},
		{cmd: "down"},
		{cmd: "status"},
		{cmd: "validate"},
		{cmd: "config"},
		{cmd: "down", r: run{env: map[string]string{"KUBE_GCE_ZONE": "europe-west1-c"}}, wantZone: "europe-west1-c", wantSet: true},
		{cmd: "up", r: run{file: "zone: us-central1-b\n"}, wantZone: "us-central1-b", wantSet: true},
		{cmd: "status", r: run{args: []string{"--zone", "me-central2-a"}}, wantZone: "me-central2-a", wantSet: true},
	}
	for _, tc := range cases {
		t.Run(tc.cmd, func(t *testing.T) {
			tc.r.cmd = tc.cmd
			if tc.r.env == nil {
				tc.r.env = map[string]string{}
			}
			tc.r.env["PROJECT"] = "p"
			c := tc.r.mustLoad(t)
			if c.Zone != tc.wantZone || c.Origins["zone"].userGiven() != tc.wantSet {
				t.Errorf("Zone=%q given %v, want %q %v", c.Zone, c.Origins["zone"].userGiven(), tc.wantZone, tc.wantSet)
			}
		})
	}
}

func TestConfigDerivedSizes(t *testing.T) {
	cases := []struct {
		nodes          int
		master         string
		diskGB, rootGB int
	}{
		{0, "e2-standard-2", 20, 20},
		{10, "e2-standard-2", 20, 20},
		{11, "e2-standard-4", 20, 20},
		{100, "e2-standard-4", 20, 20},
		{101, "e2-standard-8", 20, 20},
		{250, "e2-standard-8", 20, 20},
		{251, "e2-standard-16", 20, 20},
		{500, "e2-standard-16", 20, 20},
		{501, "e2-standard-32", 20, 20},
		{1000, "e2-standard-32", 20, 20},
		// Above one group's limit: kube-up's table, reached by the functions only.
		{1001, "e2-standard-32", 100, 50},
		{2000, "e2-standard-32", 100, 50},
		{2001, "e2-standard-32", 200, 100},
		{3000, "e2-standard-32", 200, 100},
		{3001, "n2-standard-64", 200, 100},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.nodes), func(t *testing.T) {
			if tc.nodes > MaxNodesPerGroup {
				disk, root := masterDiskSizesFor(tc.nodes)
				if diff := cmp.Diff([]any{tc.master, tc.diskGB, tc.rootGB}, []any{masterSizeFor(tc.nodes), disk, root}); diff != "" {
					t.Errorf("master size, disk, root disk (-want +got):\n%s", diff)
				}
				return
			}
			c := run{cmd: "config", env: map[string]string{"NUM_NODES": fmt.Sprint(tc.nodes)}}.mustLoad(t)
			got := []any{c.MasterSize, c.MasterDiskSizeGB, c.MasterRootDiskSizeGB}
			if diff := cmp.Diff([]any{tc.master, tc.diskGB, tc.rootGB}, got); diff != "" {
				t.Errorf("master size, disk, root disk (-want +got):\n%s", diff)
			}
			derived := Origin{Source: SourceDerived, Name: "numNodes"}
			for _, k := range []string{"masterSize", "masterDiskSize", "masterRootDiskSize"} {
				if o := c.Origins[k]; o != derived {
					t.Errorf("%s origin %v, want %v", k, o, derived)
				}
			}
		})
	}
	t.Run("explicit master size wins", func(t *testing.T) {
		c := run{cmd: "config", env: map[string]string{"NUM_NODES": "500", "MASTER_SIZE": "e2-standard-4"}}.mustLoad(t)
		if c.MasterSize != "e2-standard-4" || c.Origins["masterSize"] != (Origin{SourceEnv, "MASTER_SIZE"}) {
			t.Errorf("MasterSize %q from %v", c.MasterSize, c.Origins["masterSize"])
		}
		if got := setting(t, c, "masterSize").Origin.String(); got != "env MASTER_SIZE" {
			t.Errorf("origin string %q", got)
		}
	})
}

func TestConfigMisspeltQuorumRead(t *testing.T) {
	cases := []struct {
		name       string
		r          run
		want       bool
		wantOrigin Origin
		wantWarn   []string // substrings of the one warning
	}{
		{
			name: "misspelt alone is honoured", r: run{env: map[string]string{"ENABLE_ETCD_QUORUM_READS": "true"}},
			want: true, wantOrigin: Origin{SourceEnv, "ENABLE_ETCD_QUORUM_READS"},
			wantWarn: []string{"ENABLE_ETCD_QUORUM_READS", "misspelling", "set ENABLE_ETCD_QUORUM_READ"},
		},
		{
			name: "right name wins", r: run{env: map[string]string{"ENABLE_ETCD_QUORUM_READ": "false", "ENABLE_ETCD_QUORUM_READS": "true"}},
			want: false, wantOrigin: Origin{SourceEnv, "ENABLE_ETCD_QUORUM_READ"},
			wantWarn: []string{"ENABLE_ETCD_QUORUM_READS is ignored", "ENABLE_ETCD_QUORUM_READ is set"},
		},
		{
			name: "flag wins", r: run{args: []string{"--etcd-quorum-read=false"}, env: map[string]string{"ENABLE_ETCD_QUORUM_READS": "true"}},
			want: false, wantOrigin: Origin{SourceFlag, "--etcd-quorum-read"},
			wantWarn: []string{"ENABLE_ETCD_QUORUM_READS is ignored", "--etcd-quorum-read is set"},
		},
		{
			name: "right name alone: no warning", r: run{env: map[string]string{"ENABLE_ETCD_QUORUM_READ": "yes"}},
			want: true, wantOrigin: Origin{SourceEnv, "ENABLE_ETCD_QUORUM_READ"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.cmd = "config"
			l := tc.r.load(t)
			if l.err != nil {
				t.Fatal(l.err)
			}
			if l.cfg.EtcdQuorumRead != tc.want || l.cfg.Origins["etcdQuorumRead"] != tc.wantOrigin {
				t.Errorf("EtcdQuorumRead=%v from %v, want %v from %v", l.cfg.EtcdQuorumRead, l.cfg.Origins["etcdQuorumRead"], tc.want, tc.wantOrigin)
			}
			if tc.wantWarn == nil {
				if len(l.warnings) != 0 {
					t.Errorf("warnings %q, want none", l.warnings)
				}
				return
			}
			if len(l.warnings) != 1 {
				t.Fatalf("warnings %q, want one", l.warnings)
			}
			for _, w := range tc.wantWarn {
				if !strings.Contains(l.warnings[0], w) {
					t.Errorf("warning %q does not contain %q", l.warnings[0], w)
				}
			}
		})
	}
}

// TestConfigErrors feeds every kind of bad input and checks that the error
// wraps ErrInvalidConfig and names the input as the user gave it. "{file}" in
// a wanted substring stands for the config file's path.
func TestConfigErrors(t *testing.T) {
	env := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	long := strings.Repeat("a", 40)
	cases := []struct {
		name string
		r    run
		want []string
	}{
		{"lb-first with a replica", run{cmd: "up", env: env("PROJECT", "p", "KUBE_REPLICATE_EXISTING_MASTER", "true"), args: []string{"--lb-first"}}, []string{`--lb-first and KUBE_REPLICATE_EXISTING_MASTER=true both set: --lb-first shapes a fresh cluster only`}},
		{"lb-first with a node pool", run{cmd: "up", env: env("PROJECT", "p", "HAKUBE_LB_FIRST", "true"), args: []string{"--use-existing-master"}}, []string{`HAKUBE_LB_FIRST=true and --use-existing-master both set`}},
		{"node pool and replica removal", run{cmd: "down", env: env("PROJECT", "p", "KUBE_DELETE_NODES", "false"), args: []string{"--use-existing-master"}}, []string{`--use-existing-master and KUBE_DELETE_NODES=false both set: the first removes the zone's node pool`}},
		{"node pool and a named replica", run{cmd: "down", env: env("PROJECT", "p", "KUBE_REPLICA_NAME", "kubernetes-master-abc", "KUBE_USE_EXISTING_MASTER", "yes"), args: []string{"--zone=europe-west1-b"}}, []string{`KUBE_USE_EXISTING_MASTER=yes and KUBE_REPLICA_NAME=kubernetes-master-abc both set`}},
		{"disk size above 64TB", run{env: env("NODE_DISK_SIZE", "65TB")}, []string{`NODE_DISK_SIZE="65TB": at most 64TB (65536GB)`}},
		{"disk size far above 64TB", run{env: env("NODE_DISK_SIZE", "999TB")}, []string{`NODE_DISK_SIZE="999TB": at most 64TB`}},
		{"disk size in GB above 64TB", run{args: []string{"--master-disk-size=65537GB"}}, []string{`--master-disk-size="65537GB": at most 64TB`}},
		{"master data disk too small", run{env: env("MASTER_DISK_SIZE", "5GB")}, []string{`MASTER_DISK_SIZE="5GB": want at least 10GB`}},
		{"master root disk too small", run{env: env("MASTER_ROOT_DISK_SIZE", "9")}, []string{`MASTER_ROOT_DISK_SIZE="9": want at least 10GB`}},
		{"master disk type", run{env: env("MASTER_DISK_TYPE", "SSD")}, []string{`MASTER_DISK_TYPE="SSD": want a disk type`}},
		{"more nodes than kube-up makes", run{env: env("NUM_NODES", "1000000")}, []string{`NUM_NODES="1000000": at most 5000, kube-up's largest cluster`}},
		{"one more node than kube-up makes", run{env: env("NUM_NODES", "5001")}, []string{`NUM_NODES="5001": at most 5000`}},
		{"groups larger than GCE's", run{env: env("MAX_INSTANCES_PER_MIG", "1001")}, []string{`MAX_INSTANCES_PER_MIG="1001": want 1 to 1000`}},
		{"provider env", run{env: env("KUBERNETES_PROVIDER", "aws")}, []string{`KUBERNETES_PROVIDER="aws": hakube only supports provider "gce"`}},
		{"provider flag", run{args: []string{"--provider", "gke"}}, []string{`--provider="gke": hakube only supports provider "gce"`}},
		{"provider file", run{file: "provider: aws\n"}, []string{`{file}:provider="aws": hakube only supports provider "gce"`}},
		{"no project for up", run{cmd: "up"}, []string{"pass --project or set PROJECT", "hakube up"}},
		{"no project for down", run{cmd: "down"}, []string{"pass --project or set PROJECT"}},
		{"no project for status", run{cmd: "status"}, []string{"pass --project or set PROJECT"}},
		{"no project for validate", run{cmd: "validate"}, []string{"pass --project or set PROJECT"}},
		{"explicitly empty project for up", run{cmd: "up", args: []string{"--project="}}, []string{"pass --project or set PROJECT"}},
		{"bad project", run{env: env("PROJECT", "My Project")}, []string{`PROJECT="My Project": want a project ID`}},
		{"zone env: region", run{env: env("KUBE_GCE_ZONE", "europe-west1")}, []string{`KUBE_GCE_ZONE="europe-west1": want a zone like us-central1-b`}},
		{"zone flag: upper case", run{args: []string{"--zone=US-CENTRAL1-B"}}, []string{`--zone="US-CENTRAL1-B": want a zone like`}},
		{"zone flag: empty", run{cmd: "down", env: env("PROJECT", "p", "KUBE_GCE_ZONE", "us-east1-b"), args: []string{"--zone="}}, []string{`--zone="": want a zone like`}},
		{"zone flag: empty for up", run{cmd: "up", env: env("PROJECT", "p"), args: []string{"--zone="}}, []string{`--zone="": want a zone like`}},
		{"zone file", run{file: "zone: us-central1\n"}, []string{`{file}:zone="us-central1": want a zone`}},
		{"zone: two letters", run{env: env("KUBE_GCE_ZONE", "us-central1-bb")}, []string{`KUBE_GCE_ZONE="us-central1-bb"`}},
		{"zone: no digit", run{env: env("KUBE_GCE_ZONE", "us-central-b")}, []string{`KUBE_GCE_ZONE="us-central-b"`}},
		{"prefix: upper case", run{env: env("KUBE_GCE_INSTANCE_PREFIX", "My_Cluster")}, []string{`KUBE_GCE_INSTANCE_PREFIX="My_Cluster": want a name prefix of lowercase letters`}},
		{"prefix: leading digit", run{args: []string{"--prefix=1k8s"}}, []string{`--prefix="1k8s"`}},
		{"prefix: trailing hyphen", run{file: "prefix: k8s-\n"}, []string{`{file}:prefix="k8s-"`}},
		{"prefix: too long", run{args: []string{"--prefix=" + long}}, []string{`--prefix="` + long + `": too long`, long + `-default-internal-master`, "at most 39 characters"}},
		{"num nodes: not a number", run{env: env("NUM_NODES", "abc")}, []string{`NUM_NODES="abc": not a whole number`}},
		{"num nodes: fraction", run{file: "numNodes: 3.5\n"}, []string{`{file}:numNodes="3.5": not a whole number`}},
		{"num nodes: negative", run{args: []string{"--num-nodes=-1"}}, []string{`--num-nodes="-1": must not be negative`}},
		{"num nodes: huge", run{env: env("NUM_NODES", "99999999999999999999")}, []string{`NUM_NODES="99999999999999999999": number too large`}},
		{"multizone: maybe", run{env: env("MULTIZONE", "maybe")}, []string{`MULTIZONE="maybe": want true/false/1/0/yes/no`}},
		{"bool in file", run{file: "deleteNodes: nope\n"}, []string{`{file}:deleteNodes="nope": want true/false/1/0/yes/no`}},
		{"quorum read misspelt: bad value", run{env: env("ENABLE_ETCD_QUORUM_READS", "on")}, []string{`ENABLE_ETCD_QUORUM_READS="on": want true/false`}},
		{"node pool and replica: env and flag", run{env: env("KUBE_USE_EXISTING_MASTER", "true"), args: []string{"--replicate-master"}},
			[]string{"KUBE_USE_EXISTING_MASTER=true and --replicate-master both set: choose one (add a node pool, or add a master replica)"}},
		{"node pool and replica: file and env", run{file: "useExistingMaster: yes\n", env: env("KUBE_REPLICATE_EXISTING_MASTER", "1")},
			[]string{"{file}:useExistingMaster=yes and KUBE_REPLICATE_EXISTING_MASTER=1 both set"}},
		{"replica: bad name", run{env: env("KUBE_REPLICA_NAME", "Master_1")}, []string{`KUBE_REPLICA_NAME="Master_1": want a replica name`}},
		{"replica: other cluster", run{args: []string{"--replica=other-master-abc"}}, []string{`--replica="other-master-abc": not a master replica of this cluster (want kubernetes-master or kubernetes-master-<suffix>`}},
		{"replica: other cluster via prefix", run{env: env("KUBE_GCE_INSTANCE_PREFIX", "prod", "KUBE_REPLICA_NAME", "kubernetes-master-abc")}, []string{`KUBE_REPLICA_NAME="kubernetes-master-abc": not a master replica`, "prod-master"}},
		{"replica: too long", run{env: env("KUBE_REPLICA_NAME", "kubernetes-master-"+strings.Repeat("x", 43))}, []string{`KUBE_REPLICA_NAME="kubernetes-master-xxx`, "too long: its disk"}},
		{"master size", run{env: env("MASTER_SIZE", "E2 standard")}, []string{`MASTER_SIZE="E2 standard": want a machine type like e2-standard-2`}},
		{"node size", run{args: []string{"--node-size=e2_small"}}, []string{`--node-size="e2_small": want a machine type`}},
		{"node disk type", run{env: env("NODE_DISK_TYPE", "SSD")}, []string{`NODE_DISK_TYPE="SSD": want a disk type`}},
		{"node disk size: unit", run{env: env("NODE_DISK_SIZE", "100MB")}, []string{`NODE_DISK_SIZE="100MB": want a disk size like 100GB`}},
		{"node disk size: small", run{env: env("NODE_DISK_SIZE", "5GB")}, []string{`NODE_DISK_SIZE="5GB": want at least 10GB`}},
		{"network: bad", run{env: env("KUBE_GCE_NETWORK", "My Net")}, []string{`KUBE_GCE_NETWORK="My Net": want a network name`}},
		{"network: too long for the ssh rule", run{args: []string{"--network=" + strings.Repeat("n", 52)}}, []string{"-default-ssh", "too long"}},
		{"endpoint: no scheme", run{env: env("CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE", "localhost:8080/compute/v1/")}, []string{`CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE="localhost:8080/compute/v1/": want an absolute http(s) URL ending in /compute/v1/, e.g. http://127.0.0.1:8080/compute/v1/`}},
		{"endpoint: path", run{args: []string{"--endpoint=http://127.0.0.1:8080/"}}, []string{`--endpoint="http://127.0.0.1:8080/": want an absolute`}},
		{"endpoint: no trailing slash", run{args: []string{"--endpoint=http://127.0.0.1:8080/compute/v1"}}, []string{`--endpoint="http://127.0.0.1:8080/compute/v1"`}},
		{"endpoint: scheme", run{file: "endpoint: ftp://h/compute/v1/\n"}, []string{`{file}:endpoint="ftp://h/compute/v1/": want an absolute http(s) URL`}},
		{"endpoint: relative", run{env: env("CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE", "/compute/v1/")}, []string{`CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE="/compute/v1/"`}},
		{"max downtime: no unit", run{env: env("HAKUBE_MAX_DOWNTIME", "90")}, []string{`HAKUBE_MAX_DOWNTIME="90": want a duration like 90s or 5m`}},
		{"max downtime: negative", run{args: []string{"--max-downtime=-5s"}}, []string{`--max-downtime="-5s": must not be negative`}},
		{"max downtime: file", run{file: "maxDowntime: soon\n"}, []string{`{file}:maxDowntime="soon": want a duration`}},
		{"apiserver port: zero", run{env: env("HAKUBE_APISERVER_PORT", "0")}, []string{`HAKUBE_APISERVER_PORT="0": want a port from 1 to 65535`}},
		{"healthcheck port: too big", run{args: []string{"--healthcheck-port=70000"}}, []string{`--healthcheck-port="70000": want a port from 1 to 65535`}},
		{"ports: same", run{env: env("HAKUBE_APISERVER_PORT", "3990")}, []string{"HAKUBE_APISERVER_PORT=3990 and the default healthcheckPort 3990 name the same port"}},
		{"ssh port: zero", run{args: []string{"--ssh-port=0"}}, []string{`--ssh-port="0": want a port from 1 to 65535`}},
		{"pod range: not a CIDR", run{env: env("CLUSTER_IP_RANGE", "10.64.0.0")}, []string{`CLUSTER_IP_RANGE="10.64.0.0": want an IPv4 CIDR such as 10.64.0.0/14`}},
		{"pod range: host bits", run{env: env("CLUSTER_IP_RANGE", "10.65.0.0/14")}, []string{`10.65.0.0/14 is not a network address: did you mean 10.64.0.0/14?`}},
		{"pod range: too small", run{env: env("CLUSTER_IP_RANGE", "10.64.0.0/24")}, []string{`want a prefix from /8 to /21 (every VM takes a /24), got /24`}},
		{"pod range: too small for the nodes", run{cmd: "up", env: env("CLUSTER_IP_RANGE", "10.64.0.0/21", "NUM_NODES", "5")},
			[]string{"CLUSTER_IP_RANGE=10.64.0.0/21 gives 8 VMs a /24 of pod addresses each, and NUM_NODES=5 with up to 5 masters needs 10: give CLUSTER_IP_RANGE a shorter prefix (a /20 holds 16)"}},
		{"pod range: the default is too small for 5,000 nodes", run{cmd: "up", env: env("NUM_NODES", "5000")},
			[]string{"the default clusterIPRange 10.64.0.0/14 gives 1024 VMs", "(a /11 holds 8192)"}},
		{"image project", run{env: env("HAKUBE_IMAGE_PROJECT", "Debian Cloud")}, []string{`HAKUBE_IMAGE_PROJECT="Debian Cloud": want a project ID`}},
		{"image family", run{args: []string{"--image-family=Debian_12"}}, []string{`--image-family="Debian_12": want an image family`}},
		{"all problems at once", run{env: env("NUM_NODES", "abc", "MULTIZONE", "maybe", "KUBE_GCE_ZONE", "mars")},
			[]string{`KUBE_GCE_ZONE="mars"`, `NUM_NODES="abc"`, `MULTIZONE="maybe"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.r.cmd == "" {
				tc.r.cmd = "config"
			}
			l := tc.r.load(t)
			if l.err == nil {
				t.Fatalf("Load succeeded, want an error containing %q", tc.want)
			}
			if l.cfg != nil {
				t.Errorf("Load returned a config with its error")
			}
			if !errors.Is(l.err, ErrInvalidConfig) {
				t.Errorf("error %q does not wrap ErrInvalidConfig", l.err)
			}
			for _, w := range tc.want {
				w = strings.ReplaceAll(w, "{file}", l.path)
				if !strings.Contains(l.err.Error(), w) {
					t.Errorf("error\n  %s\ndoes not contain\n  %s", l.err, w)
				}
			}
		})
	}
}

// Every boolean accepts the same words, from every source.
func TestConfigBooleans(t *testing.T) {
	for _, word := range []string{"true", "TRUE", "True", "1", "yes", "YES", "false", "False", "0", "no", "No"} {
		want := word == "1" || strings.EqualFold(word, "true") || strings.EqualFold(word, "yes")
		c := run{cmd: "config", env: map[string]string{"MULTIZONE": word}, file: "lbFirst: " + word + "\n"}.mustLoad(t)
		if c.Multizone != want || c.LBFirst != want {
			t.Errorf("%q: Multizone=%v LBFirst=%v, want %v", word, c.Multizone, c.LBFirst, want)
		}
	}
	for _, word := range []string{"t", "y", "on", "off", "2", " true", ""} {
		if _, err := parseBool(word); err == nil {
			t.Errorf("parseBool(%q) succeeded", word)
		}
	}
}

func TestConfigFileStrict(t *testing.T) {
	cases := []struct {
		name string
		r    run
		want []string
	}{
		{"unknown key", run{file: "numnodez: 3\n"}, []string{`{file}: unknown key "numnodez" on line 1; did you mean "numNodes"?`, "known keys: apiVersion, kind, apiserverPort,"}},
		{"key in the wrong case", run{file: "zone: us-east1-b\nNumNodes: 3\n"}, []string{`unknown key "NumNodes" on line 2; did you mean "numNodes"?`}},
		{"unknown key far from any", run{file: "colour: blue\n"}, []string{`{file}: unknown key "colour" on line 1 (known keys:`}},
		{"names are not keys", run{file: "masterName: x\n"}, []string{`unknown key "masterName"`}},
		{"list for a number", run{file: "numNodes: [1, 2]\n"}, []string{"{file}:numNodes: want a whole number, got a list (line 1)"}},
		{"mapping for a string", run{file: "zone:\n  name: us-east1-b\n"}, []string{"{file}:zone: want a string, got a mapping"}},
		{"text for a number", run{file: "numNodes: three\n"}, []string{`{file}:numNodes="three": not a whole number`}},
		{"wrong apiVersion", run{file: "apiVersion: hakube.io/v1\nzone: us-east1-b\n"}, []string{`{file}:1: apiVersion "hakube.io/v1" is not supported (want hakube.io/v1alpha1)`}},
		{"wrong kind", run{file: "apiVersion: hakube.io/v1alpha1\nkind: Cluster\n"}, []string{`kind "Cluster" is not supported (want ClusterConfig)`}},
		{"duplicate key", run{file: "zone: us-east1-b\nprefix: a\nzone: us-east1-c\n"}, []string{`{file}:3: key "zone" is already set on line 1`}},
		{"not a mapping", run{file: "- zone: us-east1-b\n"}, []string{"{file}:1: want a mapping of settings"}},
		{"two documents", run{file: "zone: us-east1-b\n---\nzone: us-east1-c\n"}, []string{"{file}: want one YAML document"}},
		{"syntax", run{file: "zone: [us-east1-b\n"}, []string{"{file}: yaml:"}},
		{"missing file", run{path: filepath.Join(t.TempDir(), "nope.yaml")}, []string{"config file: open ", "nope.yaml: no such file"}},
		{"missing file from HAKUBE_CONFIG", run{env: map[string]string{"HAKUBE_CONFIG": "/does/not/exist.yaml"}}, []string{`HAKUBE_CONFIG="/does/not/exist.yaml": config file: open /does/not/exist.yaml`}},
		{"several problems", run{file: "numnodez: 3\nmultizone: maybe\n"}, []string{`unknown key "numnodez"`, `{file}:multizone="maybe"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.cmd = "config"
			l := tc.r.load(t)
			if l.err == nil {
				t.Fatalf("Load succeeded, want an error containing %q", tc.want)
			}
			if !errors.Is(l.err, ErrInvalidConfig) {
				t.Errorf("error %q does not wrap ErrInvalidConfig", l.err)
			}
			for _, w := range tc.want {
				w = strings.ReplaceAll(w, "{file}", l.path)
				if !strings.Contains(l.err.Error(), w) {
					t.Errorf("error\n  %s\ndoes not contain\n  %s", l.err, w)
				}
			}
		})
	}
}

func TestConfigFileAccepts(t *testing.T) {
	cases := []struct {
		name string
		file string
		want func(c *Config) bool
	}{
		{"empty file", "", func(c *Config) bool { return c.Prefix == "kubernetes" }},
		{"only comments", "# nothing here\n", func(c *Config) bool { return c.NumNodes == 3 }},
		{"header only", "apiVersion: hakube.io/v1alpha1\nkind: ClusterConfig\n", func(c *Config) bool { return c.NumNodes == 3 }},
		{"null and empty are unset", "zone: ~\nprefix: \"\"\nnumNodes:\n", func(c *Config) bool {
			return c.Zone == "" && c.Prefix == "kubernetes" && c.NumNodes == 3 && !c.Origins["zone"].userGiven()
		}},
		{"quoted number", "numNodes: \"4\"\n", func(c *Config) bool { return c.NumNodes == 4 }},
		{"yaml booleans and words", "multizone: yes\ndeleteNodes: False\nlbFirst: 1\n", func(c *Config) bool { return c.Multizone && !c.DeleteNodes && c.LBFirst }},
		{"anchors", "zone: &z europe-west1-d\nnetwork: net\n", func(c *Config) bool { return c.Zone == "europe-west1-d" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "c.yaml", tc.file)
			c := run{cmd: "config", path: path}.mustLoad(t)
			if !tc.want(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
	t.Run("HAKUBE_CONFIG, and --config beats it", func(t *testing.T) {
		a := writeFile(t, "a.yaml", "prefix: from-env-file\n")
		b := writeFile(t, "b.yaml", "prefix: from-flag-file\n")
		env := map[string]string{"HAKUBE_CONFIG": a}
		if c := (run{cmd: "config", env: env}).mustLoad(t); c.Prefix != "from-env-file" || c.Origins["prefix"] != (Origin{SourceFile, a + ":prefix"}) {
			t.Errorf("HAKUBE_CONFIG: prefix %q from %v", c.Prefix, c.Origins["prefix"])
		}
		if c := (run{cmd: "config", env: env, path: b}).mustLoad(t); c.Prefix != "from-flag-file" {
			t.Errorf("--config: prefix %q", c.Prefix)
		}
	})
}

func TestConfigNilOptions(t *testing.T) {
	setEnv(t, nil)
	c, err := Load(LoadOptions{Command: "config"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Prefix != "kubernetes" {
		t.Errorf("Prefix %q", c.Prefix)
	}
}

func TestConfigNames(t *testing.T) {
	c := run{cmd: "up", env: map[string]string{"PROJECT": "p", "KUBE_GCE_ZONE": "europe-west1-c", "KUBE_GCE_NETWORK": "prod-net"}}.mustLoad(t)
	got := map[string]string{
		"ClusterName":                c.ClusterName(),
		"MasterName":                 c.MasterName(),
		"ReplicaName":                c.ReplicaName("x7k"),
		"Region":                     c.Region(),
		"StaticIPName":               c.StaticIPName(),
		"TargetPoolName":             c.TargetPoolName(),
		"ForwardingRuleName":         c.ForwardingRuleName(),
		"HealthCheckName":            c.HealthCheckName(),
		"NodeTemplateName":           c.NodeTemplateName(),
		"NodeGroupName":              c.NodeGroupName(),
		"MasterTag":                  c.MasterTag(),
		"NodeTag":                    c.NodeTag(),
		"MasterHTTPSFirewallName":    c.MasterHTTPSFirewallName(),
		"MasterEtcdFirewallName":     c.MasterEtcdFirewallName(),
		"NodeAllFirewallName":        c.NodeAllFirewallName(),
		"InternalMasterFirewallName": c.InternalMasterFirewallName(),
		"InternalNodeFirewallName":   c.InternalNodeFirewallName(),
		"SSHFirewallName":            c.SSHFirewallName(),
		"MasterDiskName":             c.MasterDiskName("kubernetes-master-x7k"),
		"MasterDiskName(first)":      c.MasterDiskName(c.MasterName()),
	}
	want := map[string]string{
		"ClusterName":                "kubernetes",
		"MasterName":                 "kubernetes-master",
		"ReplicaName":                "kubernetes-master-x7k",
		"Region":                     "europe-west1",
		"StaticIPName":               "kubernetes-master-ip",
		"TargetPoolName":             "kubernetes-master",
		"ForwardingRuleName":         "kubernetes-master",
		"HealthCheckName":            "kubernetes-master",
		"NodeTemplateName":           "kubernetes-minion-template",
		"NodeGroupName":              "kubernetes-minion-group",
		"MasterTag":                  "kubernetes-master",
		"NodeTag":                    "kubernetes-minion",
		"MasterHTTPSFirewallName":    "kubernetes-master-https",
		"MasterEtcdFirewallName":     "kubernetes-master-etcd",
		"NodeAllFirewallName":        "kubernetes-minion-all",
		"InternalMasterFirewallName": "kubernetes-default-internal-master",
		"InternalNodeFirewallName":   "kubernetes-default-internal-node",
		"SSHFirewallName":            "prod-net-default-ssh",
		"MasterDiskName":             "kubernetes-master-x7k-pd",
		"MasterDiskName(first)":      "kubernetes-master-pd",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	for zone, region := range map[string]string{"us-central1-b": "us-central1", "asia-southeast1-a": "asia-southeast1", "me-central2-a": "me-central2", "": ""} {
		if got := (&Config{Zone: zone}).Region(); got != region {
			t.Errorf("Region(%q) = %q, want %q", zone, got, region)
		}
	}
}

// The longest prefix allowed makes names of exactly 63 characters.
func TestConfigPrefixLimit(t *testing.T) {
	p := strings.Repeat("p", 39)
	c := run{cmd: "config", args: []string{"--prefix=" + p}}.mustLoad(t)
	longest := 0
	for _, n := range c.prefixNames() {
		longest = max(longest, len(n))
	}
	if longest != 63 {
		t.Errorf("longest name with a %d-character prefix has %d characters, want 63", len(p), longest)
	}
}

func TestConfigRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		r    run
	}{
		{"defaults for up", run{cmd: "up", env: map[string]string{"PROJECT": "p"}}},
		{"down without a zone", run{cmd: "down", env: map[string]string{"GOOGLE_CLOUD_PROJECT": "p"}}},
		{"everything set", run{
			cmd: "up",
			args: []string{"--zone=europe-west1-d", "--max-downtime=2m30s", "--endpoint=http://127.0.0.1:8080/compute/v1/",
				"--apiserver-port=6443", "--healthcheck-port=6990", "--lb-first", "--master-disk-size=1TB"},
			env:  map[string]string{"PROJECT": "yes", "NUM_NODES": "900", "MASTER_DISK_TYPE": "pd-balanced", "MULTIZONE": "yes", "ENABLE_ETCD_QUORUM_READ": "1", "NODE_DISK_SIZE": "1TB", "NODE_SIZE": "e2-standard-8"},
			file: "prefix: prod\nnetwork: net-1\nmasterSize: e2-custom-4-8192\nreplica: prod-master-abc\nimageFamily: \"no\"\nimageProject: cos-cloud\nnodeDiskType: pd-ssd\ndeleteNetwork: true\n",
		}},
	}
	ignore := cmpopts.IgnoreFields(Config{}, "Origins")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			first := tc.r.mustLoad(t)
			view, err := first.View()
			if err != nil {
				t.Fatal(err)
			}
			second := run{cmd: tc.r.cmd, path: writeFile(t, "view.yaml", string(view))}.mustLoad(t)
			if diff := cmp.Diff(first, second, ignore); diff != "" {
				t.Errorf("config changed through View and Load (-first +second):\n%s\nview:\n%s", diff, view)
			}
			if first.Zone != "" && !second.Origins["zone"].userGiven() {
				t.Errorf("zone %q from the file should count as set", second.Zone)
			}
			again, err := second.View()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(view), string(again)); diff != "" {
				t.Errorf("View is not stable (-first +second):\n%s", diff)
			}
			for _, s := range settingSpecs() {
				if o := second.Origins[s.key]; s.settable() && s.readBy(tc.r.cmd) && s.render(second) != "" && o.Source != SourceFile {
					t.Errorf("%s=%q came from %v, want the file", s.key, s.render(second), o)
				}
			}
		})
	}
}

// yaml.Marshal of a Config value or pointer gives the config-file shape.
func TestConfigMarshalYAMLValue(t *testing.T) {
	c := run{cmd: "config"}.mustLoad(t)
	view, err := c.View()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"apiVersion: hakube.io/v1alpha1\n", "kind: ClusterConfig\n", "numNodes: 3\n", "project: \"\"\n", "maxDowntime: 0s\n", "nodeDiskSize: 100GB\n"} {
		if !bytes.Contains(view, []byte(want)) {
			t.Errorf("view lacks %q:\n%s", want, view)
		}
	}
	for name, v := range map[string]any{"value": *c, "pointer": c} {
		got, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		// yaml.Marshal indents by 4, View by 2; the mapping is flat, so both agree.
		if diff := cmp.Diff(string(view), string(got)); diff != "" {
			t.Errorf("yaml.Marshal(%s) differs from View (-view +marshal):\n%s", name, diff)
		}
	}
}

// renderSettings is what `hakube config view --show-origin` prints.
func renderSettings(settings []Setting) []byte {
	var b bytes.Buffer
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KEY\tVALUE\tORIGIN")
	for _, s := range settings {
		fmt.Fprintf(w, "%s\t%s\t%s\n", s.Key, s.Value, s.Origin)
	}
	w.Flush()
	return b.Bytes()
}

func TestConfigSettingsGolden(t *testing.T) {
	r := run{
		cmd:  "up",
		path: filepath.Join("testdata", "config", "representative.yaml"),
		args: []string{"--zone", "europe-west1-c", "--replicate-master"},
		env: map[string]string{
			"CLOUDSDK_CORE_PROJECT":    "my-project",
			"GOOGLE_CLOUD_PROJECT":     "not-this-one",
			"NUM_NODES":                "120",
			"KUBE_GCE_INSTANCE_PREFIX": "prod",
			"HAKUBE_MAX_DOWNTIME":      "",
		},
	}
	c := r.mustLoad(t)
	golden.Check(t, "config/settings.golden", renderSettings(c.Settings()))
	view, err := c.View()
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "config/view.golden.yaml", view)
}

func TestConfigExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "configs", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %d example configs, want at least 2", len(files))
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			for _, cmd := range []string{"up", "down", "status", "validate", "config"} {
				run{cmd: cmd, path: path, env: map[string]string{"PROJECT": "p"}}.mustLoad(t)
			}
		})
	}

	defaults := filepath.Join("..", "..", "..", "configs", "kube-up-defaults.yaml")
	t.Run("kube-up-defaults.yaml is the defaults, and lists every key", func(t *testing.T) {
		env := map[string]string{"PROJECT": "p"}
		want := run{cmd: "up", env: env}.mustLoad(t)
		got := run{cmd: "up", env: env, path: defaults}.mustLoad(t)
		if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Config{}, "Origins")); diff != "" {
			t.Errorf("(-defaults +file):\n%s", diff)
		}
		text, err := os.ReadFile(defaults)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range settingSpecs() {
			if s.settable() && !bytes.Contains(text, []byte("\n"+s.key+":")) {
				t.Errorf("%s lacks key %q", defaults, s.key)
			}
		}
	})
	t.Run("ha-europe-west1.yaml and its follow-up commands", func(t *testing.T) {
		path := filepath.Join("..", "..", "..", "configs", "ha-europe-west1.yaml")
		env := map[string]string{"PROJECT": "p"}
		c := run{cmd: "up", env: env, path: path}.mustLoad(t)
		want := []any{"kubernetes", "europe-west1-b", true, true, 3}
		if diff := cmp.Diff(want, []any{c.Prefix, c.Zone, c.Multizone, c.EtcdQuorumRead, c.NumNodes}); diff != "" {
			t.Errorf("prefix, zone, multizone, etcdQuorumRead, numNodes (-want +got):\n%s", diff)
		}
		for _, zone := range []string{"europe-west1-c", "europe-west1-d"} {
			for _, step := range []string{"--use-existing-master", "--replicate-master"} {
				c := run{cmd: "up", env: env, path: path, args: []string{"--zone", zone, step}}.mustLoad(t)
				if c.Zone != zone || c.Region() != "europe-west1" || c.UseExistingMaster == c.ReplicateMaster {
					t.Errorf("%s %s: zone %q region %q pool %v replica %v", zone, step, c.Zone, c.Region(), c.UseExistingMaster, c.ReplicateMaster)
				}
			}
		}
	})
}

func TestConfigOriginString(t *testing.T) {
	cases := map[Origin]string{
		{SourceFlag, "--zone"}:            "flag --zone",
		{SourceEnv, "KUBE_GCE_ZONE"}:      "env KUBE_GCE_ZONE",
		{SourceFile, "/p/x.yaml:zone"}:    "file /p/x.yaml:zone",
		{SourceDefault, ""}:               "default",
		{SourceDerived, "numNodes"}:       "derived from numNodes",
		{SourceDerived, ""}:               "derived",
		{}:                                "unknown",
		{Source: "bogus", Name: "--zone"}: "unknown",
	}
	for o, want := range cases {
		if got := o.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", o, got, want)
		}
	}
}

func TestConfigErrorFormat(t *testing.T) {
	one := run{cmd: "config", env: map[string]string{"NUM_NODES": "abc"}}.load(t).err
	if got, want := one.Error(), `invalid configuration: NUM_NODES="abc": not a whole number`; got != want {
		t.Errorf("one problem: %q, want %q", got, want)
	}
	// Problems come in table order (provider before numNodes), whether found
	// while parsing or while checking; combinations come last.
	several := run{cmd: "up", env: map[string]string{"NUM_NODES": "abc", "KUBERNETES_PROVIDER": "aws", "MULTIZONE": "maybe"}}.load(t).err
	want := "invalid configuration:\n" +
		"  KUBERNETES_PROVIDER=\"aws\": hakube only supports provider \"gce\"\n" +
		"  NUM_NODES=\"abc\": not a whole number\n" +
		"  MULTIZONE=\"maybe\": want true/false/1/0/yes/no\n" +
		"  no GCP project: pass --project or set PROJECT (or CLOUDSDK_CORE_PROJECT, GOOGLE_CLOUD_PROJECT, project: in the config file, or `gcloud config set project`); hakube up needs one"
	if got := several.Error(); got != want {
		t.Errorf("several problems:\n%s\nwant\n%s", got, want)
	}
}

// Load keeps no state between calls (no global viper): concurrent loads with
// different flags and config files do not see each other (run with -race).
// The environment is the process's, shared by all; so this test, like every
// test that loads a config, does not use t.Parallel.
func TestConfigConcurrentLoads(t *testing.T) {
	setEnv(t, map[string]string{"PROJECT": "p"})
	const n = 8
	var flagSets [n]*pflag.FlagSet
	var files [n]string
	for i := range n {
		flagSets[i] = pflag.NewFlagSet("hakube", pflag.ContinueOnError)
		BindFlags(flagSets[i], "")
		if err := flagSets[i].Parse([]string{fmt.Sprintf("--zone=europe-west%d-b", i+1)}); err != nil {
			t.Fatal(err)
		}
		files[i] = writeFile(t, "c.yaml", fmt.Sprintf("numNodes: %d\n", i*100))
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := Load(LoadOptions{Flags: flagSets[i], ConfigFile: files[i], Command: "up"})
			if err != nil {
				t.Errorf("%d: %v", i, err)
				return
			}
			zone := fmt.Sprintf("europe-west%d-b", i+1)
			if c.Zone != zone || c.NumNodes != i*100 || c.Project != "p" || c.Origins["numNodes"].Name != files[i]+":numNodes" {
				t.Errorf("%d: got zone %q nodes %d project %q, numNodes from %v", i, c.Zone, c.NumNodes, c.Project, c.Origins["numNodes"])
			}
		})
	}
	wg.Wait()
}

// A zone's pool of more nodes than a group holds is split as kube-up
// splits it: ceil(n/max) groups, group-1..N-1 and the last unsuffixed.
func TestConfigNodeGroups(t *testing.T) {
	cases := []struct {
		n, max int
		want   []NodeGroup
	}{
		{3, 1000, []NodeGroup{{"kubernetes-minion-group", 3}}},
		{0, 1000, []NodeGroup{{"kubernetes-minion-group", 0}}},
		{1000, 1000, []NodeGroup{{"kubernetes-minion-group", 1000}}},
		{1001, 1000, []NodeGroup{{"kubernetes-minion-group-1", 500}, {"kubernetes-minion-group", 501}}},
		{2500, 1000, []NodeGroup{{"kubernetes-minion-group-1", 833}, {"kubernetes-minion-group-2", 833}, {"kubernetes-minion-group", 834}}},
		{5000, 1000, []NodeGroup{{"kubernetes-minion-group-1", 1000}, {"kubernetes-minion-group-2", 1000}, {"kubernetes-minion-group-3", 1000}, {"kubernetes-minion-group-4", 1000}, {"kubernetes-minion-group", 1000}}},
		{7, 3, []NodeGroup{{"kubernetes-minion-group-1", 2}, {"kubernetes-minion-group-2", 2}, {"kubernetes-minion-group", 3}}},
	}
	for _, tc := range cases {
		c := &Config{Prefix: "kubernetes", MaxInstancesPerMIG: tc.max}
		if diff := cmp.Diff(tc.want, c.NodeGroups(tc.n)); diff != "" {
			t.Errorf("%d nodes, %d per group (-want +got):\n%s", tc.n, tc.max, diff)
		}
		for _, g := range c.NodeGroups(tc.n) {
			if !c.IsNodeGroup(g.Name) {
				t.Errorf("IsNodeGroup(%q) = false", g.Name)
			}
		}
	}
	c := &Config{Prefix: "kubernetes"}
	for _, name := range []string{"kubernetes-minion-group-01", "kubernetes-minion-group-x", "kubernetes-minion-group-", "other-minion-group", "kubernetes-minion-groups"} {
		if c.IsNodeGroup(name) {
			t.Errorf("IsNodeGroup(%q) = true", name)
		}
	}
}
