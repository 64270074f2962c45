package guest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testCertPEM makes a throwaway key pair as PEM.
func testCertPEM(t *testing.T, dnsName string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: dnsName},
		DNSNames: []string{dnsName}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func TestParse(t *testing.T) {
	certPEM, keyPEM := testCertPEM(t, "master.test")
	b64 := base64.StdEncoding.EncodeToString
	goodCerts := fmt.Sprintf("CA_CERT: '%s'\nMASTER_CERT: '%s'\nMASTER_KEY: '%s'\n", b64(certPEM), b64(certPEM), b64(keyPEM))
	type result struct {
		Master          bool
		APIPort, HCPort int
		HasCert         bool
		Err             string // substring
	}
	tests := []struct {
		name, env, certs string
		want             result
	}{
		{"no kube-env", "", "", result{APIPort: 443, HCPort: 3990}},
		{"node", "KUBERNETES_MASTER: 'false'\nAPISERVER_PORT: '6443'\n", "", result{APIPort: 443, HCPort: 3990}},
		{"master defaults", "KUBERNETES_MASTER: 'true'\nINITIAL_ETCD_CLUSTER: 'm1'\n", "", result{Master: true, APIPort: 443, HCPort: 3990}},
		{"unquoted true and ports", "KUBERNETES_MASTER: true\nAPISERVER_PORT: 6443\nHEALTHCHECK_PORT: '6990'\n", "", result{Master: true, APIPort: 6443, HCPort: 6990}},
		{"port out of range", "KUBERNETES_MASTER: 'true'\nAPISERVER_PORT: '70000'\n", "", result{Master: true, APIPort: 443, HCPort: 3990, Err: `APISERVER_PORT="70000" is not a port`}},
		{"same ports", "KUBERNETES_MASTER: 'true'\nAPISERVER_PORT: '3990'\n", "", result{Master: true, APIPort: 3990, HCPort: 3990, Err: "are both 3990"}},
		{"bad yaml", "KUBERNETES_MASTER: 'true\n", "", result{APIPort: 443, HCPort: 3990, Err: "kube-env is not valid YAML"}},
		{"certs", "KUBERNETES_MASTER: 'true'\n", goodCerts, result{Master: true, APIPort: 443, HCPort: 3990, HasCert: true}},
		{"certs without MASTER_*", "KUBERNETES_MASTER: 'true'\n", "CA_CERT: 'abc'\n", result{Master: true, APIPort: 443, HCPort: 3990}},
		{"cert without key", "KUBERNETES_MASTER: 'true'\n", "MASTER_CERT: '" + b64(certPEM) + "'\n", result{Master: true, APIPort: 443, HCPort: 3990, Err: "must be set together"}},
		{"cert not base64", "KUBERNETES_MASTER: 'true'\n", "MASTER_CERT: '%%%'\nMASTER_KEY: '%%%'\n", result{Master: true, APIPort: 443, HCPort: 3990, Err: "MASTER_CERT is not base64"}},
		{"key does not match", "KUBERNETES_MASTER: 'true'\n", fmt.Sprintf("MASTER_CERT: '%s'\nMASTER_KEY: '%s'\n", b64(certPEM), b64(certPEM)), result{Master: true, APIPort: 443, HCPort: 3990, Err: "MASTER_CERT/MASTER_KEY"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Parse(Metadata{KubeEnv: tt.env, MasterCerts: tt.certs})
			got := result{Master: c.Master, APIPort: c.APIServerPort, HCPort: c.HealthCheckPort, HasCert: c.Cert != nil, Err: c.Err}
			want := tt.want
			if want.Err != "" && strings.Contains(got.Err, want.Err) {
				got.Err = want.Err
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}
