package vmcontract

import (
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ComponentKubeconfig renders the kubeconfig a master's controller-manager
// or scheduler reads: its own apiserver, the cluster CA, and the component's
// client certificate, all as files of the VM.
func (m Master) ComponentKubeconfig(user string, cert, key CertItem) ([]byte, error) {
	server, err := m.APIServerURL()
	if err != nil {
		return nil, err
	}
	c := clientcmdapi.NewConfig()
	c.Clusters["local"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: m.pki(CA)}
	c.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificate: m.pki(cert), ClientKey: m.pki(key)}
	c.Contexts["default"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: user}
	c.CurrentContext = "default"
	return clientcmd.Write(*c)
}

// Kubeconfigs are the files a master writes for its components: path →
// contents.
func (m Master) Kubeconfigs() (map[string][]byte, error) {
	cm, err := m.ComponentKubeconfig(ControllerUser, ControllerManagerCert, ControllerManagerKey)
	if err != nil {
		return nil, err
	}
	sched, err := m.ComponentKubeconfig(SchedulerUser, SchedulerCert, SchedulerKey)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{m.ControllerManagerKubeconfig(): cm, m.SchedulerKubeconfig(): sched}, nil
}
