package vmcontract

import (
	"encoding/base64"
	"fmt"
	"maps"
	"path"
	"slices"
)

// A CertItem is one PEM of kube-master-certs (YAML of KEY: 'base64 PEM', as
// kube-up writes it) and the file it becomes under the VM's PKI directory,
// laid out as kubeadm lays /etc/kubernetes/pki out.
type CertItem struct {
	Key  string // kube-master-certs key
	File string // path under the PKI directory
}

// Entries of kube-master-certs. The CAs and the service-account key pair
// are the cluster's and the same on every master (they live nowhere else:
// any later `up --replicate-master` mints a new replica's certificates from
// them); the rest are each master's own, minted by hakube for its name and
// IPs.
var (
	CA                = CertItem{"CA_CERT", "ca.crt"}
	CAKey             = CertItem{"CA_KEY", "ca.key"}
	EtcdCA            = CertItem{"ETCD_CA_CERT", "etcd/ca.crt"}
	EtcdCAKey         = CertItem{"ETCD_CA_KEY", "etcd/ca.key"}
	FrontProxyCA      = CertItem{"FRONT_PROXY_CA_CERT", "front-proxy-ca.crt"}
	FrontProxyCAKey   = CertItem{"FRONT_PROXY_CA_KEY", "front-proxy-ca.key"}
	ServiceAccountKey = CertItem{"SERVICE_ACCOUNT_KEY", "sa.key"}
	ServiceAccountPub = CertItem{"SERVICE_ACCOUNT_PUB", "sa.pub"}

	APIServerCert         = CertItem{"MASTER_CERT", "apiserver.crt"}
	APIServerKey          = CertItem{"MASTER_KEY", "apiserver.key"}
	EtcdPeerCert          = CertItem{"ETCD_PEER_CERT", "etcd/peer.crt"}
	EtcdPeerKey           = CertItem{"ETCD_PEER_KEY", "etcd/peer.key"}
	EtcdServerCert        = CertItem{"ETCD_SERVER_CERT", "etcd/server.crt"}
	EtcdServerKey         = CertItem{"ETCD_SERVER_KEY", "etcd/server.key"}
	APIServerEtcdCert     = CertItem{"APISERVER_ETCD_CLIENT_CERT", "apiserver-etcd-client.crt"}
	APIServerEtcdKey      = CertItem{"APISERVER_ETCD_CLIENT_KEY", "apiserver-etcd-client.key"}
	APIServerKubeletCert  = CertItem{"APISERVER_KUBELET_CLIENT_CERT", "apiserver-kubelet-client.crt"}
	APIServerKubeletKey   = CertItem{"APISERVER_KUBELET_CLIENT_KEY", "apiserver-kubelet-client.key"}
	FrontProxyClientCert  = CertItem{"FRONT_PROXY_CLIENT_CERT", "front-proxy-client.crt"}
	FrontProxyClientKey   = CertItem{"FRONT_PROXY_CLIENT_KEY", "front-proxy-client.key"}
	ControllerManagerCert = CertItem{"CONTROLLER_MANAGER_CERT", "controller-manager.crt"}
	ControllerManagerKey  = CertItem{"CONTROLLER_MANAGER_KEY", "controller-manager.key"}
	SchedulerCert         = CertItem{"SCHEDULER_CERT", "scheduler.crt"}
	SchedulerKey          = CertItem{"SCHEDULER_KEY", "scheduler.key"}
)

// SharedItems are the cluster's own secrets, the same on every master.
func SharedItems() []CertItem {
	return []CertItem{CA, CAKey, EtcdCA, EtcdCAKey, FrontProxyCA, FrontProxyCAKey, ServiceAccountKey, ServiceAccountPub}
}

// MasterItems are every entry a master's kube-master-certs holds.
func MasterItems() []CertItem {
	return append(SharedItems(),
		APIServerCert, APIServerKey, EtcdPeerCert, EtcdPeerKey, EtcdServerCert, EtcdServerKey,
		APIServerEtcdCert, APIServerEtcdKey, APIServerKubeletCert, APIServerKubeletKey,
		FrontProxyClientCert, FrontProxyClientKey, ControllerManagerCert, ControllerManagerKey,
		SchedulerCert, SchedulerKey)
}

// Path is the item's file under dir.
func (c CertItem) Path(dir string) string { return path.Join(dir, c.File) }

// Certs is a decoded kube-master-certs: PEM by key.
type Certs map[string][]byte

// ParseCerts decodes a kube-master-certs value.
func ParseCerts(value string) (Certs, error) {
	e, err := ParseKubeEnv(value)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyMasterCerts, err)
	}
	out := Certs{}
	for _, k := range e.Keys() {
		b, err := base64.StdEncoding.DecodeString(e.Get(k))
		if err != nil {
			return nil, fmt.Errorf("%s %s: not base64: %w", KeyMasterCerts, k, err)
		}
		out[k] = b
	}
	return out, nil
}

// Get returns an item's PEM (nil when absent).
func (c Certs) Get(item CertItem) []byte { return c[item.Key] }

// Set stores an item's PEM.
func (c Certs) Set(item CertItem, pem []byte) { c[item.Key] = pem }

// Missing lists the items of want that c lacks.
func (c Certs) Missing(want []CertItem) []string {
	var out []string
	for _, it := range want {
		if len(c[it.Key]) == 0 {
			out = append(out, it.Key)
		}
	}
	return out
}

// Encode renders the metadata value, items in the contract's order.
func (c Certs) Encode() string {
	e := NewKubeEnv()
	seen := map[string]bool{}
	for _, it := range MasterItems() {
		if b := c[it.Key]; len(b) > 0 {
			e.Set(it.Key, base64.StdEncoding.EncodeToString(b))
			seen[it.Key] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c)) {
		if b := c[k]; !seen[k] && len(b) > 0 {
			e.Set(k, base64.StdEncoding.EncodeToString(b))
		}
	}
	return e.String()
}
