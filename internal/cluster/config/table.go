package config

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// kind is how a setting's text is parsed and rendered.
type kind int

const (
	kindString   kind = iota
	kindBool          // true/false/1/0/yes/no, any case
	kindInt           // a whole number
	kindDuration      // a Go duration: 90s, 5m
	kindDiskSize      // kube-up's disk sizes: 100GB, 1TB, or a bare number of GB
)

// settingSpec is one row of the settings table, the single source of truth for
// a setting's flag, environment variables, config-file key, default, parsing,
// validation and help text.
type settingSpec struct {
	key  string   // config-file key; also the key in Settings() and Origins
	flag string   // without dashes; "" for values hakube derives and nobody sets
	env  []string // first set and non-empty wins; kube-up's names first
	// misspelt maps an accepted-but-wrong env name to the right one; using it
	// warns, because kube-up silently ignored it.
	misspelt map[string]string
	kind     kind
	def      string            // default, as the user would type it
	cmdDef   map[string]string // per-command default, overriding def
	help     string
	field    func(c *Config) any // pointer to the Config field
	check    func(c *Config) error
	// derive computes the value when the user gave none; derivedFrom names the
	// setting it depends on, for the origin.
	derive      func(c *Config)
	derivedFrom string
	// fallback supplies a value from outside hakube when the user set none
	// (gcloud's configuration, for the project).
	fallback func() (raw string, origin Origin, ok bool)
	// commands lists the commands that read the setting (nil: every
	// command). A command binds flags only for what it reads, ignores the
	// rest of the environment and config file, and `config` reads them all.
	commands []string
	// group is the heading the flag is listed under in --help.
	group string
	// selectsFlow marks the switches that choose what a command does: set
	// in the environment for a command that does not read them, they are
	// reported rather than silently ignored.
	selectsFlow bool
}

// Groups of flags in --help.
const (
	GroupCluster = "Cluster"
	GroupSizes   = "Sizes and images"
	GroupLB      = "Load balancer"
	GroupKube    = "Kubernetes"
	// FlagGroupAnnotation is the pflag annotation carrying a flag's group.
	FlagGroupAnnotation = "hakube-group"
)

// settingSpecs returns the settings table in display order. It is a function,
// not a package variable, so nothing shared can be mutated.
func settingSpecs() []settingSpec {
	return []settingSpec{
		{
			key: "provider", flag: "provider", env: []string{"KUBERNETES_PROVIDER"},
			def:   "gce",
			help:  "cloud provider; hakube only supports gce",
			field: func(c *Config) any { return &c.Provider },
			check: func(c *Config) error { return checkProvider(c.Provider) },
			group: GroupCluster,
		},
		{
			key: "project", flag: "project", env: []string{"PROJECT", "CLOUDSDK_CORE_PROJECT", "GOOGLE_CLOUD_PROJECT"},
			help:  "GCP project (default: the project of gcloud's active configuration)",
			field: func(c *Config) any { return &c.Project },
			fallback: func() (string, Origin, bool) {
				p, path, ok := gcloudProject()
				return p, Origin{Source: SourceGcloud, Name: path}, ok
			},
			check: func(c *Config) error { return checkProject(c.Project) },
			group: GroupCluster,
		},
		{
			key: "zone", flag: "zone", env: []string{"KUBE_GCE_ZONE"},
			cmdDef: map[string]string{"up": "us-central1-b"},
			help:   "zone to act on; the region is the zone minus its last -x (default us-central1-b for up; down without a zone tears the whole cluster down)",
			field:  func(c *Config) any { return &c.Zone },
			check:  func(c *Config) error { return checkZone(c.Zone) },
			group:  GroupCluster,
		},
		{
			key: "prefix", flag: "prefix", env: []string{"KUBE_GCE_INSTANCE_PREFIX"},
			def:   "kubernetes",
			help:  "root of every resource name (kube-up's INSTANCE_PREFIX)",
			field: func(c *Config) any { return &c.Prefix },
			check: func(c *Config) error { return checkPrefix(c.Prefix) },
			group: GroupCluster,
		},
		{
			key: "numNodes", flag: "num-nodes", env: []string{"NUM_NODES"},
			kind: kindInt, def: "3",
			help:     "nodes in the node pool of this zone",
			field:    func(c *Config) any { return &c.NumNodes },
			check:    func(c *Config) error { return checkNumNodes(c.NumNodes) },
			commands: []string{"up"},
			group:    GroupSizes,
		},
		{
			key: "maxInstancesPerMIG", flag: "max-instances-per-mig", env: []string{"MAX_INSTANCES_PER_MIG"},
			kind: kindInt, def: "1000",
			help:     "nodes per managed instance group: a zone's pool of more is split into ceil(nodes/this) groups, <prefix>-minion-group-1..N-1 and <prefix>-minion-group, as kube-up does",
			field:    func(c *Config) any { return &c.MaxInstancesPerMIG },
			check:    func(c *Config) error { return checkGroupSize(c.MaxInstancesPerMIG) },
			commands: []string{"up"},
			group:    GroupSizes,
		},
		{
			key: "multizone", flag: "multizone", env: []string{"MULTIZONE"},
			kind: kindBool, def: "false",
			help:     "HA-compatible cluster: the cloud provider and kubelets work across the region's zones",
			field:    func(c *Config) any { return &c.Multizone },
			commands: []string{"up"},
			group:    GroupCluster,
		},
		{
			key: "etcdQuorumRead", flag: "etcd-quorum-read", env: []string{"ENABLE_ETCD_QUORUM_READ", "ENABLE_ETCD_QUORUM_READS"},
			misspelt: map[string]string{"ENABLE_ETCD_QUORUM_READS": "ENABLE_ETCD_QUORUM_READ"},
			kind:     kindBool, def: "false",
			help:     "make the apiserver read from etcd with quorum reads",
			field:    func(c *Config) any { return &c.EtcdQuorumRead },
			commands: []string{"up"},
			group:    GroupCluster,
		},
		{
			key: "useExistingMaster", flag: "use-existing-master", env: []string{"KUBE_USE_EXISTING_MASTER"},
			kind: kindBool, def: "false",
			help:        "up: add a node pool in --zone to the existing cluster; down: remove the node pool in --zone",
			field:       func(c *Config) any { return &c.UseExistingMaster },
			commands:    []string{"up", "down"},
			selectsFlow: true,
			group:       GroupCluster,
		},
		{
			key: "replicateMaster", flag: "replicate-master", env: []string{"KUBE_REPLICATE_EXISTING_MASTER"},
			kind: kindBool, def: "false",
			help:        "up: add a master replica in --zone",
			field:       func(c *Config) any { return &c.ReplicateMaster },
			commands:    []string{"up"},
			selectsFlow: true,
			group:       GroupCluster,
		},
		{
			key: "deleteNodes", flag: "delete-nodes", env: []string{"KUBE_DELETE_NODES"},
			kind: kindBool, def: "true",
			help:        "down --zone: false removes only the master replica in the zone, not its node pool",
			field:       func(c *Config) any { return &c.DeleteNodes },
			commands:    []string{"down"},
			selectsFlow: true,
			group:       GroupCluster,
		},
		{
			key: "replica", flag: "replica", env: []string{"KUBE_REPLICA_NAME"},
			help:        "down: the exact master replica to remove",
			field:       func(c *Config) any { return &c.Replica },
			check:       func(c *Config) error { return checkReplica(c.Replica) },
			commands:    []string{"down"},
			selectsFlow: true,
			group:       GroupCluster,
		},
		{
			key: "masterSize", flag: "master-size", env: []string{"MASTER_SIZE"},
			help:        "machine type of master replicas (default by node count, like kube-up: e2-standard-2 up to 10 nodes, e2-standard-4 up to 100, -8 up to 250, -16 up to 500, -32 up to 3000, then n2-standard-64)",
			field:       func(c *Config) any { return &c.MasterSize },
			check:       func(c *Config) error { return checkMachineType(c.MasterSize) },
			derive:      func(c *Config) { c.MasterSize = masterSizeFor(c.NumNodes) },
			derivedFrom: "numNodes",
			commands:    []string{"up"},
			group:       GroupSizes,
		},
		{
			key: "nodeSize", flag: "node-size", env: []string{"NODE_SIZE"},
			def:      "e2-standard-2",
			help:     "machine type of nodes",
			field:    func(c *Config) any { return &c.NodeSize },
			check:    func(c *Config) error { return checkMachineType(c.NodeSize) },
			commands: []string{"up"},
			group:    GroupSizes,
		},
		{
			key: "masterDiskType", flag: "master-disk-type", env: []string{"MASTER_DISK_TYPE"},
			def:      "pd-ssd",
			help:     "type of each master replica's etcd data disk",
			field:    func(c *Config) any { return &c.MasterDiskType },
			check:    func(c *Config) error { return checkDiskType(c.MasterDiskType) },
			commands: []string{"up"},
			group:    GroupSizes,
		},
		{
			key: "masterDiskSize", flag: "master-disk-size", env: []string{"MASTER_DISK_SIZE"}, kind: kindDiskSize,
			help:        "size of each master replica's etcd data disk (default by node count, like kube-up: 20GB, 100GB above 1000 nodes, 200GB above 2000)",
			field:       func(c *Config) any { return &c.MasterDiskSizeGB },
			check:       func(c *Config) error { return checkDataDiskSize(c.MasterDiskSizeGB) },
			derive:      func(c *Config) { c.MasterDiskSizeGB, _ = masterDiskSizesFor(c.NumNodes) },
			derivedFrom: "numNodes",
			commands:    []string{"up"},
			group:       GroupSizes,
		},
		{
			key: "masterRootDiskSize", flag: "master-root-disk-size", env: []string{"MASTER_ROOT_DISK_SIZE"}, kind: kindDiskSize,
			help:        "boot disk size of master replicas (default by node count, like kube-up: 20GB, 50GB above 1000 nodes, 100GB above 2000)",
			field:       func(c *Config) any { return &c.MasterRootDiskSizeGB },
			check:       func(c *Config) error { return checkBootDiskSize(c.MasterRootDiskSizeGB) },
			derive:      func(c *Config) { _, c.MasterRootDiskSizeGB = masterDiskSizesFor(c.NumNodes) },
			derivedFrom: "numNodes",
			commands:    []string{"up"},
			group:       GroupSizes,
		},
		{
			key: "nodeDiskType", flag: "node-disk-type", env: []string{"NODE_DISK_TYPE"},
			def:      "pd-standard",
			help:     "boot disk type of nodes",
			field:    func(c *Config) any { return &c.NodeDiskType },
			check:    func(c *Config) error { return checkDiskType(c.NodeDiskType) },
			commands: []string{"up"},
			group:    GroupSizes,
		},
		{
			key: "nodeDiskSize", flag: "node-disk-size", env: []string{"NODE_DISK_SIZE"},
			kind: kindDiskSize, def: "100GB",
			help:     "boot disk size of nodes, like 100GB or 1TB",
			field:    func(c *Config) any { return &c.NodeDiskSizeGB },
			check:    func(c *Config) error { return checkBootDiskSize(c.NodeDiskSizeGB) },
			commands: []string{"up"},
			group:    GroupSizes,
		},
		{
			key: "network", flag: "network", env: []string{"KUBE_GCE_NETWORK"},
			def:   "default",
			help:  "VPC network",
			field: func(c *Config) any { return &c.Network },
			check: func(c *Config) error { return checkNetwork(c.Network) },
			group: GroupCluster,
		},
		{
			key: "deleteNetwork", flag: "delete-network", env: []string{"KUBE_DELETE_NETWORK"},
			kind: kindBool, def: "false",
			help:     "full teardown also deletes the network, when hakube created it",
			field:    func(c *Config) any { return &c.DeleteNetwork },
			commands: []string{"down"},
			group:    GroupCluster,
		},
		{
			key: "endpoint", flag: "endpoint", env: []string{"CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE"},
			help:  "Compute API base URL ending in /compute/v1/, e.g. the emulator's http://127.0.0.1:8080/compute/v1/ (default: real GCE)",
			field: func(c *Config) any { return &c.Endpoint },
			check: func(c *Config) error { return checkEndpoint(c.Endpoint) },
			group: GroupCluster,
		},
		{
			key: "lbFirst", flag: "lb-first", env: []string{"HAKUBE_LB_FIRST"},
			kind: kindBool, def: "false",
			help:        "fresh cluster: put the static IP on a load-balancer forwarding rule from the start",
			field:       func(c *Config) any { return &c.LBFirst },
			commands:    []string{"up"},
			selectsFlow: true,
			group:       GroupLB,
		},
		{
			key: "maxDowntime", flag: "max-downtime", env: []string{"HAKUBE_MAX_DOWNTIME"},
			kind: kindDuration, def: "0s",
			help:     "revert moving the static IP onto the load balancer if the outage lasts longer, like 90s or 5m (0: no limit)",
			field:    func(c *Config) any { return &c.MaxDowntime },
			check:    func(c *Config) error { return checkNotNegative(c.MaxDowntime) },
			commands: []string{"up"},
			group:    GroupLB,
		},
		{
			key: "apiserverPort", flag: "apiserver-port", env: []string{"HAKUBE_APISERVER_PORT"},
			kind: kindInt, def: "443",
			help:     "HTTPS port of the apiserver on the masters and the load balancer",
			field:    func(c *Config) any { return &c.APIServerPort },
			check:    func(c *Config) error { return checkPort(c.APIServerPort) },
			commands: []string{"up", "down", "status", "validate"},
			group:    GroupLB,
		},
		{
			key: "healthcheckPort", flag: "healthcheck-port", env: []string{"HAKUBE_HEALTHCHECK_PORT"},
			kind: kindInt, def: "3990",
			help:     "plain-HTTP /healthz port on the masters that the load balancer's health check probes",
			field:    func(c *Config) any { return &c.HealthCheckPort },
			check:    func(c *Config) error { return checkPort(c.HealthCheckPort) },
			commands: []string{"up", "down", "status", "validate"},
			group:    GroupLB,
		},
		{
			key: "clusterIPRange", flag: "cluster-ip-range", env: []string{"CLUSTER_IP_RANGE"},
			def:      "10.64.0.0/14",
			help:     "the pods' addresses: a secondary range <prefix>-pods of the region's subnetwork, of which every VM gets a /24 as an alias IP range (kube-up's CLUSTER_IP_RANGE)",
			field:    func(c *Config) any { return &c.ClusterIPRange },
			check:    func(c *Config) error { return checkPodRange(c.ClusterIPRange) },
			commands: []string{"up"},
			group:    GroupKube,
		},
		{
			key: "sshPort", flag: "ssh-port", env: []string{"HAKUBE_SSH_PORT"},
			kind: kindInt, def: "22",
			help:     "the masters' SSH port, which hakube tunnels to etcd through to change its members",
			field:    func(c *Config) any { return &c.SSHPort },
			check:    func(c *Config) error { return checkPort(c.SSHPort) },
			commands: []string{"up", "down", "status", "validate"},
			group:    GroupKube,
		},
		{
			key: "etcdTestArgs", flag: "etcd-test-args", env: []string{"ETCD_TEST_ARGS"},
			help:     "extra flags of etcd on every VM, as kube-up's ETCD_TEST_ARGS (written into kube-env)",
			field:    func(c *Config) any { return &c.EtcdTestArgs },
			commands: []string{"up"},
			group:    GroupKube,
		},
		{
			key: "apiserverTestArgs", flag: "apiserver-test-args", env: []string{"APISERVER_TEST_ARGS"},
			help:     "extra flags of kube-apiserver on every VM, as kube-up's APISERVER_TEST_ARGS (written into kube-env)",
			field:    func(c *Config) any { return &c.APIServerTestArgs },
			commands: []string{"up"},
			group:    GroupKube,
		},
		{
			key: "controllerManagerTestArgs", flag: "controller-manager-test-args", env: []string{"CONTROLLER_MANAGER_TEST_ARGS"},
			help:     "extra flags of kube-controller-manager on every VM, as kube-up's CONTROLLER_MANAGER_TEST_ARGS (written into kube-env)",
			field:    func(c *Config) any { return &c.ControllerManagerTestArgs },
			commands: []string{"up"},
			group:    GroupKube,
		},
		{
			key: "schedulerTestArgs", flag: "scheduler-test-args", env: []string{"SCHEDULER_TEST_ARGS"},
			help:     "extra flags of kube-scheduler on every VM, as kube-up's SCHEDULER_TEST_ARGS (written into kube-env)",
			field:    func(c *Config) any { return &c.SchedulerTestArgs },
			commands: []string{"up"},
			group:    GroupKube,
		},
		{
			key: "kubeletTestArgs", flag: "kubelet-test-args", env: []string{"KUBELET_TEST_ARGS"},
			help:     "extra flags of the kubelets on every VM, as kube-up's KUBELET_TEST_ARGS (written into kube-env)",
			field:    func(c *Config) any { return &c.KubeletTestArgs },
			commands: []string{"up"},
			group:    GroupKube,
		},
		{
			key: "imageProject", flag: "image-project", env: []string{"HAKUBE_IMAGE_PROJECT"},
			def:      "debian-cloud",
			help:     "project holding the VM image of masters and nodes",
			field:    func(c *Config) any { return &c.ImageProject },
			check:    func(c *Config) error { return checkProject(c.ImageProject) },
			commands: []string{"up"},
			group:    GroupSizes,
		},
		{
			key: "imageFamily", flag: "image-family", env: []string{"HAKUBE_IMAGE_FAMILY"},
			def:      "debian-12",
			help:     "image family of masters and nodes",
			field:    func(c *Config) any { return &c.ImageFamily },
			check:    func(c *Config) error { return checkImageFamily(c.ImageFamily) },
			commands: []string{"up"},
			group:    GroupSizes,
		},
	}
}

// EnvironmentVariables lists every variable Load reads: the settings', the
// config file's, and gcloud's (for the project's fallback). Tests and the
// walkthrough clear them so that a developer's own environment never leaks in.
func EnvironmentVariables() []string {
	names := []string{ConfigFileEnv, "CLOUDSDK_CONFIG", "CLOUDSDK_ACTIVE_CONFIG_NAME"}
	for _, s := range settingSpecs() {
		names = append(names, s.env...)
	}
	return names
}

// settable reports whether users can set the setting; the others are derived
// or fixed, shown by `config view` but absent from flags and config files.
func (s settingSpec) settable() bool { return s.flag != "" }

// readBy reports whether the command reads the setting; `config` (and a
// load for no command in particular) reads every setting.
func (s settingSpec) readBy(cmd string) bool {
	return s.commands == nil || cmd == "" || cmd == "config" || slices.Contains(s.commands, cmd)
}

func (s settingSpec) defaultFor(cmd string) string {
	if d, ok := s.cmdDef[cmd]; ok {
		return d
	}
	return s.def
}

// usage is the flag's help text; it names the environment variables so that
// kube-up users find their old names in --help.
func (s settingSpec) usage() string {
	var names []string
	for _, n := range s.env {
		if _, bad := s.misspelt[n]; !bad {
			names = append(names, n)
		}
	}
	switch len(names) {
	case 0:
		return s.help
	case 1:
		return fmt.Sprintf("%s (env %s)", s.help, names[0])
	}
	return fmt.Sprintf("%s (env %s or %s)", s.help, strings.Join(names[:len(names)-1], ", "), names[len(names)-1])
}

// set parses raw and stores it in the setting's Config field.
func (s settingSpec) set(c *Config, raw string) error {
	switch p := s.field(c).(type) {
	case *string:
		*p = raw
	case *bool:
		v, err := parseBool(raw)
		if err != nil {
			return err
		}
		*p = v
	case *int:
		parse := parseInt
		if s.kind == kindDiskSize {
			parse = parseDiskSizeGB
		}
		v, err := parse(raw)
		if err != nil {
			return err
		}
		*p = v
	case *time.Duration:
		v, err := parseDuration(raw)
		if err != nil {
			return err
		}
		*p = v
	default:
		return fmt.Errorf("setting %s: unsupported field type %T", s.key, p)
	}
	return nil
}

// render formats the setting's value as a config file would spell it.
func (s settingSpec) render(c *Config) string {
	switch p := s.field(c).(type) {
	case *string:
		return *p
	case *bool:
		return strconv.FormatBool(*p)
	case *int:
		if s.kind == kindDiskSize {
			return strconv.Itoa(*p) + "GB"
		}
		return strconv.Itoa(*p)
	case *time.Duration:
		return p.String()
	}
	return fmt.Sprintf("%v", s.field(c))
}

// display is render for people: a password in the endpoint URL is
// redacted, so `config view` never prints a credential.
func (s settingSpec) display(c *Config) string {
	v := s.render(c)
	if s.key == "endpoint" && v != "" {
		if u, err := url.Parse(v); err == nil && u.User != nil {
			return u.Redacted()
		}
	}
	return v
}

// masterSizeFor is kube-up's get-master-size with e2 machine types; e2 stops
// at 32 vCPUs, so the largest clusters get n2-standard-64.
func masterSizeFor(numNodes int) string {
	switch {
	case numNodes <= 10:
		return "e2-standard-2"
	case numNodes <= 100:
		return "e2-standard-4"
	case numNodes <= 250:
		return "e2-standard-8"
	case numNodes <= 500:
		return "e2-standard-16"
	case numNodes <= 3000:
		return "e2-standard-32"
	}
	return "n2-standard-64"
}

// masterDiskSizesFor is kube-up's MASTER_DISK_SIZE and MASTER_ROOT_DISK_SIZE.
func masterDiskSizesFor(numNodes int) (dataGB, rootGB int) {
	switch {
	case numNodes > 2000:
		return 200, 100
	case numNodes > 1000:
		return 100, 50
	}
	return 20, 20
}
