package kubelet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate/csr"

	"github.com/hakube/hakube/internal/vmcontract"
)

// identity is a kubelet's client credential, kept across the VM's boots
// as a real kubelet keeps /var/lib/kubelet/pki/kubelet-client-current.pem.
type identity struct {
	key     *ecdsa.PrivateKey
	mu      sync.Mutex
	certPEM []byte // nil until the CSR is signed
	cert    *x509.Certificate
}

func (id *identity) current() ([]byte, *x509.Certificate) {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.certPEM, id.cert
}

func (id *identity) signed(certPEM []byte, c *x509.Certificate) {
	id.mu.Lock()
	id.certPEM, id.cert = certPEM, c
	id.mu.Unlock()
}

// valid reports whether the certificate can still be used against the
// cluster whose CA is caPEM: signed by it and not expired. A kubelet whose
// credential is not valid bootstraps again (with the same key).
func (id *identity) valid(caPEM []byte, now time.Time) bool {
	_, c := id.current()
	if c == nil {
		return false
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return false
	}
	_, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err == nil
}

func (id *identity) tlsCertificate() (*tls.Certificate, error) {
	der, err := x509.MarshalECPrivateKey(id.key)
	if err != nil {
		return nil, err
	}
	certPEM, _ := id.current()
	if certPEM == nil {
		return nil, errors.New("no client certificate yet")
	}
	c, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	return &c, err
}

// newTransport is one kubelet's HTTP/2 transport to the API: the cluster CA
// only, its client certificate when it has one, connections from the VM
// (dial), no proxy from this machine's environment.
func newTransport(caPEM []byte, clientCert *tls.Certificate, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*http.Transport, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New(vmcontract.EnvCACert + " is not a PEM certificate")
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if clientCert != nil {
		tc.Certificates = []tls.Certificate{*clientCert}
	}
	t := utilnet.SetTransportDefaults(&http.Transport{DialContext: dial, TLSClientConfig: tc, ForceAttemptHTTP2: true,
		TLSHandshakeTimeout: 10 * time.Second, MaxIdleConnsPerHost: 2})
	t.Proxy = nil
	return t, nil
}

// userAgent is what kubelet 1.35.4 sends.
const userAgent = "kubelet/" + vmcontract.KubeVersion + " (linux/amd64) kubernetes/0000000"

// csrTimeout bounds the wait for one CSR's approval; then a new one is
// made, as a kubelet restarted by systemd would.
const csrTimeout = 2 * time.Minute

// bootstrap asks for the kubelet's client certificate with the bootstrap
// token: a CSR for system:node:<name> in system:nodes, signer
// kubernetes.io/kube-apiserver-client-kubelet, which the controller-manager
// approves (the RBAC hakube makes) and signs. It retries until it has one
// or ctx ends: the API may not serve yet, hakube may not have made the
// token's Secret or bindings yet.
func (k *kubelet) bootstrap(ctx context.Context, id *identity) error {
	tr, err := newTransport(k.set.caPEM, nil, k.dial)
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: k.set.server, BearerToken: k.set.token, Transport: tr,
		UserAgent: userAgent, Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	csrPEM, err := cert.MakeCSR(id.key, &pkix.Name{CommonName: vmcontract.NodeUserPrefix + k.vm.Name, Organization: []string{vmcontract.NodeGroup}}, nil, nil)
	if err != nil {
		return err
	}
	usages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	return retry(ctx, func() error {
		name, uid, err := csr.RequestCertificateWithContext(ctx, cs, csrPEM, "", certificatesv1.KubeAPIServerClientKubeletSignerName, nil, usages, id.key)
		if err != nil {
			k.console("Failed to request the client certificate (TLS bootstrap): %v", err)
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, csrTimeout)
		defer cancel()
		certPEM, err := csr.WaitForCertificate(wctx, cs, name, uid)
		if err != nil {
			k.console("Certificate signing request %s was not signed: %v", name, err)
			return err
		}
		c, err := parseCert(certPEM)
		if err != nil {
			return err
		}
		id.signed(certPEM, c)
		k.console("Certificate signing request %s is approved and signed: %s until %s", name, c.Subject.CommonName, c.NotAfter.Format(time.RFC3339))
		return nil
	})
}

func newIdentity() (*identity, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &identity{key: key}, nil
}

func parseCert(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("the signed certificate is not PEM")
	}
	return x509.ParseCertificate(block.Bytes)
}

// retry runs f until it succeeds or ctx ends, backing off from 500 ms to
// 8 s with jitter.
func retry(ctx context.Context, f func() error) error {
	wait := 500 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := sleep(ctx, jitter(wait, 0.2)); err != nil {
			return err
		}
		wait = min(2*wait, 8*time.Second)
	}
}
