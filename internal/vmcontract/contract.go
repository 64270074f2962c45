// Package vmcontract is the contract between hakube and the VMs it makes:
// the metadata keys a VM reads, the certificates it finds there and where
// they go on its disk, and the flags each Kubernetes component runs with.
// hakube writes to it (internal/cluster, and the startup scripts of real
// VMs); gce-emulator's guests read it. docs/vm-contract.md is its prose.
// It imports neither side, so neither can drift from it alone.
package vmcontract

import (
	"strconv"
	"strings"
)

// Versions the rehearsal builds from the Go module proxy and real VMs
// install from the releases.
const (
	KubeVersion = "v1.35.4"
	EtcdVersion = "v3.6.16"
)

// Metadata keys of an instance (or its template).
const (
	KeyKubeEnv       = "kube-env"
	KeyMasterCerts   = "kube-master-certs"
	KeyClusterName   = "cluster-name"
	KeySSHKeys       = "ssh-keys"
	KeyStartupScript = "startup-script"
	// KeyBlockProjectSSHKeys set true on an instance makes the project's
	// ssh-keys not count; KeyEnableGuestAttributes TRUE (on the instance,
	// else the project) lets the VM publish guest attributes (its SSH host
	// keys, hostkeys/<type>, and its bootstrap's outcome).
	KeyBlockProjectSSHKeys   = "block-project-ssh-keys"
	KeyEnableGuestAttributes = "enable-guest-attributes"
	// GuestAttributesHostKeys is the guest-attribute namespace of the SSH
	// host keys.
	GuestAttributesHostKeys = "hostkeys"
)

// Where a real VM keeps the contract's files (RealHost's layout); the
// rehearsal's VMs keep theirs elsewhere.
const (
	RealPKIDir  = "/etc/kubernetes/pki"
	RealConfDir = "/etc/kubernetes"
	// RealDataDisk is where a master mounts its data disk (device name
	// EtcdDeviceName), as kube-up's safe_format_and_mount did.
	RealDataDisk = "/mnt/disks/" + EtcdDeviceName
)

// A VM reports how its bootstrap went as a guest attribute, which
// instances.getGuestAttributes returns (queryPath GuestAttrBootstrap): the
// startup script of a real VM writes it, the emulator's guest does too, and
// hakube status reads it. Its value is BootstrapOK, BootstrapRunning+step
// while a step runs, or BootstrapFailed+step+": "+reason.
const (
	GuestAttrNamespace    = "hakube"
	GuestAttrBootstrapKey = "bootstrap"
	GuestAttrBootstrap    = GuestAttrNamespace + "/" + GuestAttrBootstrapKey
	BootstrapOK           = "ok"
	BootstrapRunning      = "running "
	BootstrapFailed       = "failed at "
)

// kube-env keys with a meaning to the VM (docs/vm-contract.md lists them all).
const (
	EnvKubernetesMaster      = "KUBERNETES_MASTER"
	EnvClusterName           = "CLUSTER_NAME"
	EnvInstancePrefix        = "INSTANCE_PREFIX"
	EnvMasterName            = "MASTER_NAME"
	EnvMasterAddress         = "KUBERNETES_MASTER_NAME"
	EnvAdvertiseAddress      = "MASTER_ADVERTISE_ADDRESS"
	EnvAPIServerPort         = "APISERVER_PORT"
	EnvHealthCheckPort       = "HEALTHCHECK_PORT"
	EnvInitialEtcdCluster    = "INITIAL_ETCD_CLUSTER"
	EnvInitialEtcdState      = "INITIAL_ETCD_CLUSTER_STATE"
	EnvEtcdInitialCluster    = "ETCD_INITIAL_CLUSTER"
	EnvEtcdQuorumRead        = "ETCD_QUORUM_READ"
	EnvMultizone             = "MULTIZONE"
	EnvZone                  = "ZONE"
	EnvRegion                = "REGION"
	EnvNumNodes              = "NUM_NODES"
	EnvHostname              = "HOSTNAME"
	EnvKubeVersion           = "KUBE_VERSION"
	EnvEtcdVersion           = "ETCD_VERSION"
	EnvCACert                = "CA_CERT"
	EnvBootstrapToken        = "KUBELET_BOOTSTRAP_TOKEN"
	EnvServiceClusterIPRange = "SERVICE_CLUSTER_IP_RANGE"
	EnvClusterIPRange        = "CLUSTER_IP_RANGE"
	EnvEtcdTestArgs          = "ETCD_TEST_ARGS"
	EnvAPIServerTestArgs     = "APISERVER_TEST_ARGS"
	EnvControllerManagerTest = "CONTROLLER_MANAGER_TEST_ARGS"
	EnvSchedulerTestArgs     = "SCHEDULER_TEST_ARGS"
	EnvKubeletTestArgs       = "KUBELET_TEST_ARGS"
	EnvEtcdDataDevice        = "MASTER_PD_DEVICE"
	defaultAPIServerPort     = 443
	defaultHealthCheckPort   = 3990
	defaultServiceIPRange    = "10.0.0.0/16"
	defaultClusterIPRange    = "10.64.0.0/14"
	defaultInitialEtcdState  = "new"
)

// Ports of the components.
const (
	EtcdClientPort        = 2379
	EtcdPeerPort          = 2380
	KubeletPort           = 10250
	ControllerManagerPort = 10257
	SchedulerPort         = 10259
	SSHPort               = 22
)

// Names in the cluster that certificates and bindings refer to.
const (
	ClusterDomain      = "cluster.local"
	ServiceAccountIss  = "https://kubernetes.default.svc." + ClusterDomain
	FrontProxyClientCN = "front-proxy-client"
	ControllerUser     = "system:kube-controller-manager"
	SchedulerUser      = "system:kube-scheduler"
	NodeGroup          = "system:nodes"
	NodeUserPrefix     = "system:node:"
	// ClusterAdminsGroup is kubeadm's (v1.29+) group for admin
	// kubeconfigs, bound to cluster-admin by RBAC and so revocable, unlike
	// system:masters.
	ClusterAdminsGroup = "kubeadm:cluster-admins"
	SuperUserGroup     = "system:masters"
	// BootstrapGroup is the group bootstrap tokens authenticate as.
	BootstrapGroup = "system:bootstrappers"
	// ControlPlaneRole labels and taints the masters' Nodes.
	ControlPlaneRole = "node-role.kubernetes.io/control-plane"
	// EtcdDeviceName is the device name of a master's data disk
	// (/dev/disk/by-id/google-master-pd on a real VM), as in kube-up.
	EtcdDeviceName = "master-pd"
)

// IsMaster reports whether the kube-env is a master's.
func (e *KubeEnv) IsMaster() bool { return e.Get(EnvKubernetesMaster) == "true" }

// APIServerPort is APISERVER_PORT, 443 when unset.
func (e *KubeEnv) APIServerPort() (int, error) { return e.port(EnvAPIServerPort, defaultAPIServerPort) }

// HealthCheckPort is HEALTHCHECK_PORT, 3990 when unset.
func (e *KubeEnv) HealthCheckPort() (int, error) {
	return e.port(EnvHealthCheckPort, defaultHealthCheckPort)
}

func (e *KubeEnv) port(key string, def int) (int, error) {
	v := e.Get(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return 0, &InvalidError{Key: key, Value: v, Why: "want a port from 1 to 65535"}
	}
	return n, nil
}

// InitialEtcdState is INITIAL_ETCD_CLUSTER_STATE: new (the first master)
// or existing (a replica joining).
func (e *KubeEnv) InitialEtcdState() string {
	return e.or(EnvInitialEtcdState, defaultInitialEtcdState)
}

// ServiceClusterIPRange is the services' range (kube-up's default).
func (e *KubeEnv) ServiceClusterIPRange() string {
	return e.or(EnvServiceClusterIPRange, defaultServiceIPRange)
}

// ClusterIPRange is the pods' range, from which nodes get their pod CIDRs.
func (e *KubeEnv) ClusterIPRange() string { return e.or(EnvClusterIPRange, defaultClusterIPRange) }

// TestArgs are the extra flags of a component (kube-up's *_TEST_ARGS),
// split on white space.
func (e *KubeEnv) TestArgs(key string) []string { return strings.Fields(e.Get(key)) }

func (e *KubeEnv) or(key, def string) string {
	if v := e.Get(key); v != "" {
		return v
	}
	return def
}

// InvalidError is a kube-env value a VM cannot use.
type InvalidError struct {
	Key, Value, Why string
}

func (e *InvalidError) Error() string {
	return "kube-env " + e.Key + "=" + strconv.Quote(e.Value) + ": " + e.Why
}

// Bootstrap is a GuestAttrBootstrap value read back.
type Bootstrap struct {
	State  string // "ok", "running", "failed", or "" for a value this contract does not know
	Step   string // the step running or failed
	Reason string // why it failed
}

// ParseBootstrap reads a GuestAttrBootstrap value.
func ParseBootstrap(v string) Bootstrap {
	switch {
	case v == BootstrapOK:
		return Bootstrap{State: "ok"}
	case strings.HasPrefix(v, BootstrapRunning):
		return Bootstrap{State: "running", Step: strings.TrimPrefix(v, BootstrapRunning)}
	case strings.HasPrefix(v, BootstrapFailed):
		step, reason, _ := strings.Cut(strings.TrimPrefix(v, BootstrapFailed), ": ")
		return Bootstrap{State: "failed", Step: step, Reason: reason}
	}
	return Bootstrap{}
}
