package emulator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"gopkg.in/yaml.v3"
)

// What a VM of the emulator does with its metadata (docs/vm-contract.md).
const (
	metaKubeEnv     = "kube-env"
	metaMasterCerts = "kube-master-certs"

	envMaster          = "KUBERNETES_MASTER"
	envAPIServerPort   = "APISERVER_PORT"
	envHealthCheckPort = "HEALTHCHECK_PORT"
	certMaster         = "MASTER_CERT"
	certMasterKey      = "MASTER_KEY"

	defaultAPIServerPort   = 443
	defaultHealthCheckPort = 3990

	// InstanceHeader names the instance that answered, on every response a
	// VM of the emulator sends.
	InstanceHeader = "X-Hakube-Emulator-Instance"

	// EmulatedKubeVersion is the gitVersion a master's /version reports.
	EmulatedKubeVersion = "v1.35.0"
)

// kubeEnv is what a VM's guest takes from its metadata at boot.
type kubeEnv struct {
	master  bool
	apiPort int
	hcPort  int
	cert    *tls.Certificate // from kube-master-certs; nil: the emulator makes one
	err     string           // why the API server cannot start
}

func parseKubeEnv(rawEnv, rawCerts string) *kubeEnv {
	e := &kubeEnv{apiPort: defaultAPIServerPort, hcPort: defaultHealthCheckPort}
	if strings.TrimSpace(rawEnv) == "" {
		return e
	}
	vals, err := yamlStrings(rawEnv)
	if err != nil {
		e.err = "kube-env is not valid YAML: " + err.Error()
		return e
	}
	e.master = vals[envMaster] == "true"
	if !e.master {
		return e
	}
	port := func(key string, def int) int {
		v, ok := vals[key]
		if !ok || v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			e.err = fmt.Sprintf("kube-env %s=%q is not a port from 1 to 65535", key, v)
			return def
		}
		return n
	}
	e.apiPort = port(envAPIServerPort, defaultAPIServerPort)
	e.hcPort = port(envHealthCheckPort, defaultHealthCheckPort)
	if e.err == "" && e.apiPort == e.hcPort {
		e.err = fmt.Sprintf("kube-env %s and %s are both %d", envAPIServerPort, envHealthCheckPort, e.apiPort)
	}
	if e.err == "" && strings.TrimSpace(rawCerts) != "" {
		cert, err := masterCertFromMetadata(rawCerts)
		if err != nil {
			e.err = "kube-master-certs: " + err.Error()
		}
		e.cert = cert
	}
	return e
}

// yamlStrings reads a flat YAML map of KEY: 'value' lines, rendering every
// scalar as the string a shell script sourcing it would see.
func yamlStrings(raw string) (map[string]string, error) {
	var m map[string]any
	if err := yaml.Unmarshal([]byte(raw), &m); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			out[k] = ""
		case string:
			out[k] = v
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out, nil
}

// masterCertFromMetadata loads MASTER_CERT and MASTER_KEY (base64 of PEM)
// from kube-master-certs. Absent both: nil, nil.
func masterCertFromMetadata(raw string) (*tls.Certificate, error) {
	vals, err := yamlStrings(raw)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML: %v", err)
	}
	certB64, keyB64 := vals[certMaster], vals[certMasterKey]
	if certB64 == "" && keyB64 == "" {
		return nil, nil
	}
	if certB64 == "" || keyB64 == "" {
		return nil, fmt.Errorf("%s and %s must be set together", certMaster, certMasterKey)
	}
	certPEM, err := base64.StdEncoding.DecodeString(strings.TrimSpace(certB64))
	if err != nil {
		return nil, fmt.Errorf("%s is not base64: %v", certMaster, err)
	}
	keyPEM, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keyB64))
	if err != nil {
		return nil, fmt.Errorf("%s is not base64: %v", certMasterKey, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %v", certMaster, certMasterKey, err)
	}
	return &cert, nil
}

// generatedCert is the serving certificate the emulator makes for a master
// without one in its metadata. Its SANs only grow: an IP that moves from the
// VM to a load balancer stays valid for the VM, as kube-up's certificate
// names the reserved IP.
type generatedCert struct {
	cur  atomic.Pointer[tls.Certificate] // read by TLS handshakes
	sans map[netip.Addr]bool             // reconcile goroutine only
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

// vmServer is what a booted master serves on one IP:port: the API server's
// health and version endpoints over TLS, or plain /healthz on the health
// check port.
func (d *dataPlane) vmServer(w *want) *http.Server {
	name := w.vm.name
	mux := http.NewServeMux()
	ok := func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = rw.Write([]byte("ok"))
	}
	mux.HandleFunc("GET /healthz", ok)
	if w.kind == kindAPIServer {
		mux.HandleFunc("GET /readyz", ok)
		mux.HandleFunc("GET /livez", ok)
		mux.HandleFunc("GET /version", func(rw http.ResponseWriter, _ *http.Request) {
			rw.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(rw).Encode(kubeVersion())
		})
	}
	errLog, _ := zap.NewStdLogAt(d.log.With(zap.String("instance", name)), zap.DebugLevel)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set(InstanceHeader, name)
			mux.ServeHTTP(rw, r)
		}),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          errLog, // TLS handshake noise from probes and cut connections
	}
	if w.kind == kindAPIServer {
		env, rt := w.env, w.vm.rt
		srv.TLSConfig = &tls.Config{
			MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				if env.cert != nil {
					return env.cert, nil
				}
				if c := rt.cert.cur.Load(); c != nil {
					return c, nil
				}
				return nil, errors.New("no serving certificate")
			},
		}
	}
	return srv
}

// versionInfo is kube-apiserver's /version body.
type versionInfo struct {
	Major        string `json:"major"`
	Minor        string `json:"minor"`
	GitVersion   string `json:"gitVersion"`
	GitCommit    string `json:"gitCommit"`
	GitTreeState string `json:"gitTreeState"`
	BuildDate    string `json:"buildDate"`
	GoVersion    string `json:"goVersion"`
	Compiler     string `json:"compiler"`
	Platform     string `json:"platform"`
}

func kubeVersion() versionInfo {
	v := strings.Split(strings.TrimPrefix(EmulatedKubeVersion, "v"), ".")
	return versionInfo{Major: v[0], Minor: v[1], GitVersion: EmulatedKubeVersion,
		GitCommit: "0000000000000000000000000000000000000000", GitTreeState: "clean",
		BuildDate: "2026-01-01T00:00:00Z", GoVersion: runtime.Version(), Compiler: "gc", Platform: "linux/amd64"}
}

// bindErrorMessage explains a failed bind and names the setting to change.
func bindErrorMessage(ap netip.AddrPort, w *want, err error) string {
	kind := w.kind
	if kind == kindDrop {
		kind = kindForward // the same ports, held before the rule forwards
	}
	what := map[string]string{
		kindAPIServer:   "the API server of " + lastSegment(w.owner),
		kindHealthCheck: "the health-check port of " + lastSegment(w.owner),
		kindForward:     "forwarding rule " + lastSegment(w.owner),
	}[kind]
	msg := fmt.Sprintf("cannot listen on %s for %s: %v", ap, what, err)
	switch {
	case errors.Is(err, syscall.EACCES):
		msg += fmt.Sprintf("; ports below 1024 need root (or CAP_NET_BIND_SERVICE) and this emulator runs as an unprivileged user. %s",
			map[string]string{
				kindAPIServer:   "Set APISERVER_PORT ≥ 1024 in the VM's kube-env, e.g. hakube --apiserver-port 6443",
				kindHealthCheck: "Set HEALTHCHECK_PORT ≥ 1024 in the VM's kube-env, e.g. hakube --healthcheck-port 3990",
				kindForward:     "Give the forwarding rule a port range ≥ 1024, e.g. the API server port from hakube --apiserver-port 6443",
			}[kind])
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		msg += "; the IP is not on this machine. Linux routes all of 127.0.0.0/8 to loopback; on macOS add it with 'sudo ifconfig lo0 alias " +
			ap.Addr().String() + " up'. Keep subnet ranges inside --internal-range and addresses inside --external-range"
	case errors.Is(err, syscall.EADDRINUSE):
		msg += "; another process (or another emulator sharing the IP ranges) holds this address: give each emulator its own --external-range and --internal-range"
	}
	return msg
}
