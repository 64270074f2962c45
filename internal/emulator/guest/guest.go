// Package guest is what runs inside a VM of the emulator. Each VM reads its
// metadata at boot (docs/vm-contract.md). With Kubernetes on, a master runs
// the real etcd, kube-apiserver, kube-controller-manager and kube-scheduler
// as processes of the rehearsal's binary, with the command lines
// internal/vmcontract renders, plus the health agent the load balancer's
// check probes (health.go); without it, a master serves static HTTPS
// /healthz, /readyz, /livez and /version and plain /healthz (vm.go), which
// is enough for network tests and never for hakube's flows. Every VM also
// runs the Extras the emulator is given (the SSH server, the kubelet
// stand-in) and writes to its serial console (console.go).
//
// The data plane (package dataplane) drives each VM's Machine: it parses
// the metadata a boot reads into a Config, calls Run while the instance is
// up and Stop when it is not (stopped, deleted, halted, its zone DOWN), and
// binds the ports the guest's Services and NATPorts ask for. A Host owns
// the state directory and every process; the guest knows nothing of the
// Compute API, and reaches the emulator only through the callbacks in
// Options.
package guest

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/hakube/hakube/internal/vmcontract"
	"gopkg.in/yaml.v3"
)

// What a guest reads from its metadata (docs/vm-contract.md).
const (
	MetadataKubeEnv     = "kube-env"
	MetadataMasterCerts = "kube-master-certs"

	envMaster          = "KUBERNETES_MASTER"
	envAPIServerPort   = "APISERVER_PORT"
	envHealthCheckPort = "HEALTHCHECK_PORT"
	certMaster         = "MASTER_CERT"
	certMasterKey      = "MASTER_KEY"

	DefaultAPIServerPort   = 443
	DefaultHealthCheckPort = 3990

	// InstanceHeader names the instance that answered, on every response a
	// guest sends.
	InstanceHeader = "X-Hakube-Emulator-Instance"

	// KubeVersion is the gitVersion a master's /version reports.
	KubeVersion = "v1.35.0"
)

// Metadata is what a guest reads from its metadata server, and nothing
// else: a key it does not read has no effect on it.
type Metadata struct {
	KubeEnv     string // kube-env
	MasterCerts string // kube-master-certs
}

// Set records one metadata item; keys the guest does not read are ignored.
func (m *Metadata) Set(key, value string) {
	switch key {
	case MetadataKubeEnv:
		m.KubeEnv = value
	case MetadataMasterCerts:
		m.MasterCerts = value
	}
}

// Config is the guest's view of its metadata at boot.
type Config struct {
	Master          bool
	APIServerPort   int
	HealthCheckPort int
	// Cert is the serving certificate from kube-master-certs; nil: the
	// guest makes its own.
	Cert *tls.Certificate
	// Err says why the API server cannot start; empty when it can.
	Err string
	// Env and Certs are the kube-env and kube-master-certs as the contract
	// reads them (ParseKube; from Parse, as far as they parse).
	Env   *vmcontract.KubeEnv
	Certs vmcontract.Certs
}

// CertSource says where a master's serving certificate comes from:
// "metadata" or "generated".
func (c *Config) CertSource() string {
	if c.Cert != nil {
		return "metadata"
	}
	return "generated"
}

// Parse reads a guest's configuration from its metadata. It never fails: a
// configuration the API server cannot start with has Err set.
func Parse(md Metadata) *Config {
	c := &Config{APIServerPort: DefaultAPIServerPort, HealthCheckPort: DefaultHealthCheckPort}
	if strings.TrimSpace(md.KubeEnv) == "" {
		return c
	}
	// The extras read the contract's view whatever the guest serves.
	c.Env, _ = vmcontract.ParseKubeEnv(md.KubeEnv)
	if strings.TrimSpace(md.MasterCerts) != "" {
		c.Certs, _ = vmcontract.ParseCerts(md.MasterCerts)
	}
	vals, err := yamlStrings(md.KubeEnv)
	if err != nil {
		c.Err = "kube-env is not valid YAML: " + err.Error()
		return c
	}
	c.Master = vals[envMaster] == "true"
	if !c.Master {
		return c
	}
	port := func(key string, def int) int {
		v, ok := vals[key]
		if !ok || v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			c.Err = fmt.Sprintf("kube-env %s=%q is not a port from 1 to 65535", key, v)
			return def
		}
		return n
	}
	c.APIServerPort = port(envAPIServerPort, DefaultAPIServerPort)
	c.HealthCheckPort = port(envHealthCheckPort, DefaultHealthCheckPort)
	if c.Err == "" && c.APIServerPort == c.HealthCheckPort {
		c.Err = fmt.Sprintf("kube-env %s and %s are both %d", envAPIServerPort, envHealthCheckPort, c.APIServerPort)
	}
	if c.Err == "" && strings.TrimSpace(md.MasterCerts) != "" {
		cert, err := masterCertFromMetadata(md.MasterCerts)
		if err != nil {
			c.Err = "kube-master-certs: " + err.Error()
		}
		c.Cert = cert
	}
	return c
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

// ParseKube reads a Kubernetes guest's configuration with the contract's
// own parsers (vmcontract). Like Parse it never fails; unlike Parse it does
// not check the certificates: a key that does not match its certificate,
// or one that is missing, is for the real binaries to refuse, in their own
// words.
func ParseKube(md Metadata) *Config {
	c := &Config{APIServerPort: DefaultAPIServerPort, HealthCheckPort: DefaultHealthCheckPort}
	if strings.TrimSpace(md.KubeEnv) == "" {
		return c
	}
	env, err := vmcontract.ParseKubeEnv(md.KubeEnv)
	if err != nil {
		c.Err = err.Error()
		return c
	}
	c.Env = env
	c.Master = env.IsMaster()
	if !c.Master {
		return c
	}
	if c.APIServerPort, err = env.APIServerPort(); err != nil {
		c.Err = err.Error()
		return c
	}
	if c.HealthCheckPort, err = env.HealthCheckPort(); err != nil {
		c.Err = err.Error()
		return c
	}
	if c.APIServerPort == c.HealthCheckPort {
		c.Err = fmt.Sprintf("kube-env %s and %s are both %d", envAPIServerPort, envHealthCheckPort, c.APIServerPort)
		return c
	}
	if strings.TrimSpace(md.MasterCerts) != "" {
		if c.Certs, err = vmcontract.ParseCerts(md.MasterCerts); err != nil {
			c.Err = err.Error()
		}
	}
	return c
}

const envCACert = vmcontract.EnvCACert

var caItem = vmcontract.CA

func decodeB64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
