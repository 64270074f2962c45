package vmcontract

import (
	"net"
	"strconv"

	"github.com/hakube/hakube/internal/zones"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"
)

// Where every real VM's kubelet and kube-proxy keep their files.
const (
	KubeletConfigFile   = "/var/lib/kubelet/config.yaml"
	KubeletKubeconfig   = RealConfDir + "/kubelet.conf"
	BootstrapKubeconfig = RealConfDir + "/bootstrap-kubelet.conf"
	// BootstrapTokenFile holds KUBELET_BOOTSTRAP_TOKEN, which the VM writes
	// from its kube-env: the bootstrap kubeconfig names the file.
	BootstrapTokenFile   = RealConfDir + "/bootstrap-token"
	KubeletCertDir       = "/var/lib/kubelet/pki"
	KubeletClientCurrent = KubeletCertDir + "/kubelet-client-current.pem"
	KubeProxyKubeconfig  = RealConfDir + "/kube-proxy.conf"
	ContainerdSocket     = "unix:///run/containerd/containerd.sock"
)

// What a kubelet is told about its own VM. The nodes of every zone share
// one script and one kube-env (the template is global), so the script reads
// the VM's zone, machine type, project and name from the metadata server at
// boot and writes them to KubeletEnvFile, which the kubelet's unit reads.
// With no cloud provider nothing else sets them: kubectl, topology spread and
// hakube's removal of a pool's Nodes read the zone label.
const (
	KubeletEnvFile       = RealConfDir + "/kubelet.env"
	KubeletNodeLabelsVar = "KUBELET_NODE_LABELS"
	KubeletProviderIDVar = "KUBELET_PROVIDER_ID"
)

// KubeletNodeLabels is the kubelet's --node-labels on a VM of that zone and
// machine type: the labels GCE's cloud provider used to set, all of them
// ones NodeRestriction lets a kubelet set on its own Node. Sorted by key,
// as the startup-script writes them.
func KubeletNodeLabels(zone, machineType string) string {
	return corev1.LabelInstanceTypeStable + "=" + machineType +
		"," + corev1.LabelTopologyRegion + "=" + zones.Region(zone) +
		"," + corev1.LabelTopologyZone + "=" + zone
}

// ProviderID is a GCE VM's spec.providerID, as GCE's cloud provider writes it.
func ProviderID(project, zone, name string) string {
	return "gce://" + project + "/" + zone + "/" + name
}

// Kubelet is the kubelet's command line on every real VM, master or node.
// It depends on neither the VM's name nor its IP, so one node template
// serves a whole pool: the Node is named after the hostname, which on GCE is
// the instance's name. Everything kubelet 1.35 wants in its config file
// (certificate rotation, taints, the runtime's socket) is in KubeletConfig,
// since those flags are deprecated. The VM's own labels and provider ID
// are references to KubeletEnvFile's variables, which systemd expands
// (KubeletConfiguration's providerID would need a file per VM). The
// deprecated --provider-id flag still sets it in 1.35. KUBELET_TEST_ARGS
// come last.
func Kubelet(env *KubeEnv) []string {
	args := []string{
		"--config=" + KubeletConfigFile,
		"--kubeconfig=" + KubeletKubeconfig,
		"--bootstrap-kubeconfig=" + BootstrapKubeconfig,
		"--cert-dir=" + KubeletCertDir,
		"--node-labels=${" + KubeletNodeLabelsVar + "}",
		"--provider-id=${" + KubeletProviderIDVar + "}",
	}
	return append(args, env.TestArgs(EnvKubeletTestArgs)...)
}

// KubeletConfiguration is the part of kubelet.config.k8s.io/v1beta1 that
// hakube sets, with the API's field names (the full type would bring
// k8s.io/kubelet and k8s.io/component-base into the CLI's module).
type KubeletConfiguration struct {
	APIVersion               string                `json:"apiVersion"`
	Kind                     string                `json:"kind"`
	Authentication           KubeletAuthentication `json:"authentication"`
	Authorization            KubeletAuthorization  `json:"authorization"`
	CgroupDriver             string                `json:"cgroupDriver"`
	ContainerRuntimeEndpoint string                `json:"containerRuntimeEndpoint"`
	RotateCertificates       bool                  `json:"rotateCertificates"`
	ClusterDomain            string                `json:"clusterDomain"`
	// ClusterDNS stays empty: hakube deploys no cluster DNS yet, so pods
	// resolve with the VM's resolv.conf.
	ClusterDNS         []string       `json:"clusterDNS,omitempty"`
	RegisterWithTaints []corev1.Taint `json:"registerWithTaints,omitempty"`
}

// KubeletAuthentication is the kubelet API's authentication.
type KubeletAuthentication struct {
	X509      KubeletX509    `json:"x509"`
	Webhook   KubeletEnabled `json:"webhook"`
	Anonymous KubeletEnabled `json:"anonymous"`
}

// KubeletX509 names the CA of the client certificates the kubelet accepts.
type KubeletX509 struct {
	ClientCAFile string `json:"clientCAFile"`
}

// KubeletEnabled is an on/off switch of the kubelet's configuration.
type KubeletEnabled struct {
	Enabled bool `json:"enabled"`
}

// KubeletAuthorization is the kubelet API's authorization.
type KubeletAuthorization struct {
	Mode string `json:"mode"`
}

// KubeletConfig is the kubelet's configuration on a real VM: the systemd
// cgroup driver (as containerd is configured), containerd's socket, client
// certificates checked against the cluster CA, webhook authentication and
// authorization of its API, anonymous access off, client-certificate
// rotation, and on a master (KUBERNETES_MASTER=true) the control-plane
// taint: hakube labels and cordons the master's Node itself.
func KubeletConfig(env *KubeEnv) KubeletConfiguration {
	c := KubeletConfiguration{
		APIVersion: "kubelet.config.k8s.io/v1beta1",
		Kind:       "KubeletConfiguration",
		Authentication: KubeletAuthentication{
			X509:    KubeletX509{ClientCAFile: CA.Path(RealPKIDir)},
			Webhook: KubeletEnabled{Enabled: true},
		},
		Authorization:            KubeletAuthorization{Mode: "Webhook"},
		CgroupDriver:             "systemd",
		ContainerRuntimeEndpoint: ContainerdSocket,
		RotateCertificates:       true,
		ClusterDomain:            ClusterDomain,
	}
	if env.IsMaster() {
		c.RegisterWithTaints = []corev1.Taint{{Key: ControlPlaneRole, Effect: corev1.TaintEffectNoSchedule}}
	}
	return c
}

// Marshal renders the configuration file.
func (c KubeletConfiguration) Marshal() ([]byte, error) { return yaml.Marshal(c) }

// APIServerAddress is where clients and the nodes' kubelets and
// kube-proxies reach the API: https://KUBERNETES_MASTER_NAME:APISERVER_PORT,
// the static IP.
func (e *KubeEnv) APIServerAddress() (string, error) {
	host := e.Get(EnvMasterAddress)
	if host == "" {
		return "", &InvalidError{Key: EnvMasterAddress, Why: "missing: the address kubelets reach the API at"}
	}
	port, err := e.APIServerPort()
	if err != nil {
		return "", err
	}
	return "https://" + net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// KubeletBootstrapKubeconfig renders the kubeconfig a kubelet bootstraps
// with: the API's address, the cluster CA as a file, and the bootstrap
// token as a file (tokenFile), so that the rendered text holds no secret
// and the VM writes the token from kube-env beside it.
func KubeletBootstrapKubeconfig(env *KubeEnv, tokenFile string) ([]byte, error) {
	return nodeKubeconfig(env, "kubelet-bootstrap", &clientcmdapi.AuthInfo{TokenFile: tokenFile})
}

// KubeProxyKubeconfigFile renders kube-proxy's kubeconfig: the API's
// address and the kubelet's rotated client certificate
// (system:node:<name>, group system:nodes, which hakube binds to the
// system:node-proxier ClusterRole), so kube-proxy needs no credential of
// its own.
func KubeProxyKubeconfigFile(env *KubeEnv) ([]byte, error) {
	return nodeKubeconfig(env, "kube-proxy", &clientcmdapi.AuthInfo{ClientCertificate: KubeletClientCurrent, ClientKey: KubeletClientCurrent})
}

// KubeletAPIServer is where a VM's kubelet and kube-proxy reach the API.
// On a node, the static IP. On a master, its own apiserver on loopback
// (the VM's 127.0.0.1, or the rehearsal's stand-in for it), as kubeadm's
// control-plane kubelets do since 1.33 (ControlPlaneKubeletLocalMode): the
// master's Node then does not hang on the load balancer, stays Ready while
// the static IP moves, and turns NotReady when its own control plane
// cannot serve.
func (e *KubeEnv) KubeletAPIServer(loopback string) (string, error) {
	if !e.IsMaster() {
		return e.APIServerAddress()
	}
	port, err := e.APIServerPort()
	if err != nil {
		return "", err
	}
	return url(loopback, port), nil
}

func nodeKubeconfig(env *KubeEnv, user string, auth *clientcmdapi.AuthInfo) ([]byte, error) {
	server, err := env.KubeletAPIServer(RealLoopback)
	if err != nil {
		return nil, err
	}
	c := clientcmdapi.NewConfig()
	c.Clusters["cluster"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: CA.Path(RealPKIDir)}
	c.AuthInfos[user] = auth
	c.Contexts["default"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: user}
	c.CurrentContext = "default"
	return clientcmd.Write(*c)
}

// KubeProxy is kube-proxy's command line on every real VM: iptables mode,
// the cluster's pod range (CLUSTER_IP_RANGE) to tell pod traffic from the
// rest, and its kubeconfig.
func KubeProxy(env *KubeEnv) []string {
	return []string{
		"--kubeconfig=" + KubeProxyKubeconfig,
		"--proxy-mode=iptables",
		"--cluster-cidr=" + env.ClusterIPRange(),
	}
}
