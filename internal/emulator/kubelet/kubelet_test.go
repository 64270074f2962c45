package kubelet_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/emulator/kubelet"
	"github.com/hakube/hakube/internal/vmcontract"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	testProject = "kubelet-project"
	testZone    = "europe-west1-b"
	testRegion  = "europe-west1"
)

// console collects a VM's serial console.
type console struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.Write(p)
}

func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}

// testVM is a VM with its alias range: 10.64.<id mod 4096>.0/24 (a /24
// of the /14 pods' range, as GCE would give it).
func testVM(name string, id uint64, ip netip.Addr, kubeEnv string) (kubelet.VM, *console) {
	c := &console{}
	n := id % 1024
	pods := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(64 + n/256), byte(n % 256), 0}), 24)
	return kubelet.VM{Project: testProject, Zone: testZone, Region: testRegion, Name: name, ID: id,
		InternalIP: ip, KubeEnv: kubeEnv, MachineType: kubelet.MachineType{Name: "e2-standard-2", CPUs: 2, MemoryMB: 8192},
		BootDiskGB: 100, PodCIDR: pods, Console: c}, c
}

// waitFor polls cond every 100 ms until it holds, for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v (%s)", what, d, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func nodeReady(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return "absent"
}

func waitNodeReady(t *testing.T, cs kubernetes.Interface, name string, want corev1.ConditionStatus, d time.Duration) *corev1.Node {
	t.Helper()
	var n *corev1.Node
	waitFor(t, d, "node "+name+" Ready="+string(want), func() (bool, string) {
		var err error
		n, err = cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return nodeReady(n) == want, "Ready=" + string(nodeReady(n))
	})
	return n
}

// TestKubelet runs kubelets against a real control plane: TLS bootstrap
// (begun before the API and its RBAC exist), Nodes Ready as
// system:node:<vm> under the real NodeRestriction, a master's taint and its
// kubelet on its own apiserver (the static IP answering nothing), lease
// renewals, pods bound → Running and finalized, Stop → NotReady within the
// controller-manager's grace, Start → Ready with the same certificate.
func TestKubelet(t *testing.T) {
	ips := claimIPs(t)
	cp := newControlPlane(t, ips, "--node-monitor-grace-period=8s --node-monitor-period=1s")
	x := kubelet.NewExtra(kubelet.Config{})
	// Leases renewed every 2 s: under an 8 s grace the default 10 s would
	// let the controller-manager see a live node as NotReady.
	args := "--node-lease-duration-seconds=8 --node-status-update-frequency=2s --v=2"
	nodeA, consoleA := testVM("node-a", 101, ips.take(), cp.kubeEnv(false, args))
	nodeB, _ := testVM("node-b", 102, ips.take(), cp.kubeEnv(false, args))
	// A master's kubelet reaches the apiserver on its own VM, not the static
	// IP: its Node registers and stays Ready while the IP answers nothing,
	// as it does while it moves to the load balancer.
	masterEnv, err := vmcontract.ParseKubeEnv(cp.kubeEnv(true, args))
	if err != nil {
		t.Fatal(err)
	}
	masterEnv.Set(vmcontract.EnvMasterAddress, ips.take().String())
	master, _ := testVM("master-1", 103, cp.ip, masterEnv.String())
	boot := func(vm kubelet.VM) func() {
		stop, err := x.Boot(vm)
		if err != nil {
			t.Fatalf("boot %s: %v", vm.Name, err)
		}
		t.Cleanup(stop)
		return stop
	}
	// node-a boots before its API exists and before hakube made the token
	// and the RBAC: it retries until it can bootstrap.
	stopA := boot(nodeA)
	cp.start(t)
	waitFor(t, 30*time.Second, "node-a retrying its bootstrap against the API", func() (bool, string) {
		s := consoleA.String()
		return strings.Contains(s, "Failed to request the client certificate"), s
	})
	cp.bootstrap(t)
	boot(nodeB)
	boot(master)
	// A VM without an alias range has no pod network: registered, never Ready.
	noRange, _ := testVM("node-c", 104, ips.take(), cp.kubeEnv(false, args))
	noRange.PodCIDR = netip.Prefix{}
	boot(noRange)
	ctx := context.Background()
	for _, name := range []string{"node-a", "node-b", "master-1"} {
		waitNodeReady(t, cp.admin, name, corev1.ConditionTrue, 60*time.Second)
	}
	waitNodeReady(t, cp.admin, "node-c", corev1.ConditionFalse, 30*time.Second)
	// The node-lifecycle controller lifts its not-ready taint a moment
	// after a Node turns Ready.
	for _, name := range []string{"node-a", "node-b", "master-1"} {
		waitFor(t, 10*time.Second, name+" without the not-ready taint", func() (bool, string) {
			n, err := cp.admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return !slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == corev1.TaintNodeNotReady }), fmt.Sprint(n.Spec.Taints)
		})
	}
	checkNodes(t, cp, nodeA)
	checkCSRs(t, cp, 4)
	checkNodeRestriction(t, cp, x)
	checkLease(t, cp)
	checkPods(t, cp, nodeB)

	// The VM stops: no more heartbeats; the controller-manager's grace (8 s)
	// marks the Node NotReady (Unknown).
	certBefore, _ := x.ClientCertificate(testProject, testZone, "node-a", 101)
	stopA()
	stoppedAt := time.Now()
	waitNodeReady(t, cp.admin, "node-a", corev1.ConditionUnknown, 30*time.Second)
	t.Logf("node-a NotReady %v after its kubelet stopped", time.Since(stoppedAt).Round(100*time.Millisecond))
	// It starts again with the credential it kept: no new CSR.
	boot(nodeA)
	waitNodeReady(t, cp.admin, "node-a", corev1.ConditionTrue, 30*time.Second)
	certAfter, _ := x.ClientCertificate(testProject, testZone, "node-a", 101)
	if !bytes.Equal(certBefore.Certificate[0], certAfter.Certificate[0]) {
		t.Error("node-a has a new certificate after a stop and start")
	}
	checkCSRs(t, cp, 4)
	if _, err := cp.admin.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
}

// checkNodes: what node-a registered.
func checkNodes(t *testing.T, cp *controlPlane, vm kubelet.VM) {
	t.Helper()
	n, err := cp.admin.CoreV1().Nodes().Get(context.Background(), vm.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"kubernetes.io/hostname": "node-a", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
		"topology.kubernetes.io/zone": testZone, "topology.kubernetes.io/region": testRegion, "node.kubernetes.io/instance-type": "e2-standard-2"} {
		if n.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, n.Labels[k], v)
		}
	}
	if n.Spec.PodCIDR != "" || len(n.Spec.Taints) != 0 || n.Spec.ProviderID != "gce://"+testProject+"/"+testZone+"/node-a" {
		t.Errorf("spec %+v: want no pod CIDR (the VM's alias range is its pods'), no taint, the GCE provider ID", n.Spec)
	}
	wantAddr := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: vm.InternalIP.String()}, {Type: corev1.NodeHostName, Address: "node-a"}}
	if fmt.Sprint(n.Status.Addresses) != fmt.Sprint(wantAddr) {
		t.Errorf("addresses %v, want %v", n.Status.Addresses, wantAddr)
	}
	c := n.Status.Capacity
	if c.Cpu().String() != "2" || c.Memory().String() != "8Gi" || c.Pods().String() != "110" || n.Status.NodeInfo.KubeletVersion != vmcontract.KubeVersion {
		t.Errorf("capacity %v, kubelet %s", c, n.Status.NodeInfo.KubeletVersion)
	}
	for _, ct := range []corev1.NodeConditionType{corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
		found := false
		for _, cond := range n.Status.Conditions {
			found = found || cond.Type == ct && cond.Status == corev1.ConditionFalse
		}
		if !found {
			t.Errorf("condition %s is not False: %v", ct, n.Status.Conditions)
		}
	}
	m, err := cp.admin.CoreV1().Nodes().Get(context.Background(), "master-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Spec.Taints) != 1 || m.Spec.Taints[0].Key != vmcontract.ControlPlaneRole || m.Spec.Taints[0].Effect != corev1.TaintEffectNoSchedule {
		t.Errorf("master taints %v, want %s:NoSchedule", m.Spec.Taints, vmcontract.ControlPlaneRole)
	}
}

// checkCSRs: each kubelet made one CSR with the bootstrap token, which the
// controller-manager approved and signed.
func checkCSRs(t *testing.T, cp *controlPlane, want int) {
	t.Helper()
	l, err := cp.admin.CertificatesV1().CertificateSigningRequests().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tokenID, _, _ := strings.Cut(cp.token, ".")
	n := 0
	for _, c := range l.Items {
		if c.Spec.SignerName != certificatesv1.KubeAPIServerClientKubeletSignerName {
			continue
		}
		n++
		approved := false
		for _, cond := range c.Status.Conditions {
			approved = approved || cond.Type == certificatesv1.CertificateApproved && cond.Reason == "AutoApproved"
		}
		if c.Spec.Username != "system:bootstrap:"+tokenID || !approved || len(c.Status.Certificate) == 0 {
			t.Errorf("CSR %s: user %s conditions %v signed %v", c.Name, c.Spec.Username, c.Status.Conditions, len(c.Status.Certificate) > 0)
		}
	}
	if n != want {
		t.Errorf("%d kubelet CSRs, want %d", n, want)
	}
}

// checkNodeRestriction: node-a is system:node:node-a to the real Node
// authorizer and NodeRestriction: its own Node it may label, another's not.
func checkNodeRestriction(t *testing.T, cp *controlPlane, x *kubelet.Extra) {
	t.Helper()
	c, ok := x.ClientCertificate(testProject, testZone, "node-a", 101)
	if !ok {
		t.Fatal("node-a has no client certificate")
	}
	cs := kubernetes.NewForConfigOrDie(&rest.Config{Host: cp.url(), TLSClientConfig: rest.TLSClientConfig{CAData: cp.caPEM,
		CertData: pemCert(c), KeyData: pemKey(t, c)}})
	ctx := context.Background()
	patch := []byte(`{"metadata":{"labels":{"example.com/touched":"yes"}}}`)
	if _, err := cs.CoreV1().Nodes().Patch(ctx, "node-a", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Errorf("node-a labelling its own Node: %v", err)
	}
	_, err := cs.CoreV1().Nodes().Patch(ctx, "node-b", types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "node-a") {
		t.Errorf("node-a modifying node-b: %v; want NodeRestriction's Forbidden", err)
	}
}

// checkLease: the leases are in kube-node-lease, held by their nodes, owned
// by their Nodes and renewed.
func checkLease(t *testing.T, cp *controlPlane) {
	t.Helper()
	ctx := context.Background()
	l, err := cp.admin.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "node-b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *l.Spec.HolderIdentity != "node-b" || *l.Spec.LeaseDurationSeconds != 8 || len(l.OwnerReferences) != 1 || l.OwnerReferences[0].Kind != "Node" {
		t.Errorf("lease %+v %+v", l.Spec, l.OwnerReferences)
	}
	first := l.Spec.RenewTime.Time
	renewals := 0
	waitFor(t, 15*time.Second, "two renewals of node-b's lease (every 2 s)", func() (bool, string) {
		l, err := cp.admin.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "node-b", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if l.Spec.RenewTime.After(first) {
			renewals++
			first = l.Spec.RenewTime.Time
		}
		return renewals >= 2, fmt.Sprintf("%d renewals", renewals)
	})
}

// checkPods: pods bound to node-b run, with an IP of its pod CIDR (a host
// network pod: the node's); deleted with a grace period, the kubelet
// finalizes them.
func checkPods(t *testing.T, cp *controlPlane, vm kubelet.VM) {
	t.Helper()
	ctx := context.Background()
	pods := cp.admin.CoreV1().Pods("default")
	for _, p := range []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.PodSpec{NodeName: "node-b",
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox:1.37"}},
			Containers:     []corev1.Container{{Name: "nginx", Image: "nginx:1.29"}, {Name: "sidecar", Image: "busybox:1.37"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "host"}, Spec: corev1.PodSpec{NodeName: "node-b", HostNetwork: true,
			Containers: []corev1.Container{{Name: "agent", Image: "registry.k8s.io/pause:3.10"}}}},
	} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cidr := vm.PodCIDR
	var err error
	for name, ipOK := range map[string]func(netip.Addr) bool{
		"web":  func(a netip.Addr) bool { return cidr.Contains(a) },
		"host": func(a netip.Addr) bool { return a == vm.InternalIP },
	} {
		var p *corev1.Pod
		waitFor(t, 30*time.Second, "pod "+name+" Running", func() (bool, string) {
			p, err = pods.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return p.Status.Phase == corev1.PodRunning, string(p.Status.Phase)
		})
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil || !ipOK(ip) || p.Status.HostIP != vm.InternalIP.String() {
			t.Errorf("pod %s: podIP %q hostIP %q (the VM's alias range %s)", name, p.Status.PodIP, p.Status.HostIP, cidr)
		}
		for _, c := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady, corev1.PodInitialized, corev1.PodScheduled} {
			ok := false
			for _, cond := range p.Status.Conditions {
				ok = ok || cond.Type == c && cond.Status == corev1.ConditionTrue
			}
			if !ok {
				t.Errorf("pod %s condition %s not True: %v", name, c, p.Status.Conditions)
			}
		}
		for i, cs := range p.Status.ContainerStatuses {
			if cs.State.Running == nil || !cs.Ready || cs.Image != p.Spec.Containers[i].Image {
				t.Errorf("pod %s container %s: %+v", name, cs.Name, cs)
			}
		}
	}
	grace := int64(30)
	if err := pods.Delete(ctx, "web", metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "pod web finalized by the kubelet", func() (bool, string) {
		_, err := pods.Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

func pemCert(c tls.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})
}

func pemKey(t *testing.T, c tls.Certificate) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
