package pki

import (
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"time"

	"github.com/hakube/hakube/internal/vmcontract"
)

// Cluster is a cluster's shared secrets: what every master carries and
// what any later run needs to issue a new replica's certificates.
type Cluster struct {
	CA, EtcdCA, FrontProxyCA *CA
	SAKeyPEM, SAPubPEM       []byte
}

// NewCluster generates a cluster's CAs and service-account key pair.
func NewCluster(name string, now time.Time) (*Cluster, error) {
	c := &Cluster{}
	var err error
	if c.CA, err = NewCA(name+"-ca", now); err != nil {
		return nil, err
	}
	if c.EtcdCA, err = NewCA(name+"-etcd-ca", now); err != nil {
		return nil, err
	}
	if c.FrontProxyCA, err = NewCA(name+"-front-proxy-ca", now); err != nil {
		return nil, err
	}
	sa, err := newKey()
	if err != nil {
		return nil, err
	}
	if c.SAKeyPEM, err = encodeKey(sa); err != nil {
		return nil, err
	}
	if c.SAPubPEM, err = encodePublic(sa.Public()); err != nil {
		return nil, err
	}
	return c, nil
}

// FromCerts reads a cluster's shared secrets from a master's
// kube-master-certs. A master made by a hakube that kept no CA key cannot
// give them: the error says which entries are missing.
func FromCerts(certs vmcontract.Certs) (*Cluster, error) {
	if missing := certs.Missing(vmcontract.SharedItems()); len(missing) > 0 {
		return nil, fmt.Errorf("%s lacks %v: the cluster's CAs are not there to issue certificates from", vmcontract.KeyMasterCerts, missing)
	}
	c := &Cluster{SAKeyPEM: certs.Get(vmcontract.ServiceAccountKey), SAPubPEM: certs.Get(vmcontract.ServiceAccountPub)}
	var err error
	if c.CA, err = ParseCA(certs.Get(vmcontract.CA), certs.Get(vmcontract.CAKey)); err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	if c.EtcdCA, err = ParseCA(certs.Get(vmcontract.EtcdCA), certs.Get(vmcontract.EtcdCAKey)); err != nil {
		return nil, fmt.Errorf("etcd CA: %w", err)
	}
	if c.FrontProxyCA, err = ParseCA(certs.Get(vmcontract.FrontProxyCA), certs.Get(vmcontract.FrontProxyCAKey)); err != nil {
		return nil, fmt.Errorf("front-proxy CA: %w", err)
	}
	return c, nil
}

// Master names a master for its certificates.
type Master struct {
	Name       string
	InternalIP netip.Addr
	// StaticIP is the API's address: every client verifies the serving
	// certificate against it, whether it sits on the master or on the
	// load balancer.
	StaticIP netip.Addr
	// ServiceRange is the services' range; its first address is the
	// kubernetes service's, which pods use.
	ServiceRange netip.Prefix
}

// MasterCerts issues a master's own certificates and returns its whole
// kube-master-certs: the shared secrets and its own.
func (c *Cluster) MasterCerts(m Master, now time.Time) (vmcontract.Certs, error) {
	if !m.InternalIP.IsValid() || !m.StaticIP.IsValid() || !m.ServiceRange.IsValid() {
		return nil, fmt.Errorf("master %s: internal IP, static IP and service range are all needed", m.Name)
	}
	svc := m.ServiceRange.Masked().Addr().Next() // 10.0.0.1
	internal, static, loopback := net.IP(m.InternalIP.AsSlice()), net.IP(m.StaticIP.AsSlice()), net.IPv4(127, 0, 0, 1)
	kubeNames := []string{m.Name, "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + vmcontract.ClusterDomain}
	out := vmcontract.Certs{}
	for _, it := range []struct {
		ca        *CA
		cert, key vmcontract.CertItem
		leaf      Leaf
	}{
		{c.CA, vmcontract.APIServerCert, vmcontract.APIServerKey,
			Leaf{CommonName: "kube-apiserver", DNSNames: kubeNames, IPs: []net.IP{static, internal, net.IP(svc.AsSlice()), loopback}, Server: true}},
		{c.EtcdCA, vmcontract.EtcdPeerCert, vmcontract.EtcdPeerKey,
			Leaf{CommonName: m.Name, DNSNames: []string{m.Name}, IPs: []net.IP{internal}, Server: true, Client: true}},
		{c.EtcdCA, vmcontract.EtcdServerCert, vmcontract.EtcdServerKey,
			Leaf{CommonName: m.Name, DNSNames: []string{m.Name, "localhost"}, IPs: []net.IP{loopback, internal}, Server: true, Client: true}},
		{c.EtcdCA, vmcontract.APIServerEtcdCert, vmcontract.APIServerEtcdKey,
			Leaf{CommonName: "kube-apiserver-etcd-client", Client: true}},
		{c.CA, vmcontract.APIServerKubeletCert, vmcontract.APIServerKubeletKey,
			Leaf{CommonName: "kube-apiserver-kubelet-client", Organization: []string{vmcontract.ClusterAdminsGroup}, Client: true}},
		{c.FrontProxyCA, vmcontract.FrontProxyClientCert, vmcontract.FrontProxyClientKey,
			Leaf{CommonName: vmcontract.FrontProxyClientCN, Client: true}},
		{c.CA, vmcontract.ControllerManagerCert, vmcontract.ControllerManagerKey,
			Leaf{CommonName: vmcontract.ControllerUser, Client: true}},
		{c.CA, vmcontract.SchedulerCert, vmcontract.SchedulerKey,
			Leaf{CommonName: vmcontract.SchedulerUser, Client: true}},
	} {
		cert, key, err := it.ca.Issue(it.leaf, now)
		if err != nil {
			return nil, fmt.Errorf("master %s: %w", m.Name, err)
		}
		out.Set(it.cert, cert)
		out.Set(it.key, key)
	}
	c.addShared(out)
	return out, nil
}

func (c *Cluster) addShared(out vmcontract.Certs) {
	out.Set(vmcontract.CA, c.CA.CertPEM)
	out.Set(vmcontract.CAKey, c.CA.KeyPEM)
	out.Set(vmcontract.EtcdCA, c.EtcdCA.CertPEM)
	out.Set(vmcontract.EtcdCAKey, c.EtcdCA.KeyPEM)
	out.Set(vmcontract.FrontProxyCA, c.FrontProxyCA.CertPEM)
	out.Set(vmcontract.FrontProxyCAKey, c.FrontProxyCA.KeyPEM)
	out.Set(vmcontract.ServiceAccountKey, c.SAKeyPEM)
	out.Set(vmcontract.ServiceAccountPub, c.SAPubPEM)
}

// Admin issues the admin's client certificate, for the kubeconfig users
// get: in kubeadm's cluster-admins group, which RBAC binds to
// cluster-admin, so it can be revoked (system:masters cannot).
func (c *Cluster) Admin(user string, now time.Time) (certPEM, keyPEM []byte, err error) {
	return c.CA.Issue(Leaf{CommonName: user, Organization: []string{vmcontract.ClusterAdminsGroup}, Client: true, Lifetime: AdminLifetime}, now)
}

// RunClient is hakube's own API credential for one run: system:masters
// (it creates the RBAC that binds the admins' group), valid for an hour,
// never written anywhere.
func (c *Cluster) RunClient(now time.Time) (tls.Certificate, error) {
	cert, key, err := c.CA.Issue(Leaf{CommonName: "hakube", Organization: []string{vmcontract.SuperUserGroup}, Client: true, Lifetime: RunLifetime}, now)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(cert, key)
}

// EtcdClient is hakube's etcd credential for one run's membership changes.
func (c *Cluster) EtcdClient(now time.Time) (tls.Certificate, error) {
	cert, key, err := c.EtcdCA.Issue(Leaf{CommonName: "hakube-etcd-client", Client: true, Lifetime: RunLifetime}, now)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(cert, key)
}

// BootstrapToken makes a kubelet bootstrap token, "<id>.<secret>" as
// Kubernetes defines it ([a-z0-9]{6}.[a-z0-9]{16}).
func BootstrapToken() (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 23)
	for i := range b {
		if i == 6 {
			b[i] = '.'
			continue
		}
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", err
		}
		b[i] = alphabet[n.Int64()]
	}
	return string(b), nil
}
