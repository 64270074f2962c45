package pki

import (
	"crypto/x509"
	"net/netip"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hakube/hakube/internal/vmcontract"
)

var now = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func testMaster() Master {
	return Master{Name: "kubernetes-master-abc", InternalIP: netip.MustParseAddr("10.132.0.7"),
		StaticIP: netip.MustParseAddr("34.1.2.3"), ServiceRange: netip.MustParsePrefix("10.0.0.0/16")}
}

// verify checks that pemCert chains to ca for the usage, and returns it.
func verify(t *testing.T, ca *CA, pemCert []byte, usage x509.ExtKeyUsage, name string) *x509.Certificate {
	t.Helper()
	cert, err := ParseCert(pemCert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: now}); err != nil {
		t.Errorf("%s (%s) does not verify: %v", cert.Subject.CommonName, name, err)
	}
	return cert
}

func TestMasterCerts(t *testing.T) {
	c, err := NewCluster("kubernetes", now)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := c.MasterCerts(testMaster(), now)
	if err != nil {
		t.Fatal(err)
	}
	if missing := certs.Missing(vmcontract.MasterItems()); len(missing) > 0 {
		t.Fatalf("kube-master-certs lacks %v", missing)
	}
	// The serving certificate is good for the static IP, the master's own
	// IP, the kubernetes service's IP, loopback and the in-cluster names.
	for _, name := range []string{"34.1.2.3", "10.132.0.7", "10.0.0.1", "127.0.0.1", "kubernetes.default.svc.cluster.local", "kubernetes-master-abc"} {
		verify(t, c.CA, certs.Get(vmcontract.APIServerCert), x509.ExtKeyUsageServerAuth, name)
	}
	verify(t, c.EtcdCA, certs.Get(vmcontract.EtcdPeerCert), x509.ExtKeyUsageServerAuth, "10.132.0.7")
	verify(t, c.EtcdCA, certs.Get(vmcontract.EtcdPeerCert), x509.ExtKeyUsageClientAuth, "")
	verify(t, c.EtcdCA, certs.Get(vmcontract.EtcdServerCert), x509.ExtKeyUsageServerAuth, "127.0.0.1")
	for _, tc := range []struct {
		ca   *CA
		item vmcontract.CertItem
		cn   string
		org  []string
	}{
		{c.EtcdCA, vmcontract.APIServerEtcdCert, "kube-apiserver-etcd-client", nil},
		{c.CA, vmcontract.APIServerKubeletCert, "kube-apiserver-kubelet-client", []string{"kubeadm:cluster-admins"}},
		{c.FrontProxyCA, vmcontract.FrontProxyClientCert, "front-proxy-client", nil},
		{c.CA, vmcontract.ControllerManagerCert, "system:kube-controller-manager", nil},
		{c.CA, vmcontract.SchedulerCert, "system:kube-scheduler", nil},
	} {
		cert := verify(t, tc.ca, certs.Get(tc.item), x509.ExtKeyUsageClientAuth, "")
		if cert.Subject.CommonName != tc.cn || !slices.Equal(cert.Subject.Organization, tc.org) {
			t.Errorf("%s: subject %v, want CN %s O %v", tc.item.Key, cert.Subject, tc.cn, tc.org)
		}
	}
	// Each key matches its certificate (the apiserver refuses a mismatch).
	for _, pair := range [][2]vmcontract.CertItem{{vmcontract.APIServerCert, vmcontract.APIServerKey}, {vmcontract.EtcdPeerCert, vmcontract.EtcdPeerKey}} {
		cert, _ := ParseCert(certs.Get(pair[0]))
		key, err := ParseKey(certs.Get(pair[1]))
		if err != nil || !publicKeysEqual(cert.PublicKey, key.Public()) {
			t.Errorf("%s does not match %s (%v)", pair[1].Key, pair[0].Key, err)
		}
	}
}

// A later run reads the shared secrets back from a master's metadata and
// issues a new replica's certificates from the same CAs.
func TestClusterRoundTripsThroughMetadata(t *testing.T) {
	c, err := NewCluster("kubernetes", now)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := c.MasterCerts(testMaster(), now)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := vmcontract.ParseCerts(certs.Encode())
	if err != nil {
		t.Fatal(err)
	}
	again, err := FromCerts(parsed)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c.CA.CertPEM, again.CA.CertPEM); diff != "" {
		t.Errorf("CA changed through metadata:\n%s", diff)
	}
	m := testMaster()
	m.Name, m.InternalIP = "kubernetes-master-xyz", netip.MustParseAddr("10.132.0.9")
	replica, err := again.MasterCerts(m, now)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, c.CA, replica.Get(vmcontract.APIServerCert), x509.ExtKeyUsageServerAuth, "10.132.0.9")
	verify(t, c.EtcdCA, replica.Get(vmcontract.EtcdPeerCert), x509.ExtKeyUsageServerAuth, "10.132.0.9")

	delete(parsed, vmcontract.CAKey.Key)
	if _, err := FromCerts(parsed); err == nil {
		t.Error("a kube-master-certs without the CA key was accepted")
	}
	parsed.Set(vmcontract.CAKey, again.EtcdCA.KeyPEM)
	if _, err := FromCerts(parsed); err == nil {
		t.Error("a CA key of another CA was accepted")
	}
}

func TestAdminAndRunCredentials(t *testing.T) {
	c, err := NewCluster("kubernetes", now)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := c.Admin("admin", now)
	if err != nil {
		t.Fatal(err)
	}
	admin := verify(t, c.CA, certPEM, x509.ExtKeyUsageClientAuth, "")
	if !slices.Equal(admin.Subject.Organization, []string{"kubeadm:cluster-admins"}) || admin.NotAfter.Sub(now) > AdminLifetime {
		t.Errorf("admin: %v until %v", admin.Subject, admin.NotAfter)
	}
	run, err := c.RunClient(now)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(run.Leaf.Subject.Organization, []string{"system:masters"}) || run.Leaf.NotAfter.After(now.Add(RunLifetime)) {
		t.Errorf("run credential: %v until %v", run.Leaf.Subject, run.Leaf.NotAfter)
	}
	etcd, err := c.EtcdClient(now)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(c.EtcdCA.Cert)
	if _, err := etcd.Leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: now}); err != nil {
		t.Errorf("etcd client: %v", err)
	}
	if _, err := c.MasterCerts(Master{Name: "m"}, now); err == nil {
		t.Error("a master without IPs got certificates")
	}
}

func TestBootstrapToken(t *testing.T) {
	re := regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)
	seen := map[string]bool{}
	for range 50 {
		tok, err := BootstrapToken()
		if err != nil || !re.MatchString(tok) || seen[tok] {
			t.Fatalf("token %q (%v): want a fresh [a-z0-9]{6}.[a-z0-9]{16}", tok, err)
		}
		seen[tok] = true
	}
}
