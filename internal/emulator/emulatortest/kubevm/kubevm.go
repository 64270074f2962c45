// Package kubevm makes, for tests of the emulator's Kubernetes guests,
// what hakube puts on a cluster's VMs (its internal/cluster resources.go):
// the master's reserved internal IP and data disk, its kube-env and
// kube-master-certs from internal/pki and internal/vmcontract, a node
// template's kube-env; and the clients that talk to the result as hakube
// would: client-go with hakube's per-run credential, the bootstrap RBAC and
// token, etcd's client with its own.
package kubevm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/emulator/emulatortest"
	"github.com/hakube/hakube/internal/pki"
	"github.com/hakube/hakube/internal/vmcontract"
)

// KubeBinary is the rehearsal's binary, bin/kube-rehearsal at the module's
// root. A test that needs it fails, never skips, when it is missing.
func KubeBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("HAKUBE_KUBE_BINARY"); p != "" {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory: cannot find bin/kube-rehearsal")
		}
		dir = parent
	}
	bin := filepath.Join(dir, "bin", "kube-rehearsal")
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("%s is missing: run `make rehearsal` (the real etcd and Kubernetes control plane the emulator's masters run)", bin)
	}
	return bin
}

// Start runs an emulator whose masters run the real processes, with opts
// as given (DataPlane and Kubernetes are set; latency defaults to none).
func Start(t testing.TB, opts emulator.Options) *emulatortest.Emulator {
	t.Helper()
	opts.DataPlane, opts.Kubernetes = true, true
	if opts.KubeBinary == "" {
		opts.KubeBinary = KubeBinary(t)
	}
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	if opts.Logger == nil && os.Getenv("HAKUBE_EMULATOR_LOG") != "" {
		opts.Logger, _ = zap.NewDevelopment()
	}
	return emulatortest.Start(t, opts)
}

// Ports the tests use: neither needs root.
const (
	APIServerPort   = 6443
	HealthCheckPort = 3990
)

// FastControllers are the controller-manager's and scheduler's flags that
// make leader failover and node loss take seconds (kube-up's
// CONTROLLER_MANAGER_TEST_ARGS and SCHEDULER_TEST_ARGS).
const (
	fastLeaderElection = "--leader-elect-lease-duration=4s --leader-elect-renew-deadline=3s --leader-elect-retry-period=1s"
	FastControllers    = "--node-monitor-grace-period=8s --node-monitor-period=1s " + fastLeaderElection
	FastScheduler      = fastLeaderElection
	// FastKubelet renews a kubelet's lease every 2 s, inside the 8 s grace.
	FastKubelet = "--node-lease-duration-seconds=8 --node-status-update-frequency=2s"
)

// Cluster is one cluster's shared secrets and settings, as hakube keeps
// them in its masters' metadata.
type Cluster struct {
	Prefix   string // INSTANCE_PREFIX: "kubernetes"
	PKI      *pki.Cluster
	Token    string // KUBELET_BOOTSTRAP_TOKEN
	StaticIP string // KUBERNETES_MASTER_NAME
	Region   string
	// TestArgs are kube-up's *_TEST_ARGS by kube-env key.
	TestArgs map[string]string
}

// NewCluster issues a cluster's CAs and bootstrap token; its API is at
// staticIP.
func NewCluster(t testing.TB, prefix, region, staticIP string) *Cluster {
	t.Helper()
	p, err := pki.NewCluster(prefix, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	token, err := pki.BootstrapToken()
	if err != nil {
		t.Fatal(err)
	}
	return &Cluster{Prefix: prefix, PKI: p, Token: token, StaticIP: staticIP, Region: region,
		TestArgs: map[string]string{
			vmcontract.EnvControllerManagerTest: FastControllers,
			vmcontract.EnvSchedulerTestArgs:     FastScheduler,
		}}
}

// Member is an etcd member as kube-env lists it.
type Member struct{ Name, IP string }

// Master is one master VM to make.
type Master struct {
	Name, Zone string
	InternalIP string // reserved first (ReserveInternal)
	// NatIP is its access config's IP: the static IP for the first master
	// of a single-master cluster, "" for an ephemeral one.
	NatIP string
	// Members are the etcd members it starts with, itself included; State
	// is new (the first master) or existing (a replica added as a learner).
	Members []Member
	State   string
}

// KubeEnv is the master's kube-env, key for key what hakube writes.
func (c *Cluster) KubeEnv(m Master) *vmcontract.KubeEnv {
	e := c.commonEnv(true)
	e.Set(vmcontract.EnvAdvertiseAddress, c.StaticIP)
	e.Set(vmcontract.EnvHealthCheckPort, strconv.Itoa(HealthCheckPort))
	e.Set(vmcontract.EnvEtcdQuorumRead, "true")
	e.Set(vmcontract.EnvNumNodes, "1")
	e.Set(vmcontract.EnvServiceClusterIPRange, "10.0.0.0/16")
	e.Set(vmcontract.EnvClusterIPRange, "10.64.0.0/14")
	for _, k := range []string{vmcontract.EnvEtcdTestArgs, vmcontract.EnvAPIServerTestArgs, vmcontract.EnvControllerManagerTest, vmcontract.EnvSchedulerTestArgs} {
		if v := c.TestArgs[k]; v != "" {
			e.Set(k, v)
		}
	}
	names := make([]string, 0, len(m.Members))
	peers := make([]string, 0, len(m.Members))
	for _, p := range m.Members {
		names = append(names, p.Name)
		peers = append(peers, p.Name+"="+vmcontract.EtcdPeerURL(p.IP))
	}
	e.Set(vmcontract.EnvZone, m.Zone)
	e.Set(vmcontract.EnvHostname, m.Name)
	e.Set(vmcontract.EnvInitialEtcdCluster, vmcontract.JoinList(names...))
	e.Set(vmcontract.EnvEtcdInitialCluster, strings.Join(peers, ","))
	state := m.State
	if state == "" {
		state = "new"
	}
	e.Set(vmcontract.EnvInitialEtcdState, state)
	return e
}

// NodeKubeEnv is the node template's kube-env: the CA's certificate and
// the bootstrap token, never a key.
func (c *Cluster) NodeKubeEnv() *vmcontract.KubeEnv { return c.commonEnv(false) }

func (c *Cluster) commonEnv(master bool) *vmcontract.KubeEnv {
	e := vmcontract.NewKubeEnv()
	e.Set(vmcontract.EnvKubernetesMaster, strconv.FormatBool(master))
	e.Set(vmcontract.EnvInstancePrefix, c.Prefix)
	e.Set(vmcontract.EnvClusterName, c.Prefix)
	e.Set(vmcontract.EnvMasterName, c.Prefix+"-master")
	e.Set(vmcontract.EnvMasterAddress, c.StaticIP)
	e.Set(vmcontract.EnvAPIServerPort, strconv.Itoa(APIServerPort))
	e.Set(vmcontract.EnvKubeVersion, vmcontract.KubeVersion)
	e.Set(vmcontract.EnvEtcdVersion, vmcontract.EtcdVersion)
	e.Set(vmcontract.EnvCACert, base64.StdEncoding.EncodeToString(c.PKI.CA.CertPEM))
	e.Set(vmcontract.EnvBootstrapToken, c.Token)
	e.Set(vmcontract.EnvMultizone, "true")
	e.Set(vmcontract.EnvRegion, c.Region)
	if v := c.TestArgs[vmcontract.EnvKubeletTestArgs]; v != "" {
		e.Set(vmcontract.EnvKubeletTestArgs, v)
	}
	return e
}

// Certs issues the master's kube-master-certs.
func (c *Cluster) Certs(t testing.TB, m Master) vmcontract.Certs {
	t.Helper()
	certs, err := c.PKI.MasterCerts(pki.Master{Name: m.Name, InternalIP: netip.MustParseAddr(m.InternalIP),
		StaticIP: netip.MustParseAddr(c.StaticIP), ServiceRange: netip.MustParsePrefix("10.0.0.0/16")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

// Instance is the master VM as hakube makes it: its data disk attached as
// master-pd, its reserved internal IP, one access config, and the metadata.
func (c *Cluster) Instance(m Master, env *vmcontract.KubeEnv, certs string) *compute.Instance {
	str := googleapi.String
	return &compute.Instance{
		Name:        m.Name,
		MachineType: fmt.Sprintf("zones/%s/machineTypes/e2-standard-2", m.Zone),
		Tags:        &compute.Tags{Items: []string{c.Prefix + "-master"}},
		Disks: []*compute.AttachedDisk{
			{Boot: true, AutoDelete: true, Mode: "READ_WRITE", Type: "PERSISTENT",
				InitializeParams: &compute.AttachedDiskInitializeParams{SourceImage: "projects/debian-cloud/global/images/family/debian-12"}},
			{Source: fmt.Sprintf("zones/%s/disks/%s-pd", m.Zone, m.Name), DeviceName: vmcontract.EtcdDeviceName,
				Mode: "READ_WRITE", Type: "PERSISTENT"},
		},
		NetworkInterfaces: []*compute.NetworkInterface{{
			Network:       "global/networks/default",
			NetworkIP:     m.InternalIP,
			AccessConfigs: []*compute.AccessConfig{{Name: "external-nat", Type: "ONE_TO_ONE_NAT", NatIP: m.NatIP}},
		}},
		Metadata: &compute.Metadata{Items: []*compute.MetadataItems{
			{Key: vmcontract.KeyKubeEnv, Value: str(env.String())},
			{Key: vmcontract.KeyMasterCerts, Value: str(certs)},
			{Key: vmcontract.KeyClusterName, Value: str(c.Prefix)},
			{Key: "enable-guest-attributes", Value: str("TRUE")},
		}},
	}
}

// ReserveInternal reserves an internal IP of the region's default subnet,
// as hakube does before a master exists.
func ReserveInternal(t testing.TB, svc *compute.Service, project, region, name string) string {
	t.Helper()
	return reserve(t, svc, project, region, &compute.Address{Name: name, AddressType: "INTERNAL", Purpose: "GCE_ENDPOINT",
		Subnetwork: fmt.Sprintf("regions/%s/subnetworks/default", region)})
}

// ReserveStatic reserves the cluster's static external IP.
func ReserveStatic(t testing.TB, svc *compute.Service, project, region, name string) string {
	t.Helper()
	return reserve(t, svc, project, region, &compute.Address{Name: name})
}

func reserve(t testing.TB, svc *compute.Service, project, region string, a *compute.Address) string {
	t.Helper()
	op, err := svc.Addresses.Insert(project, region, a).Do()
	wait(t, svc, project, op, err)
	got, err := svc.Addresses.Get(project, region, a.Name).Do()
	if err != nil {
		t.Fatal(err)
	}
	return got.Address
}

// CreateMaster makes the master's data disk and the VM from its kube-env
// and certificates, waiting for both operations.
func (c *Cluster) CreateMaster(t testing.TB, svc *compute.Service, project string, m Master, env *vmcontract.KubeEnv, certs vmcontract.Certs) *compute.Instance {
	t.Helper()
	op, err := svc.Disks.Insert(project, m.Zone, &compute.Disk{Name: m.Name + "-pd", SizeGb: 20,
		Type: fmt.Sprintf("zones/%s/diskTypes/pd-ssd", m.Zone)}).Do()
	wait(t, svc, project, op, err)
	op, err = svc.Instances.Insert(project, m.Zone, c.Instance(m, env, certs.Encode())).Do()
	wait(t, svc, project, op, err)
	in, err := svc.Instances.Get(project, m.Zone, m.Name).Do()
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func wait(t testing.TB, svc *compute.Service, project string, op *compute.Operation, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if op = emulatortest.WaitOp(t, svc, project, op); op.Error != nil {
		t.Fatalf("%s %s: %s", op.OperationType, op.TargetLink, op.Error.Errors[0].Message)
	}
}

// RESTConfig reaches the API at host (IP:port) as hakube does: the
// cluster CA, and hakube's per-run system:masters certificate.
func (c *Cluster) RESTConfig(t testing.TB, host string) *rest.Config {
	t.Helper()
	cert, key, err := c.PKI.CA.Issue(pki.Leaf{CommonName: "hakube", Organization: []string{vmcontract.SuperUserGroup},
		Client: true, Lifetime: pki.RunLifetime}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &rest.Config{Host: "https://" + host, Timeout: 10 * time.Second,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.PKI.CA.CertPEM, CertData: cert, KeyData: key}}
}

// Client is a clientset through host.
func (c *Cluster) Client(t testing.TB, host string) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.RESTConfig(t, host))
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TLS verifies the apiserver with the cluster CA (for /readyz).
func (c *Cluster) TLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.PKI.CA.CertPEM)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// Etcd is an etcd client of endpoints (https://IP:2379) with a client
// certificate of the etcd CA, as hakube's membership changes use.
func (c *Cluster) Etcd(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	cert, err := c.PKI.EtcdClient(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.PKI.EtcdCA.CertPEM)
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		TLS: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// EtcdURL is a master's etcd client URL in the rehearsal: its internal IP
// stands for its 127.0.0.1.
func EtcdURL(internalIP string) string {
	return "https://" + netip.AddrPortFrom(netip.MustParseAddr(internalIP), vmcontract.EtcdClientPort).String()
}

// Eventually polls cond every interval until it holds or ctx ends.
func Eventually(ctx context.Context, interval time.Duration, cond func() bool) bool {
	t := time.NewTicker(interval)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}
