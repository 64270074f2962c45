package emulator

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
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
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

func TestParseKubeEnv(t *testing.T) {
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
			e := parseKubeEnv(tt.env, tt.certs)
			got := result{Master: e.master, APIPort: e.apiPort, HCPort: e.hcPort, HasCert: e.cert != nil, Err: e.err}
			want := tt.want
			if want.Err != "" && strings.Contains(got.Err, want.Err) {
				got.Err = want.Err
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("parseKubeEnv (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBindErrorMessage(t *testing.T) {
	ap := netip.MustParseAddrPort("127.57.0.2:443")
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", errno)}
	}
	vm := &want{kind: kindAPIServer, owner: "https://x/projects/p/zones/z/instances/m1"}
	hc := &want{kind: kindHealthCheck, owner: vm.owner}
	fr := &want{kind: kindForward, owner: "https://x/projects/p/regions/r/forwardingRules/fr"}
	tests := []struct {
		name string
		w    *want
		err  error
		want []string
	}{
		{"apiserver privileged", vm, opErr(syscall.EACCES), []string{"127.57.0.2:443", "API server of m1", "permission denied", "ports below 1024 need root", "APISERVER_PORT ≥ 1024", "hakube --apiserver-port 6443"}},
		{"healthcheck privileged", hc, opErr(syscall.EACCES), []string{"health-check port of m1", "HEALTHCHECK_PORT ≥ 1024"}},
		{"forwarding privileged", fr, opErr(syscall.EACCES), []string{"forwarding rule fr", "port range ≥ 1024", "--apiserver-port 6443"}},
		{"not local", vm, opErr(syscall.EADDRNOTAVAIL), []string{"not on this machine", "ifconfig lo0 alias 127.57.0.2", "--internal-range"}},
		{"in use", vm, opErr(syscall.EADDRINUSE), []string{"address already in use", "--external-range"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := bindErrorMessage(ap, tt.w, tt.err)
			for _, s := range tt.want {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q lacks %q", msg, s)
				}
			}
		})
	}
}

func TestScaledDuration(t *testing.T) {
	tests := []struct {
		preset string
		scale  float64
		sec    float64
		want   time.Duration
	}{
		{LatencyRealistic, 1, 5, 5 * time.Second},
		{LatencyRealistic, 0.1, 5, 500 * time.Millisecond},
		{LatencyFast, 1, 5, 25 * time.Millisecond},
		{LatencyFast, 0.1, 5, 10 * time.Millisecond}, // floor
		{LatencyNone, 1, 5, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := scaledDuration(tt.preset, tt.scale, tt.sec, 10*time.Millisecond); got != tt.want {
			t.Errorf("scaledDuration(%s, %g, %g) = %v, want %v", tt.preset, tt.scale, tt.sec, got, tt.want)
		}
	}
}

func TestForwardedPorts(t *testing.T) {
	ip := netip.MustParseAddr("127.57.0.9")
	pool := "https://x/projects/p/regions/r/targetPools/tp"
	tests := []struct {
		name  string
		rule  ruleSnap
		ports []int
		err   string
	}{
		{"single", ruleSnap{ip: ip, portRange: "6443-6443", target: pool}, []int{6443}, ""},
		{"bare port", ruleSnap{ip: ip, portRange: "6443", protocol: "TCP", target: pool}, []int{6443}, ""},
		{"range", ruleSnap{ip: ip, portRange: "8000-8002", target: pool}, []int{8000, 8001, 8002}, ""},
		{"too many", ruleSnap{ip: ip, portRange: "7000-7016", target: pool}, nil, "spans 17 ports"},
		{"all ports", ruleSnap{ip: ip, target: pool}, nil, "without portRange"},
		{"udp", ruleSnap{ip: ip, portRange: "53-53", protocol: "UDP", target: pool}, nil, "IPProtocol UDP"},
		{"target instance", ruleSnap{ip: ip, portRange: "80-80", target: "https://x/projects/p/zones/z/targetInstances/ti"}, nil, "not a target pool"},
		{"reversed", ruleSnap{ip: ip, portRange: "90-80", target: pool}, nil, "not a port range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ports, err := forwardedPorts(&tt.rule)
			if diff := cmp.Diff(tt.ports, ports); diff != "" {
				t.Errorf("ports (-want +got):\n%s", diff)
			}
			if (tt.err == "") != (err == "") || !strings.Contains(err, tt.err) {
				t.Errorf("error = %q, want one containing %q", err, tt.err)
			}
		})
	}
}
