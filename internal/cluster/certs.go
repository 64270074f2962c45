package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"github.com/hakube/hakube/internal/vmcontract"
	"math/big"
	"net"
	"time"
)

// Certs is the cluster's API serving material: a CA and the master serving
// certificate, whose SANs include the static IP so that clients verify the
// same certificate whether the IP sits on a master or on the load balancer.
// It travels in the masters' kube-master-certs metadata, as with kube-up.
type Certs struct {
	CACert     []byte // PEM
	MasterCert []byte // PEM
	MasterKey  []byte // PEM; never printed or logged
}

// newCerts issues a CA and a serving certificate for the static IP and the
// usual in-cluster names.
func newCerts(cluster, masterName, staticIP string, now time.Time) (*Certs, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cluster + "-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(staticIP)
	if ip == nil {
		return nil, fmt.Errorf("static IP %q is not an IP address", staticIP)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{ip, net.ParseIP("10.0.0.1")},
		DNSNames: []string{masterName, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Certs{
		CACert:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		MasterCert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		MasterKey:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// metadata renders the kube-master-certs value (base64 PEM, as kube-up).
func (c *Certs) metadata() string {
	e := vmcontract.NewKubeEnv()
	e.Set("CA_CERT", base64.StdEncoding.EncodeToString(c.CACert))
	e.Set("MASTER_CERT", base64.StdEncoding.EncodeToString(c.MasterCert))
	e.Set("MASTER_KEY", base64.StdEncoding.EncodeToString(c.MasterKey))
	return e.String()
}

// caFromMetadata extracts the CA certificate from a kube-master-certs value.
func caFromMetadata(value string) ([]byte, error) {
	e, err := vmcontract.ParseKubeEnv(value)
	if err != nil {
		return nil, err
	}
	b, err := base64.StdEncoding.DecodeString(e.Get("CA_CERT"))
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("kube-master-certs has no CA_CERT")
	}
	return b, nil
}
