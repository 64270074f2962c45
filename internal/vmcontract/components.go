package vmcontract

import (
	"fmt"
	"net"
	"path"
	"strconv"
)

// Host is where a master's components run, and what differs between a
// real VM and the rehearsal's, whose VMs share one machine: there every VM
// has its own loopback-range internal IP, which stands for its 127.0.0.1
// and is what its listeners bind.
type Host struct {
	Name       string // the instance: etcd member and Node name
	InternalIP string
	// Loopback stands for the VM's own 127.0.0.1 (etcd's client port, the
	// controller-manager's and scheduler's ports, their apiserver URL).
	Loopback string
	// Listen is where the apiserver and the health agent listen: 0.0.0.0 on
	// a real VM (the external and forwarding-rule IPs reach it through GCE's
	// NAT and the guest agent's routes), the internal IP in the rehearsal.
	Listen  string
	PKIDir  string // /etc/kubernetes/pki
	ConfDir string // kubeconfigs: /etc/kubernetes
	DataDir string // etcd's data, on the master's data disk
	// LoopbackNetwork is true when the internal IPs are loopback addresses
	// (the rehearsal): the apiserver may not publish them as the endpoints
	// of the kubernetes service, so it reconciles none.
	LoopbackNetwork bool
}

// RealLoopback is a real VM's own address.
const RealLoopback = "127.0.0.1"

// RealHost is a real VM's layout.
func RealHost(name, internalIP string) Host {
	return Host{Name: name, InternalIP: internalIP, Loopback: RealLoopback, Listen: "0.0.0.0",
		PKIDir: RealPKIDir, ConfDir: RealConfDir, DataDir: RealDataDisk + "/etcd"}
}

// Master is one master VM: its kube-env and its host.
type Master struct {
	Env  *KubeEnv
	Host Host
}

func (m Master) pki(item CertItem) string { return item.Path(m.Host.PKIDir) }

func url(host string, port int) string {
	return "https://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// EtcdPeerURL is a master's etcd peer URL.
func EtcdPeerURL(internalIP string) string { return url(internalIP, EtcdPeerPort) }

// EtcdClientURL is where a master's etcd serves its clients: its loopback.
func (m Master) EtcdClientURL() string { return url(m.Host.Loopback, EtcdClientPort) }

// APIServerURL is how the master's own components reach its apiserver.
func (m Master) APIServerURL() (string, error) {
	port, err := m.Env.APIServerPort()
	if err != nil {
		return "", err
	}
	return url(m.Host.Loopback, port), nil
}

// Etcd is etcd's command line (without the program name).
func (m Master) Etcd() ([]string, error) {
	cluster := m.Env.Get(EnvEtcdInitialCluster)
	if cluster == "" {
		return nil, &InvalidError{Key: EnvEtcdInitialCluster, Why: "missing: a master needs the etcd members to start with (name=https://IP:2380,...)"}
	}
	peer := EtcdPeerURL(m.Host.InternalIP)
	args := []string{
		"--name=" + m.Host.Name,
		"--data-dir=" + m.Host.DataDir,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--listen-client-urls=" + m.EtcdClientURL(),
		"--advertise-client-urls=" + m.EtcdClientURL(),
		"--initial-cluster=" + cluster,
		"--initial-cluster-state=" + m.Env.InitialEtcdState(),
		"--initial-cluster-token=" + m.Env.Get(EnvClusterName),
		"--cert-file=" + m.pki(EtcdServerCert),
		"--key-file=" + m.pki(EtcdServerKey),
		"--trusted-ca-file=" + m.pki(EtcdCA),
		"--client-cert-auth=true",
		"--peer-cert-file=" + m.pki(EtcdPeerCert),
		"--peer-key-file=" + m.pki(EtcdPeerKey),
		"--peer-trusted-ca-file=" + m.pki(EtcdCA),
		"--peer-client-cert-auth=true",
	}
	if m.Host.LoopbackNetwork {
		// etcd checks a peer's client certificate against the address the
		// connection comes from; on one machine every loopback connection
		// comes from 127.0.0.1, never from the internal IP the certificate
		// names.
		args = append(args, "--peer-skip-client-san-verification=true")
	}
	return append(args, m.Env.TestArgs(EnvEtcdTestArgs)...), nil
}

// APIServer is kube-apiserver's command line.
func (m Master) APIServer() ([]string, error) {
	port, err := m.Env.APIServerPort()
	if err != nil {
		return nil, err
	}
	reconciler := "lease"
	if m.Host.LoopbackNetwork {
		reconciler = "none"
	}
	args := []string{
		"--advertise-address=" + m.Host.InternalIP,
		"--bind-address=" + m.Host.Listen,
		"--secure-port=" + strconv.Itoa(port),
		"--allow-privileged=true",
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--enable-bootstrap-token-auth=true",
		"--client-ca-file=" + m.pki(CA),
		"--tls-cert-file=" + m.pki(APIServerCert),
		"--tls-private-key-file=" + m.pki(APIServerKey),
		"--etcd-servers=" + m.EtcdClientURL(),
		"--etcd-cafile=" + m.pki(EtcdCA),
		"--etcd-certfile=" + m.pki(APIServerEtcdCert),
		"--etcd-keyfile=" + m.pki(APIServerEtcdKey),
		"--kubelet-client-certificate=" + m.pki(APIServerKubeletCert),
		"--kubelet-client-key=" + m.pki(APIServerKubeletKey),
		"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
		"--proxy-client-cert-file=" + m.pki(FrontProxyClientCert),
		"--proxy-client-key-file=" + m.pki(FrontProxyClientKey),
		"--requestheader-client-ca-file=" + m.pki(FrontProxyCA),
		"--requestheader-allowed-names=" + FrontProxyClientCN,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--service-account-issuer=" + ServiceAccountIss,
		"--service-account-key-file=" + m.pki(ServiceAccountPub),
		"--service-account-signing-key-file=" + m.pki(ServiceAccountKey),
		"--service-cluster-ip-range=" + m.Env.ServiceClusterIPRange(),
		"--endpoint-reconciler-type=" + reconciler,
	}
	return append(args, m.Env.TestArgs(EnvAPIServerTestArgs)...), nil
}

// ControllerManager is kube-controller-manager's command line. It signs the
// kubelets' client certificates (TLS bootstrapping) with the cluster CA. It
// allocates no pod CIDRs: on GCE each VM's alias IP range is its pods' range
// (GCE assigns it, the VM's CNI config uses it), so --allocate-node-cidrs is
// false; --cluster-cidr stays, the cluster's pod range as kube-proxy has it.
func (m Master) ControllerManager() []string {
	conf := m.ControllerManagerKubeconfig()
	args := []string{
		"--kubeconfig=" + conf,
		"--authentication-kubeconfig=" + conf,
		"--authorization-kubeconfig=" + conf,
		"--bind-address=" + m.Host.Loopback,
		"--secure-port=" + strconv.Itoa(ControllerManagerPort),
		"--leader-elect=true",
		"--use-service-account-credentials=true",
		"--controllers=*,bootstrapsigner,tokencleaner",
		"--client-ca-file=" + m.pki(CA),
		"--requestheader-client-ca-file=" + m.pki(FrontProxyCA),
		"--root-ca-file=" + m.pki(CA),
		"--service-account-private-key-file=" + m.pki(ServiceAccountKey),
		"--cluster-signing-cert-file=" + m.pki(CA),
		"--cluster-signing-key-file=" + m.pki(CAKey),
		"--cluster-name=" + m.Env.Get(EnvClusterName),
		"--allocate-node-cidrs=false",
		"--cluster-cidr=" + m.Env.ClusterIPRange(),
		"--service-cluster-ip-range=" + m.Env.ServiceClusterIPRange(),
	}
	return append(args, m.Env.TestArgs(EnvControllerManagerTest)...)
}

// Scheduler is kube-scheduler's command line.
func (m Master) Scheduler() []string {
	conf := m.SchedulerKubeconfig()
	args := []string{
		"--kubeconfig=" + conf,
		"--authentication-kubeconfig=" + conf,
		"--authorization-kubeconfig=" + conf,
		"--bind-address=" + m.Host.Loopback,
		"--secure-port=" + strconv.Itoa(SchedulerPort),
		"--leader-elect=true",
	}
	return append(args, m.Env.TestArgs(EnvSchedulerTestArgs)...)
}

// ControllerManagerKubeconfig and SchedulerKubeconfig are where their
// kubeconfigs go (ComponentKubeconfig renders them).
func (m Master) ControllerManagerKubeconfig() string {
	return path.Join(m.Host.ConfDir, "controller-manager.conf")
}
func (m Master) SchedulerKubeconfig() string { return path.Join(m.Host.ConfDir, "scheduler.conf") }

// Components names the processes of a master in start order, with their
// command lines: what the rehearsal runs and what real VMs' units run.
func (m Master) Components() ([]Component, error) {
	etcd, err := m.Etcd()
	if err != nil {
		return nil, err
	}
	api, err := m.APIServer()
	if err != nil {
		return nil, err
	}
	return []Component{
		{Name: "etcd", Args: etcd},
		{Name: "kube-apiserver", Args: api},
		{Name: "kube-controller-manager", Args: m.ControllerManager()},
		{Name: "kube-scheduler", Args: m.Scheduler()},
	}, nil
}

// Component is one process of a master.
type Component struct {
	Name string
	Args []string
}

func (c Component) String() string { return fmt.Sprintf("%s %v", c.Name, c.Args) }
