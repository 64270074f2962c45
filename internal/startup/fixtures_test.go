package startup

import (
	"encoding/base64"
	"testing"

	"github.com/hakube/hakube/internal/vmcontract"
)

// Fixed inputs: kube-env as internal/cluster writes it for kube-up's HA
// guide in europe-west1 (the first master in b, a replica in c, the nodes).
const (
	testToken    = "abcdef.0123456789abcdef"
	testStaticIP = "34.76.10.20"
)

var testCA = []byte("-----BEGIN CERTIFICATE-----\nMIIBhakubeTestCA\n-----END CERTIFICATE-----\n")

type testMaster struct {
	name, zone, ip, state string
	members               string
}

var (
	firstMaster = testMaster{"kubernetes-master", "europe-west1-b", "10.132.0.2", "new",
		"kubernetes-master=https://10.132.0.2:2380"}
	replica = testMaster{"kubernetes-master-x7k", "europe-west1-c", "10.132.0.5", "existing",
		"kubernetes-master=https://10.132.0.2:2380,kubernetes-master-x7k=https://10.132.0.5:2380"}
)

func commonEnv(master bool) *vmcontract.KubeEnv {
	e := vmcontract.NewKubeEnv()
	set := func(k, v string) { e.Set(k, v) }
	set(vmcontract.EnvKubernetesMaster, map[bool]string{true: "true", false: "false"}[master])
	set(vmcontract.EnvInstancePrefix, "kubernetes")
	set(vmcontract.EnvClusterName, "kubernetes")
	set(vmcontract.EnvMasterName, "kubernetes-master")
	set(vmcontract.EnvMasterAddress, testStaticIP)
	set(vmcontract.EnvAPIServerPort, "443")
	set(vmcontract.EnvKubeVersion, vmcontract.KubeVersion)
	set(vmcontract.EnvEtcdVersion, vmcontract.EtcdVersion)
	set(vmcontract.EnvCACert, base64.StdEncoding.EncodeToString(testCA))
	set(vmcontract.EnvBootstrapToken, testToken)
	set(vmcontract.EnvMultizone, "true")
	set(vmcontract.EnvRegion, "europe-west1")
	return e
}

func nodeEnv() *vmcontract.KubeEnv { return commonEnv(false) }

func (tm testMaster) env() *vmcontract.KubeEnv {
	e := commonEnv(true)
	e.Set(vmcontract.EnvAdvertiseAddress, testStaticIP)
	e.Set(vmcontract.EnvHealthCheckPort, "3990")
	e.Set(vmcontract.EnvEtcdQuorumRead, "true")
	e.Set(vmcontract.EnvNumNodes, "3")
	e.Set(vmcontract.EnvServiceClusterIPRange, "10.0.0.0/16")
	e.Set(vmcontract.EnvClusterIPRange, "10.64.0.0/14")
	e.Set(vmcontract.EnvZone, tm.zone)
	e.Set(vmcontract.EnvHostname, tm.name)
	e.Set(vmcontract.EnvInitialEtcdCluster, "kubernetes-master")
	if tm.state == "existing" {
		e.Set(vmcontract.EnvInitialEtcdCluster, "kubernetes-master,kubernetes-master-x7k")
	}
	e.Set(vmcontract.EnvEtcdInitialCluster, tm.members)
	e.Set(vmcontract.EnvInitialEtcdState, tm.state)
	return e
}

func (tm testMaster) master() vmcontract.Master {
	return vmcontract.Master{Env: tm.env(), Host: vmcontract.RealHost(tm.name, tm.ip)}
}

// testCerts is a kube-master-certs whose every entry is a distinct fake PEM.
func testCerts() vmcontract.Certs {
	c := vmcontract.Certs{}
	for _, it := range vmcontract.MasterItems() {
		c.Set(it, []byte("-----BEGIN FAKE "+it.Key+"-----\nc2VjcmV0IG9mIA"+it.Key+"\n-----END FAKE "+it.Key+"-----\n"))
	}
	c.Set(vmcontract.CA, testCA)
	return c
}

func mustMaster(t testing.TB, m vmcontract.Master) string {
	t.Helper()
	s, err := Master(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustNode(t testing.TB, env *vmcontract.KubeEnv) string {
	t.Helper()
	s, err := Node(env)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
