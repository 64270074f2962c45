package kubelet_test

// A real control plane for the kubelet's tests: etcd, kube-apiserver and
// kube-controller-manager from bin/kube-rehearsal, with the flags
// vmcontract.Master renders and the PKI internal/pki issues, on a loopback
// IP of a range this test process holds; killed (process group, SIGKILL) when
// the test ends, failed or not.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/emulator/emulatortest"
	"github.com/hakube/hakube/internal/kube"
	"github.com/hakube/hakube/internal/pki"
	"github.com/hakube/hakube/internal/vmcontract"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const apiPort = 6443

// controlPlane is one running master.
type controlPlane struct {
	ip      netip.Addr
	caPEM   []byte
	token   string
	cluster *pki.Cluster
	comps   []vmcontract.Component
	admin   kubernetes.Interface // system:masters, once bootstrap ran
	logs    map[string]*syncBuffer
	pids    map[string]int
}

// rehearsalBinary is bin/kube-rehearsal, which `make rehearsal` builds.
func rehearsalBinary(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs("../../../bin/kube-rehearsal")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing: run `make rehearsal` (the real etcd and Kubernetes control plane these tests run)", p)
	}
	return p
}

// nextIPs hands out the claimed internal range's addresses: the master's
// first, then the VMs'.
type ipSource struct {
	mu   sync.Mutex
	next netip.Addr
}

func (s *ipSource) take() netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		a := s.next
		s.next = s.next.Next()
		if b := a.As4(); b[3] != 0 && b[3] != 255 {
			return a
		}
	}
}

func claimIPs(t testing.TB) *ipSource {
	_, internal := emulatortest.ClaimRanges(t)
	return &ipSource{next: internal.Addr().Next().Next()}
}

// newControlPlane makes a master's PKI, kube-env and files, with extra
// controller-manager flags (CONTROLLER_MANAGER_TEST_ARGS); start runs it.
func newControlPlane(t testing.TB, ips *ipSource, cmArgs string) *controlPlane {
	t.Helper()
	rehearsalBinary(t)
	ip := ips.take()
	now := time.Now()
	cluster, err := pki.NewCluster("kubelet-test", now)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := cluster.MasterCerts(pki.Master{Name: "master", InternalIP: ip, StaticIP: ip,
		ServiceRange: netip.MustParsePrefix("10.0.0.0/16")}, now)
	if err != nil {
		t.Fatal(err)
	}
	token, err := pki.BootstrapToken()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := vmcontract.NewKubeEnv()
	env.Set(vmcontract.EnvKubernetesMaster, "true")
	env.Set(vmcontract.EnvClusterName, "kubelet-test")
	env.Set(vmcontract.EnvAPIServerPort, strconv.Itoa(apiPort))
	env.Set(vmcontract.EnvEtcdInitialCluster, "master="+vmcontract.EtcdPeerURL(ip.String()))
	env.Set(vmcontract.EnvInitialEtcdState, "new")
	env.Set(vmcontract.EnvClusterIPRange, "10.64.0.0/11")
	env.Set(vmcontract.EnvControllerManagerTest, cmArgs)
	m := vmcontract.Master{Env: env, Host: vmcontract.Host{Name: "master", InternalIP: ip.String(), Loopback: ip.String(),
		Listen: ip.String(), PKIDir: filepath.Join(dir, "pki"), ConfDir: dir, DataDir: filepath.Join(dir, "etcd"), LoopbackNetwork: true}}
	for _, it := range vmcontract.MasterItems() {
		writeFile(t, it.Path(m.Host.PKIDir), certs.Get(it))
	}
	confs, err := m.Kubeconfigs()
	if err != nil {
		t.Fatal(err)
	}
	for p, b := range confs {
		writeFile(t, p, b)
	}
	comps, err := m.Components()
	if err != nil {
		t.Fatal(err)
	}
	return &controlPlane{ip: ip, caPEM: cluster.CA.CertPEM, token: token, cluster: cluster, comps: comps, logs: map[string]*syncBuffer{}, pids: map[string]int{}}
}

// start runs etcd, kube-apiserver and kube-controller-manager (pods are
// bound by the tests: no scheduler) and waits until the API is ready.
func (cp *controlPlane) start(t testing.TB) {
	t.Helper()
	bin := rehearsalBinary(t)
	for _, c := range cp.comps {
		if c.Name == "kube-scheduler" {
			continue
		}
		cp.logs[c.Name], cp.pids[c.Name] = startProcess(t, bin, c)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for name, b := range cp.logs {
				t.Logf("%s log (tail):\n%s", name, b.tail(3000))
			}
		}
	})
	cp.waitReady(t)
}

func writeFile(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// startProcess runs one component in its own process group, killed with
// the whole group when the test ends.
func startProcess(t testing.TB, bin string, c vmcontract.Component) (*syncBuffer, int) {
	t.Helper()
	log := &syncBuffer{}
	cmd := exec.Command(bin, append([]string{c.Name}, c.Args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", c.Name, err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	return log, cmd.Process.Pid
}

func (cp *controlPlane) url() string { return fmt.Sprintf("https://%s:%d", cp.ip, apiPort) }

func (cp *controlPlane) waitReady(t testing.TB) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cp.caPEM)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := hc.Get(cp.url() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kube-apiserver at %s not ready after 90 s: %v", cp.url(), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// bootstrap does what hakube does once the API serves, with its own code:
// the bootstrap token's Secret and the kubelets' RBAC.
func (cp *controlPlane) bootstrap(t testing.TB) {
	t.Helper()
	cert, err := cp.cluster.RunClient(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kube.New(cp.url(), cp.caPEM, cert)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kc.Bootstrap(ctx, cp.token); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := cp.cluster.CA.Issue(adminLeaf(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cp.admin = kubernetes.NewForConfigOrDie(&rest.Config{Host: cp.url(), QPS: 100, Burst: 200,
		TLSClientConfig: rest.TLSClientConfig{CAData: cp.caPEM, CertData: certPEM, KeyData: keyPEM}})
}

// adminLeaf is the tests' own admin credential.
func adminLeaf() pki.Leaf {
	return pki.Leaf{CommonName: "test-admin", Organization: []string{vmcontract.SuperUserGroup}, Client: true}
}

// kubeEnv is the kube-env hakube gives a VM of this cluster.
func (cp *controlPlane) kubeEnv(master bool, kubeletArgs string) string {
	e := vmcontract.NewKubeEnv()
	e.Set(vmcontract.EnvKubernetesMaster, strconv.FormatBool(master))
	e.Set(vmcontract.EnvClusterName, "kubelet-test")
	e.Set(vmcontract.EnvMasterAddress, cp.ip.String())
	e.Set(vmcontract.EnvAPIServerPort, strconv.Itoa(apiPort))
	e.Set(vmcontract.EnvCACert, base64.StdEncoding.EncodeToString(cp.caPEM))
	e.Set(vmcontract.EnvBootstrapToken, cp.token)
	if kubeletArgs != "" {
		e.Set(vmcontract.EnvKubeletTestArgs, kubeletArgs)
	}
	return e.String()
}

// syncBuffer is a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.b.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
