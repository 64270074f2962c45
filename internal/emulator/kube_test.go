package emulator_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"
	certv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/emulator/emulatortest"
	"github.com/hakube/hakube/internal/emulator/emulatortest/kubevm"
	"github.com/hakube/hakube/internal/emulator/guest"
	"github.com/hakube/hakube/internal/vmcontract"
)

// The Kubernetes guests: real etcd and control-plane processes on the
// masters. Each real control plane costs seconds of CPU on this machine,
// so these tests are few, share their clusters across subtests, and wait
// on observed state with bounds that hold on a loaded 2-core machine.

const (
	kubeProject = "kube-project"
	kubeRegion  = "europe-west1"
	kubeZone    = "europe-west1-b"
	kubeZone2   = "europe-west1-c"
	kubeZone3   = "europe-west1-d"
	// bootBound bounds a master's boot to a ready apiserver: ~10 s idle,
	// several times that with three control planes starting on 2 cores.
	bootBound = 3 * time.Minute
)

// kubeEnv is an emulator with Kubernetes guests, seen as hakube sees it.
type kubeEnv struct {
	*emulatortest.Emulator
	svc      *compute.Service
	stateDir string
}

func startKube(t *testing.T, extras guest.Extras) *kubeEnv {
	t.Helper()
	dir := t.TempDir()
	e := &kubeEnv{Emulator: kubevm.Start(t, emulator.Options{Projects: []string{kubeProject}, StateDir: dir, Extras: extras}), stateDir: dir}
	e.svc = e.Compute(t)
	t.Cleanup(func() {
		if t.Failed() {
			e.dumpConsoles(t)
		}
	})
	return e
}

// dumpConsoles logs the end of every VM's console: what a failed test
// needs to see.
func (e *kubeEnv) dumpConsoles(t *testing.T) {
	if dp, err := e.Control.DataPlane(context.Background()); err == nil {
		b, _ := json.MarshalIndent(struct {
			I []emulator.DataPlaneInstance
			P []emulator.DataPlaneTargetPool
		}{dp.Instances, dp.TargetPools}, "", " ")
		t.Logf("data plane: %s", b)
	}
	l, err := e.svc.Instances.AggregatedList(kubeProject).Do()
	if err != nil {
		return
	}
	for _, scoped := range l.Items {
		for _, in := range scoped.Instances {
			out, err := e.Control.Console(context.Background(), kubeProject, path.Base(in.Zone), in.Name, -12000)
			if err == nil {
				t.Logf("console of %s (last 12 kB):\n%s", in.Name, out.Contents)
			}
		}
	}
}

// readyz is the apiserver's /readyz at addr (IP:port), verified with the
// cluster CA: its status code and body.
func readyz(c *kubevm.Cluster, addr string) (int, string, error) {
	tr := &http.Transport{TLSClientConfig: c.TLS(), DisableKeepAlives: true, Proxy: nil}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + addr + "/readyz")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// healthz is the health agent's answer at addr.
func healthz(addr string) (int, string, error) {
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 2 * time.Second}).Get("http://" + addr + "/healthz")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func hostPort(ip string, port int) string { return net.JoinHostPort(ip, fmt.Sprint(port)) }

// waitFor polls cond every 200 ms for at most within, failing with what.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if !kubevm.Eventually(ctx, 200*time.Millisecond, cond) {
		t.Fatalf("not within %s: %s", within, what)
	}
	return time.Since(start)
}

// waitReady waits for /readyz 200 at addr and returns how long it took.
func waitReady(t *testing.T, c *kubevm.Cluster, addr string) time.Duration {
	t.Helper()
	return waitFor(t, bootBound, "/readyz 200 at "+addr, func() bool {
		code, _, err := readyz(c, addr)
		return err == nil && code == 200
	})
}

func (e *kubeEnv) vm(t *testing.T, link string) emulator.DataPlaneInstance {
	t.Helper()
	dp, err := e.Control.DataPlane(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range dp.Instances {
		if in.Instance == link {
			return in
		}
	}
	t.Fatalf("control API does not list %s", link)
	return emulator.DataPlaneInstance{}
}

// pids are the running components' processes of a VM.
func (e *kubeEnv) pids(t *testing.T, link string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, c := range e.vm(t, link).Components {
		if c.State == "running" {
			out[c.Name] = c.PID
		}
	}
	return out
}

func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func (e *kubeEnv) console(t *testing.T, zone, name string) string {
	t.Helper()
	out, err := e.svc.Instances.GetSerialPortOutput(kubeProject, zone, name).Do()
	if err != nil {
		t.Fatal(err)
	}
	return out.Contents
}

// op runs call and waits for its operation.
func (e *kubeEnv) op(t *testing.T, call opCall) {
	t.Helper()
	op, err := call.Do()
	if err != nil {
		t.Fatal(err)
	}
	if op = emulatortest.WaitOp(t, e.svc, kubeProject, op); op.Error != nil {
		t.Fatalf("%s: %s", op.OperationType, op.Error.Errors[0].Message)
	}
}

var allComponents = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// TestKubeMaster runs one master from hakube-shaped metadata and takes it
// through its life: it serves /readyz through its static IP (the NAT) and
// its health agent answers; the real controller-manager signs a kubelet's
// bootstrap CSR; etcd's data survives a stop and a start; a reset, a zone
// outage and a delete end its processes as they should; a master whose key
// does not match its certificate fails with the apiserver's own words.
func TestKubeMaster(t *testing.T) {
	e := startKube(t, nil)
	static := kubevm.ReserveStatic(t, e.svc, kubeProject, kubeRegion, "kubernetes-master-ip")
	ip := kubevm.ReserveInternal(t, e.svc, kubeProject, kubeRegion, "kubernetes-master-internal-ip")
	c := kubevm.NewCluster(t, "kubernetes", kubeRegion, static)
	m := kubevm.Master{Name: "kubernetes-master", Zone: kubeZone, InternalIP: ip, NatIP: static,
		Members: []kubevm.Member{{Name: "kubernetes-master", IP: ip}}}
	in := c.CreateMaster(t, e.svc, kubeProject, m, c.KubeEnv(m), c.Certs(t, m))
	api := hostPort(static, kubevm.APIServerPort)
	took := waitReady(t, c, api)
	t.Logf("RUNNING → /readyz 200 through the static IP: %s", took.Round(100*time.Millisecond))

	t.Run("boot", func(t *testing.T) { e.checkBoot(t, c, in, static) })
	t.Run("tls-bootstrap", func(t *testing.T) { checkBootstrapCSR(t, c, api) })
	t.Run("stop-start-keeps-etcd-data", func(t *testing.T) { e.checkStopStart(t, c, in, api) })
	t.Run("reset-reboots", func(t *testing.T) {
		before := e.pids(t, in.SelfLink)
		e.op(t, e.svc.Instances.Reset(kubeProject, kubeZone, m.Name))
		waitFor(t, 10*time.Second, "the old processes killed", func() bool { return noneAlive(before) })
		waitReady(t, c, api)
		after := e.pids(t, in.SelfLink)
		for _, name := range allComponents {
			if after[name] == 0 || after[name] == before[name] {
				t.Errorf("%s: pid %d before the reset, %d after", name, before[name], after[name])
			}
		}
	})
	t.Run("zone-down-kills-up-boots", func(t *testing.T) {
		before := e.pids(t, in.SelfLink)
		if err := e.Control.SetZone(context.Background(), kubeZone, "DOWN"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "every process killed with the zone", func() bool { return noneAlive(before) })
		if err := e.Control.SetZone(context.Background(), kubeZone, "UP"); err != nil {
			t.Fatal(err)
		}
		waitReady(t, c, api)
	})
	t.Run("bad-metadata", func(t *testing.T) { e.checkBadMetadata(t, c) })
	t.Run("delete", func(t *testing.T) { e.checkDelete(t, in) })
}

// checkBoot: the health agent, the NAT, the control API's view, the PKI's
// files and the console of a master that booted.
func (e *kubeEnv) checkBoot(t *testing.T, c *kubevm.Cluster, in *compute.Instance, static string) {
	// The health agent asks /readyz every half second: it follows within
	// one poll.
	for _, ip := range []string{internalOf(in), static} {
		waitFor(t, 5*time.Second, "the health agent answering 200 ok on "+ip, func() bool {
			code, body, err := healthz(hostPort(ip, kubevm.HealthCheckPort))
			return err == nil && code == 200 && body == "ok"
		})
	}
	// The apiserver listens on the internal IP only: the static IP reaches
	// it through the data plane's NAT, and nothing else of the VM is bound
	// on it.
	if code, _, err := readyz(c, hostPort(internalOf(in), kubevm.APIServerPort)); err != nil || code != 200 {
		t.Errorf("/readyz on the internal IP: %d %v", code, err)
	}
	if !refused(static, 2379) {
		t.Errorf("etcd's client port answers on the external IP")
	}
	st := e.vm(t, in.SelfLink)
	if !st.Kubernetes || st.State != "running" || st.Boots != 1 || len(st.Components) != len(allComponents) {
		t.Errorf("control API: %+v", st)
	}
	for i, comp := range st.Components {
		if comp.Name != allComponents[i] || comp.State != "running" || comp.PID == 0 || comp.Restarts != 0 {
			t.Errorf("component %d: %+v", i, comp)
		}
	}
	pkiDir := filepath.Join(e.stateDir, "vms", fmt.Sprint(in.Id), "pki")
	for _, f := range []string{"ca.crt", "ca.key", "apiserver.key", "etcd/peer.key", "sa.key", "scheduler.crt"} {
		fi, err := os.Stat(filepath.Join(pkiDir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, fi.Mode(), err)
		}
	}
	// Its processes run and /readyz answered: it reports itself
	// bootstrapped, as a real master's startup script does.
	waitFor(t, 5*time.Second, "hakube/bootstrap ok", func() bool {
		return bootstrapOf(t, e.svc, kubeProject, kubeZone, in.Name) == vmcontract.BootstrapOK
	})
	console := e.console(t, kubeZone, in.Name)
	for _, want := range []string{"hakube-guest: boot 1 of kubernetes-master", "hakube-guest: started etcd (pid ",
		"\netcd: {", "\nkube-apiserver: I", "\nkube-controller-manager: I", "\nkube-scheduler: I"} {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q", want)
		}
	}
}

func noneAlive(pids map[string]int) bool {
	for _, pid := range pids {
		if alive(pid) {
			return false
		}
	}
	return true
}

// checkBootstrapCSR does a kubelet's TLS bootstrapping against the real
// control plane: with hakube's RBAC and token Secret in place, a CSR made
// with the bootstrap token is approved and signed by the controller-manager.
func checkBootstrapCSR(t *testing.T, c *kubevm.Cluster, api string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Bootstrap(ctx, c.Client(t, api)); err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: "https://" + api, BearerToken: c.Token, Timeout: 10 * time.Second,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.PKI.CA.CertPEM}})
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "system:node:csr-test", Organization: []string{"system:nodes"}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr := &certv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "node-csr-"},
		Spec: certv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: certv1.KubeAPIServerClientKubeletSignerName,
			Usages:     []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageClientAuth},
		},
	}
	var created *certv1.CertificateSigningRequest
	waitFor(t, time.Minute, "the bootstrap token may create a CSR", func() bool {
		created, err = cs.CertificatesV1().CertificateSigningRequests().Create(ctx, csr, metav1.CreateOptions{})
		return err == nil
	})
	var issued []byte
	waitFor(t, time.Minute, "the controller-manager approves and signs the CSR", func() bool {
		got, err := cs.CertificatesV1().CertificateSigningRequests().Get(ctx, created.Name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		issued = got.Status.Certificate
		return len(issued) > 0
	})
	block, _ := pem.Decode(issued)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "system:node:csr-test" || cert.CheckSignatureFrom(c.PKI.CA.Cert) != nil {
		t.Errorf("issued %q by %q, want system:node:csr-test by the cluster CA", cert.Subject.CommonName, cert.Issuer.CommonName)
	}
}

// checkStopStart: a stop kills every process at once; the start is a new
// boot whose etcd finds its data on the data disk.
func (e *kubeEnv) checkStopStart(t *testing.T, c *kubevm.Cluster, in *compute.Instance, api string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	etcd := c.Etcd(t, kubevm.EtcdURL(internalOf(in)))
	if _, err := etcd.Put(ctx, "/hakube-test/written-before-stop", "kept"); err != nil {
		t.Fatal(err)
	}
	before := e.pids(t, in.SelfLink)
	e.op(t, e.svc.Instances.Stop(kubeProject, kubeZone, in.Name))
	// SIGKILL: a SIGTERM would keep the apiserver for its graceful 2 s.
	took := waitFor(t, 5*time.Second, "every process killed by the stop", func() bool { return noneAlive(before) })
	if took > 1500*time.Millisecond || !strings.Contains(e.console(t, kubeZone, in.Name), "hakube-guest: shutting down (SIGKILL)") {
		t.Errorf("the stop took %s to end the processes, or the console does not say SIGKILL", took)
	}
	if code, _, err := healthz(hostPort(internalOf(in), kubevm.HealthCheckPort)); err == nil {
		t.Errorf("health agent of a stopped VM answers %d", code)
	}
	e.op(t, e.svc.Instances.Start(kubeProject, kubeZone, in.Name))
	waitReady(t, c, api)
	etcd = c.Etcd(t, kubevm.EtcdURL(internalOf(in)))
	got, err := etcd.Get(ctx, "/hakube-test/written-before-stop")
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "kept" {
		t.Errorf("etcd after stop and start: %v %v", got, err)
	}
	if st := e.vm(t, in.SelfLink); st.Boots != 2 {
		t.Errorf("boots %d after a stop and a start, want 2", st.Boots)
	}
}

// checkBadMetadata: a master whose MASTER_KEY is another certificate's
// key boots, and its apiserver refuses the pair in its own words, on the
// console and in the control API, restarting as systemd would; one whose
// kube-env lacks ETCD_INITIAL_CLUSTER starts nothing and says why.
func (e *kubeEnv) checkBadMetadata(t *testing.T, c *kubevm.Cluster) {
	ip := kubevm.ReserveInternal(t, e.svc, kubeProject, kubeRegion, "bad-master-internal-ip")
	bm := kubevm.Master{Name: "bad-master", Zone: kubeZone2, InternalIP: ip, Members: []kubevm.Member{{Name: "bad-master", IP: ip}}}
	certs := c.Certs(t, bm)
	other := c.Certs(t, bm)
	certs.Set(vmcontract.APIServerKey, other.Get(vmcontract.APIServerKey))
	in := c.CreateMaster(t, e.svc, kubeProject, bm, c.KubeEnv(bm), certs)
	var line string
	waitFor(t, bootBound, "the apiserver's refusal on the console", func() bool {
		for _, l := range strings.Split(e.console(t, kubeZone2, bm.Name), "\n") {
			if strings.HasPrefix(l, "kube-apiserver: ") && strings.Contains(l, "private key does not match public key") {
				line = l
				return true
			}
		}
		return false
	})
	t.Logf("console: %s", line)
	waitFor(t, time.Minute, "the control API reports the apiserver failing", func() bool {
		st := e.vm(t, in.SelfLink)
		return st.State == "failing" && strings.Contains(st.Error, "kube-apiserver exited")
	})
	t.Logf("control API: %s", e.vm(t, in.SelfLink).Error)
	waitFor(t, 5*time.Second, "hakube/bootstrap failed at kube-apiserver", func() bool {
		b := bootstrapOf(t, e.svc, kubeProject, kubeZone2, bm.Name)
		return strings.HasPrefix(b, "failed at kube-apiserver: kube-apiserver exited (")
	})
	e.op(t, e.svc.Instances.Delete(kubeProject, kubeZone2, bm.Name))

	// A kube-env the contract cannot start a master from: the guest says
	// why and starts nothing.
	ip = kubevm.ReserveInternal(t, e.svc, kubeProject, kubeRegion, "no-etcd-master-internal-ip")
	nm := kubevm.Master{Name: "no-etcd-master", Zone: kubeZone2, InternalIP: ip, Members: []kubevm.Member{{Name: "no-etcd-master", IP: ip}}}
	env := c.KubeEnv(nm)
	env.Set(vmcontract.EnvEtcdInitialCluster, "")
	in = c.CreateMaster(t, e.svc, kubeProject, nm, env, c.Certs(t, nm))
	waitFor(t, 30*time.Second, "the guest's failure in the control API", func() bool {
		st := e.vm(t, in.SelfLink)
		return st.State == "failed" && strings.Contains(st.Error, "ETCD_INITIAL_CLUSTER") && len(st.Components) == 0
	})
	if console := e.console(t, kubeZone2, nm.Name); !strings.Contains(console, "hakube-guest: cannot start Kubernetes: kube-env ETCD_INITIAL_CLUSTER") {
		t.Errorf("console:\n%s", console)
	}
	if b := bootstrapOf(t, e.svc, kubeProject, kubeZone2, nm.Name); !strings.HasPrefix(b, "failed at metadata: cannot start Kubernetes: kube-env ETCD_INITIAL_CLUSTER") {
		t.Errorf("hakube/bootstrap %q", b)
	}
	e.op(t, e.svc.Instances.Delete(kubeProject, kubeZone2, nm.Name))
}

// checkDelete: a delete stops the processes (SIGTERM, SIGKILL after 2 s)
// and removes the VM's files; the etcd data stays with the data disk
// until the disk is deleted.
func (e *kubeEnv) checkDelete(t *testing.T, in *compute.Instance) {
	pids := e.pids(t, in.SelfLink)
	disk, err := e.svc.Disks.Get(kubeProject, kubeZone, in.Name+"-pd").Do()
	if err != nil {
		t.Fatal(err)
	}
	diskDir := filepath.Join(e.stateDir, "disks", fmt.Sprint(disk.Id))
	vmDir := filepath.Join(e.stateDir, "vms", fmt.Sprint(in.Id))
	e.op(t, e.svc.Instances.Delete(kubeProject, kubeZone, in.Name))
	took := waitFor(t, 5*time.Second, "every process gone after the delete", func() bool { return noneAlive(pids) })
	t.Logf("processes gone %s after the delete", took.Round(10*time.Millisecond))
	out, err := e.Control.Console(context.Background(), kubeProject, kubeZone, in.Name, 0)
	if err == nil {
		t.Errorf("the console of a deleted instance: %+v", out)
	}
	waitFor(t, 5*time.Second, "the VM's directory removed", func() bool { _, err := os.Stat(vmDir); return os.IsNotExist(err) })
	if _, err := os.Stat(filepath.Join(diskDir, "etcd", "member")); err != nil {
		t.Errorf("etcd's data on the detached disk: %v", err)
	}
	e.op(t, e.svc.Disks.Delete(kubeProject, kubeZone, disk.Name))
	waitFor(t, 5*time.Second, "the deleted disk's directory removed", func() bool { _, err := os.Stat(diskDir); return os.IsNotExist(err) })
}
