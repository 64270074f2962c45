package guest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"maps"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// generatedCert is the serving certificate a master without one in its
// metadata makes for itself. Its SANs only grow: an IP that moves from the
// VM to a load balancer stays valid for the VM, as kube-up's certificate
// names the reserved IP.
type generatedCert struct {
	cur  atomic.Pointer[tls.Certificate] // read by TLS handshakes
	sans map[netip.Addr]bool             // the data plane's goroutine only
}

func (g *generatedCert) ensure(name string, ips []netip.Addr, log *zap.Logger) {
	if g.sans == nil {
		g.sans = map[netip.Addr]bool{}
	}
	grew := false
	for _, a := range ips {
		if !g.sans[a] {
			g.sans[a] = true
			grew = true
		}
	}
	if !grew && g.cur.Load() != nil {
		return
	}
	cert, err := selfSignedCert(name, slices.SortedFunc(maps.Keys(g.sans), netip.Addr.Compare))
	if err != nil {
		log.Error("cannot make a serving certificate", zap.String("instance", name), zap.Error(err))
		return
	}
	g.cur.Store(cert)
}

// selfSignedCert makes an ECDSA P-256 certificate for a master: its own CA,
// valid for its IPs, its name and the in-cluster names of the API server.
func selfSignedCert(name string, ips []netip.Addr) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"hakube emulator"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{name, "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
	}
	for _, a := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(a.AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
