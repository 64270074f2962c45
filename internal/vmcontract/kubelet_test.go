package vmcontract

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

func testEnv(master bool) *KubeEnv {
	e := NewKubeEnv()
	e.Set(EnvKubernetesMaster, map[bool]string{true: "true", false: "false"}[master])
	e.Set(EnvClusterName, "kubernetes")
	e.Set(EnvMasterAddress, "34.1.2.3")
	e.Set(EnvAPIServerPort, "6443")
	return e
}

// The labels a kubelet sets on its Node are the cloud provider's, and
// ones a kubelet may set (kubelet refuses other kubernetes.io labels).
func TestKubeletNodeLabels(t *testing.T) {
	want := "node.kubernetes.io/instance-type=e2-standard-2,topology.kubernetes.io/region=europe-west1,topology.kubernetes.io/zone=europe-west1-b"
	if got := KubeletNodeLabels("europe-west1-b", "e2-standard-2"); got != want {
		t.Errorf("KubeletNodeLabels = %q, want %q", got, want)
	}
	if got, want := ProviderID("p", "europe-west1-b", "vm"), "gce://p/europe-west1-b/vm"; got != want {
		t.Errorf("ProviderID = %q, want %q", got, want)
	}
}

func TestKubeletFlags(t *testing.T) {
	env := testEnv(false)
	want := []string{
		"--config=/var/lib/kubelet/config.yaml",
		"--kubeconfig=/etc/kubernetes/kubelet.conf",
		"--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
		"--cert-dir=/var/lib/kubelet/pki",
		"--node-labels=${KUBELET_NODE_LABELS}",
		"--provider-id=${KUBELET_PROVIDER_ID}",
	}
	if diff := cmp.Diff(want, Kubelet(env)); diff != "" {
		t.Errorf("kubelet flags (-want +got):\n%s", diff)
	}
	// A master's flags are a node's: the difference is in the config file.
	if diff := cmp.Diff(Kubelet(env), Kubelet(testEnv(true))); diff != "" {
		t.Errorf("a master's kubelet flags differ from a node's:\n%s", diff)
	}
	env.Set(EnvKubeletTestArgs, " --v=4  --node-labels=a=b ")
	if got := Kubelet(env); !slices.Equal(got[len(got)-2:], []string{"--v=4", "--node-labels=a=b"}) {
		t.Errorf("KUBELET_TEST_ARGS are not appended last: %q", got)
	}
	// Nothing of a VM's own: the template is one for a whole pool.
	env.Set(EnvHostname, "kubernetes-minion-group-6s52")
	for _, a := range Kubelet(env) {
		if strings.Contains(a, "kubernetes-minion") || strings.Contains(a, "hostname-override") || strings.Contains(a, "node-ip") {
			t.Errorf("kubelet flag %q depends on the VM", a)
		}
	}
}

func TestKubeletConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		master bool
		taints []corev1.Taint
	}{
		{"node", false, nil},
		{"master", true, []corev1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: "NoSchedule"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := KubeletConfig(testEnv(tc.master)).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			// Read back as the kubelet would: plain YAML with the API's names.
			var got map[string]any
			if err := yaml.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{
				"apiVersion": "kubelet.config.k8s.io/v1beta1",
				"kind":       "KubeletConfiguration",
				"authentication": map[string]any{
					"x509":      map[string]any{"clientCAFile": "/etc/kubernetes/pki/ca.crt"},
					"webhook":   map[string]any{"enabled": true},
					"anonymous": map[string]any{"enabled": false},
				},
				"authorization":            map[string]any{"mode": "Webhook"},
				"cgroupDriver":             "systemd",
				"containerRuntimeEndpoint": "unix:///run/containerd/containerd.sock",
				"rotateCertificates":       true,
				"clusterDomain":            "cluster.local",
			}
			if tc.taints != nil {
				want["registerWithTaints"] = []any{map[string]any{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s\n%s", diff, b)
			}
		})
	}
}

func TestNodeKubeconfigs(t *testing.T) {
	env := testEnv(false)
	b, err := KubeletBootstrapKubeconfig(env, "/etc/kubernetes/bootstrap-token")
	if err != nil {
		t.Fatal(err)
	}
	c, err := clientcmd.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	ctx := c.Contexts[c.CurrentContext]
	cl, auth := c.Clusters[ctx.Cluster], c.AuthInfos[ctx.AuthInfo]
	if cl.Server != "https://34.1.2.3:6443" || cl.CertificateAuthority != "/etc/kubernetes/pki/ca.crt" || len(cl.CertificateAuthorityData) > 0 {
		t.Errorf("bootstrap cluster = %+v", cl)
	}
	if auth.TokenFile != "/etc/kubernetes/bootstrap-token" || auth.Token != "" {
		t.Errorf("bootstrap user = %+v, want the token as a file", auth)
	}

	b, err = KubeProxyKubeconfigFile(env)
	if err != nil {
		t.Fatal(err)
	}
	if c, err = clientcmd.Load(b); err != nil {
		t.Fatal(err)
	}
	auth = c.AuthInfos[c.Contexts[c.CurrentContext].AuthInfo]
	if auth.ClientCertificate != KubeletClientCurrent || auth.ClientKey != KubeletClientCurrent || len(auth.ClientKeyData) > 0 {
		t.Errorf("kube-proxy user = %+v, want the kubelet's rotated certificate", auth)
	}

	// A master's kubelet and kube-proxy reach its own apiserver.
	for name, render := range map[string]func(*KubeEnv) ([]byte, error){
		"bootstrap":  func(e *KubeEnv) ([]byte, error) { return KubeletBootstrapKubeconfig(e, "/t") },
		"kube-proxy": KubeProxyKubeconfigFile,
	} {
		b, err := render(testEnv(true))
		if err != nil {
			t.Fatal(err)
		}
		if c, err = clientcmd.Load(b); err != nil {
			t.Fatal(err)
		}
		if got := c.Clusters[c.Contexts[c.CurrentContext].Cluster].Server; got != "https://127.0.0.1:6443" {
			t.Errorf("a master's %s server = %s, want its loopback", name, got)
		}
	}

	env.Set(EnvAPIServerPort, "443x")
	if _, err := KubeProxyKubeconfigFile(env); err == nil || !strings.Contains(err.Error(), EnvAPIServerPort) {
		t.Errorf("a bad port rendered: %v", err)
	}
	if _, err := KubeletBootstrapKubeconfig(NewKubeEnv(), "/t"); err == nil || !strings.Contains(err.Error(), EnvMasterAddress) {
		t.Errorf("no KUBERNETES_MASTER_NAME rendered: %v", err)
	}
}

func TestKubeProxy(t *testing.T) {
	env := testEnv(false)
	want := []string{"--kubeconfig=/etc/kubernetes/kube-proxy.conf", "--proxy-mode=iptables", "--cluster-cidr=10.64.0.0/14"}
	if diff := cmp.Diff(want, KubeProxy(env)); diff != "" {
		t.Errorf("kube-proxy (-want +got):\n%s", diff)
	}
	env.Set(EnvClusterIPRange, "10.96.0.0/12")
	if got := KubeProxy(env)[2]; got != "--cluster-cidr=10.96.0.0/12" {
		t.Errorf("cluster-cidr = %q", got)
	}
}

// GCE gives each VM its pods' range (an alias IP range), so the
// controller-manager allocates none; kube-proxy still needs the cluster's.
func TestControllerManagerAllocatesNoCIDRs(t *testing.T) {
	m := Master{Env: testEnv(true), Host: RealHost("kubernetes-master", "10.132.0.2")}
	args := m.ControllerManager()
	for _, want := range []string{"--allocate-node-cidrs=false", "--cluster-cidr=10.64.0.0/14"} {
		if !slices.Contains(args, want) {
			t.Errorf("controller-manager lacks %s: %q", want, args)
		}
	}
}

// The components' kubeconfigs name files of the VM: no key or certificate
// travels in them (those come from kube-master-certs).
func TestKubeconfigsHoldOnlyPaths(t *testing.T) {
	m := Master{Env: testEnv(true), Host: RealHost("kubernetes-master", "10.132.0.2")}
	files, err := m.Kubeconfigs()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("want 2 kubeconfigs, got %d", len(files))
	}
	for path, b := range files {
		c, err := clientcmd.Load(b)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, cl := range c.Clusters {
			if len(cl.CertificateAuthorityData) > 0 || !strings.HasPrefix(cl.CertificateAuthority, RealPKIDir+"/") || cl.Server != "https://127.0.0.1:6443" {
				t.Errorf("%s: cluster %+v", path, cl)
			}
		}
		for _, a := range c.AuthInfos {
			if len(a.ClientCertificateData) > 0 || len(a.ClientKeyData) > 0 || a.Token != "" ||
				!strings.HasPrefix(a.ClientCertificate, RealPKIDir+"/") || !strings.HasPrefix(a.ClientKey, RealPKIDir+"/") {
				t.Errorf("%s: user %+v", path, a)
			}
		}
		if strings.Contains(string(b), "BEGIN") {
			t.Errorf("%s holds PEM", path)
		}
	}
}

func TestParseBootstrap(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Bootstrap
	}{
		{"ok", Bootstrap{State: "ok"}},
		{"running install", Bootstrap{State: "running", Step: "install"}},
		{"failed at install: kubelet: checksum mismatch", Bootstrap{State: "failed", Step: "install", Reason: "kubelet: checksum mismatch"}},
		{"failed at network", Bootstrap{State: "failed", Step: "network"}},
		{"", Bootstrap{}},
		{"okay", Bootstrap{}},
	} {
		if diff := cmp.Diff(tc.want, ParseBootstrap(tc.in)); diff != "" {
			t.Errorf("ParseBootstrap(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}
