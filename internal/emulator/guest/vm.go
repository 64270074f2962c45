package guest

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"runtime"
	"strings"

	"go.uber.org/zap"
)

// VM is the guest of one instance, across its boots: a master keeps its
// generated certificate over a stop and a start.
type VM struct {
	name string
	log  *zap.Logger
	cert generatedCert

	cfg      *Config // what the running guest booted with; nil while stopped
	services []Service
}

// NewVM is the guest of the instance called name.
func NewVM(name string, log *zap.Logger) *VM {
	return &VM{name: name, log: log}
}

// Service is one port a running guest serves on every IP of its VM (on its
// internal IPs only when Internal).
type Service struct {
	Name     string // "apiserver" or "healthcheck"
	Port     int
	Protocol string       // "https" or "http"
	Handler  http.Handler // tags every answer with InstanceHeader
	TLS      *tls.Config  // for https
	Internal bool
	// Boot is the boot that serves it: a new boot gets new listeners.
	Boot int
	// What and PrivilegedFix explain a failed bind: what could not listen,
	// and the setting that moves it off a port below 1024.
	What, PrivilegedFix string
}

// Start runs the guest with cfg, reachable at ips. The data plane calls it
// on every pass while the VM is up (RUNNING, booted, its zone UP), so it is
// cheap when nothing changed; an IP the guest has not seen before joins its
// generated certificate.
func (v *VM) Start(cfg *Config, ips []netip.Addr) {
	if cfg.Cert == nil {
		v.cert.ensure(v.name, ips, v.log)
	}
	if cfg == v.cfg {
		return
	}
	v.cfg = cfg
	v.services = nil
	if cfg.Master && cfg.Err == "" {
		v.services = v.masterServices(cfg)
	}
}

// Stop halts the guest: it serves nothing until the next Start.
func (v *VM) Stop() { v.cfg, v.services = nil, nil }

// Services is what the running guest serves; nil while it is stopped or
// is not a master.
func (v *VM) Services() []Service { return v.services }

// masterServices is the API server's health and version endpoints over
// TLS, and plain /healthz on the health check port.
func (v *VM) masterServices(cfg *Config) []Service {
	ok := func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = rw.Write([]byte("ok"))
	}
	api := http.NewServeMux()
	api.HandleFunc("GET /healthz", ok)
	api.HandleFunc("GET /readyz", ok)
	api.HandleFunc("GET /livez", ok)
	api.HandleFunc("GET /version", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(kubeVersion())
	})
	hc := http.NewServeMux()
	hc.HandleFunc("GET /healthz", ok)
	tlsConfig := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if cfg.Cert != nil {
				return cfg.Cert, nil
			}
			if c := v.cert.cur.Load(); c != nil {
				return c, nil
			}
			return nil, errors.New("no serving certificate")
		},
	}
	return []Service{
		{Name: "apiserver", Port: cfg.APIServerPort, Protocol: "https", Handler: v.tagged(api), TLS: tlsConfig,
			What:          "the API server of " + v.name,
			PrivilegedFix: "Set APISERVER_PORT ≥ 1024 in the VM's kube-env, e.g. hakube --apiserver-port 6443"},
		{Name: "healthcheck", Port: cfg.HealthCheckPort, Protocol: "http", Handler: v.tagged(hc),
			What:          "the health-check port of " + v.name,
			PrivilegedFix: "Set HEALTHCHECK_PORT ≥ 1024 in the VM's kube-env, e.g. hakube --healthcheck-port 3990"},
	}
}

func (v *VM) tagged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set(InstanceHeader, v.name)
		h.ServeHTTP(rw, r)
	})
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
	v := strings.Split(strings.TrimPrefix(KubeVersion, "v"), ".")
	return versionInfo{Major: v[0], Minor: v[1], GitVersion: KubeVersion,
		GitCommit: "0000000000000000000000000000000000000000", GitTreeState: "clean",
		BuildDate: "2026-01-01T00:00:00Z", GoVersion: runtime.Version(), Compiler: "gc", Platform: "linux/amd64"}
}
