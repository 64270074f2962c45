// Package startup renders the startup scripts of real GCE VMs (metadata key
// vmcontract.KeyStartupScript): bash that does on a stock Debian image what
// gce-emulator's guest does in the rehearsal — install the pinned etcd and
// Kubernetes, verified, and run them with vmcontract's flags. The bash lives
// in scripts/ (embedded); what it writes verbatim (units, kubeconfigs,
// configs) is rendered here from vmcontract, so there is one flag list in
// Go. docs/vm-contract.md ("On a real VM") is its prose.
package startup

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/hakube/hakube/internal/vmcontract"
)

//go:embed scripts/bootstrap.sh.tmpl scripts/lib.sh scripts/health-agent.py scripts/containerd.toml
var scripts embed.FS

// What a real VM installs, and from where.
const (
	kubeRelease = "https://dl.k8s.io/release/" + vmcontract.KubeVersion + "/bin/linux/amd64"
	etcdRelease = "https://github.com/etcd-io/etcd/releases/download/" + vmcontract.EtcdVersion
	binDir      = "/usr/local/bin"
	cniBin      = "/usr/lib/cni" // Debian's containernetworking-plugins
	cniConf     = "/etc/cni/net.d/10-hakube.conflist"
	healthAgent = "/usr/local/lib/hakube/health-agent.py"
	// The device a master's data disk appears as (GCE names it after the
	// attached disk's device name).
	dataDevice = "/dev/disk/by-id/google-" + vmcontract.EtcdDeviceName
	// guestAgentMark starts the block the script adds to the guest agent's
	// configuration, and tells a second run it is there.
	guestAgentMark = "# hakube: pods own this VM's alias IP range (CNI bridge), not a local route"
	heredoc        = "HAKUBE_EOF"
)

var (
	packages       = []string{"containerd", "containernetworking-plugins"}
	nodeBinaries   = []string{"kubelet", "kube-proxy", "kubectl"}
	masterBinaries = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl"}
)

// file is one file the script writes verbatim.
type file struct {
	Path, Mode, Text string
}

type certFile struct{ Key, Path string }

// data is what the template renders from.
type data struct {
	Master                                       bool
	Role, Name                                   string
	Lib                                          string
	GuestAttr                                    string
	BootstrapOK, BootstrapRunning                string
	BootstrapFailed, TokenKey                    string
	KeyKubeEnv, KeyMasterCerts                   string
	RenderedEnv                                  string
	ClusterIPRange, APIServer                    string
	Packages, KubeBinaries                       []string
	KubeVersion, KubeRelease                     string
	EtcdVersion, EtcdRelease                     string
	Containerd                                   file
	PKIDir, CAFile, TokenFile                    string
	PKIDirs                                      []string
	Certs                                        []certFile
	Kubeconfigs, ControlPlane, HealthAgent       []file
	ControlPlaneUnits                            []string
	HealthPort                                   int
	DataDevice, DataMount, DataDeviceName        string
	Kubelet, KubeProxy                           []file
	KubeletEnvFile, NodeLabelsVar, ProviderIDVar string
	CNIBin, CNIConf, CNIConflist, GuestAgentMark string
}

// Master renders a master VM's script. The first master and a replica
// differ by their kube-env (a replica's INITIAL_ETCD_CLUSTER_STATE is
// existing, its ETCD_INITIAL_CLUSTER lists every member, and so its etcd
// unit's flags), which the script checks at boot is the one it was rendered
// from. m.Host must be vmcontract.RealHost(name, internalIP), known before
// the VM exists (the IP is reserved first).
func Master(m vmcontract.Master) (string, error) {
	if m.Env == nil || !m.Env.IsMaster() {
		return "", fmt.Errorf("startup script of %s: kube-env is not a master's (%s)", m.Host.Name, vmcontract.EnvKubernetesMaster)
	}
	if m.Host.Name == "" || m.Host.InternalIP == "" {
		return "", fmt.Errorf("startup script of a master: its name and internal IP are needed")
	}
	if m.Host.LoopbackNetwork || m.Host != vmcontract.RealHost(m.Host.Name, m.Host.InternalIP) {
		return "", fmt.Errorf("startup script of %s: not a real VM's layout (want vmcontract.RealHost)", m.Host.Name)
	}
	if h := m.Env.Get(vmcontract.EnvHostname); h != "" && h != m.Host.Name {
		return "", fmt.Errorf("startup script of %s: its kube-env says %s=%s", m.Host.Name, vmcontract.EnvHostname, h)
	}
	d, err := common(m.Env, true)
	if err != nil {
		return "", err
	}
	d.Name, d.KubeBinaries = m.Host.Name, masterBinaries
	d.EtcdVersion, d.EtcdRelease = vmcontract.EtcdVersion, etcdRelease
	d.PKIDirs = []string{m.Host.PKIDir, path.Join(m.Host.PKIDir, "etcd")}
	for _, it := range vmcontract.MasterItems() {
		d.Certs = append(d.Certs, certFile{it.Key, it.Path(m.Host.PKIDir)})
	}
	kubeconfigs, err := m.Kubeconfigs()
	if err != nil {
		return "", err
	}
	for _, p := range slices.Sorted(maps.Keys(kubeconfigs)) {
		d.Kubeconfigs = append(d.Kubeconfigs, file{p, "0600", string(kubeconfigs[p])})
	}
	components, err := m.Components()
	if err != nil {
		return "", err
	}
	d.DataDevice, d.DataMount, d.DataDeviceName = dataDevice, path.Dir(m.Host.DataDir), vmcontract.EtcdDeviceName
	for _, c := range components {
		u := unit{Name: c.Name, Description: c.Name, Exec: append([]string{path.Join(binDir, c.Name)}, c.Args...)}
		switch c.Name {
		case "etcd":
			u.After, u.Wants, u.MountsFor = []string{"network-online.target"}, []string{"network-online.target"}, d.DataMount
		case "kube-apiserver":
			u.After = []string{"etcd.service"}
		default:
			u.After = []string{"kube-apiserver.service"}
		}
		d.ControlPlane = append(d.ControlPlane, file{u.path(), "0644", u.render()})
		d.ControlPlaneUnits = append(d.ControlPlaneUnits, c.Name+".service")
	}
	if d.HealthAgent, d.HealthPort, err = healthAgentFiles(m); err != nil {
		return "", err
	}
	return render(d)
}

// Node renders the node template's script: one for every VM of every
// pool, whose names and IPs are only known at boot (the kubelet takes the
// hostname, which on GCE is the instance's name).
func Node(env *vmcontract.KubeEnv) (string, error) {
	if env == nil || env.IsMaster() {
		return "", fmt.Errorf("startup script of the nodes: kube-env is a master's (%s)", vmcontract.EnvKubernetesMaster)
	}
	d, err := common(env, false)
	if err != nil {
		return "", err
	}
	d.KubeBinaries = nodeBinaries
	return render(d)
}

// common is what masters and nodes share: metadata, packages, containerd,
// pod networking, kubelet, kube-proxy.
func common(env *vmcontract.KubeEnv, master bool) (*data, error) {
	lib, err := scripts.ReadFile("scripts/lib.sh")
	if err != nil {
		return nil, err
	}
	toml, err := scripts.ReadFile("scripts/containerd.toml")
	if err != nil {
		return nil, err
	}
	api, err := env.KubeletAPIServer(vmcontract.RealLoopback)
	if err != nil {
		return nil, err
	}
	rendered, err := renderedEnv(env)
	if err != nil {
		return nil, err
	}
	d := &data{
		Master: master, Role: "node", Lib: string(lib),
		GuestAttr:   vmcontract.GuestAttrBootstrap,
		BootstrapOK: vmcontract.BootstrapOK, BootstrapRunning: vmcontract.BootstrapRunning, BootstrapFailed: vmcontract.BootstrapFailed,
		TokenKey:   vmcontract.EnvBootstrapToken,
		KeyKubeEnv: vmcontract.KeyKubeEnv, KeyMasterCerts: vmcontract.KeyMasterCerts,
		RenderedEnv:    rendered,
		ClusterIPRange: env.ClusterIPRange(), APIServer: api,
		Packages:    packages,
		KubeVersion: vmcontract.KubeVersion, KubeRelease: kubeRelease,
		KubeletEnvFile: vmcontract.KubeletEnvFile, NodeLabelsVar: vmcontract.KubeletNodeLabelsVar,
		ProviderIDVar: vmcontract.KubeletProviderIDVar,
		Containerd:    file{"/etc/containerd/config.toml", "0644", string(toml)},
		PKIDir:        vmcontract.RealPKIDir, CAFile: vmcontract.CA.Path(vmcontract.RealPKIDir),
		TokenFile: vmcontract.BootstrapTokenFile,
		CNIBin:    cniBin, CNIConf: cniConf, CNIConflist: conflist(), GuestAgentMark: guestAgentMark,
	}
	if master {
		d.Role = "master"
	}
	if d.Kubelet, err = kubeletFiles(env); err != nil {
		return nil, err
	}
	if d.KubeProxy, err = kubeProxyFiles(env); err != nil {
		return nil, err
	}
	return d, nil
}

// renderedEnv is kube-env without the bootstrap token, in kube-env's own
// syntax: the script compares it with the kube-env it reads at boot.
func renderedEnv(env *vmcontract.KubeEnv) (string, error) {
	out := vmcontract.NewKubeEnv()
	for _, k := range env.Keys() {
		if v := env.Get(k); strings.ContainsAny(k+v, "\r\n") {
			return "", fmt.Errorf("kube-env %s: a line break cannot be written in kube-env", k)
		} else if k != vmcontract.EnvBootstrapToken {
			out.Set(k, v)
		}
	}
	return out.String(), nil
}

func healthAgentFiles(m vmcontract.Master) ([]file, int, error) {
	program, err := scripts.ReadFile("scripts/health-agent.py")
	if err != nil {
		return nil, 0, err
	}
	port, err := m.Env.HealthCheckPort()
	if err != nil {
		return nil, 0, err
	}
	api, err := m.APIServerURL()
	if err != nil {
		return nil, 0, err
	}
	u := unit{Name: "hakube-health-agent", Description: "the load balancer's health check of this master",
		After: []string{"kube-apiserver.service"},
		Exec: []string{"/usr/bin/python3", healthAgent, "--listen=" + m.Host.Listen, "--port=" + strconv.Itoa(port),
			"--readyz=" + api + "/readyz", "--ca=" + vmcontract.CA.Path(m.Host.PKIDir)}}
	return []file{{healthAgent, "0644", string(program)}, {u.path(), "0644", u.render()}}, port, nil
}

func kubeletFiles(env *vmcontract.KubeEnv) ([]file, error) {
	config, err := vmcontract.KubeletConfig(env).Marshal()
	if err != nil {
		return nil, err
	}
	bootstrap, err := vmcontract.KubeletBootstrapKubeconfig(env, vmcontract.BootstrapTokenFile)
	if err != nil {
		return nil, err
	}
	u := unit{Name: "kubelet", Description: "the kubelet", After: []string{"containerd.service"}, Wants: []string{"containerd.service"},
		EnvFile: vmcontract.KubeletEnvFile, Expand: []string{vmcontract.KubeletNodeLabelsVar, vmcontract.KubeletProviderIDVar},
		Exec: append([]string{path.Join(binDir, "kubelet")}, vmcontract.Kubelet(env)...)}
	return []file{
		{vmcontract.KubeletConfigFile, "0644", string(config)},
		{vmcontract.BootstrapKubeconfig, "0600", string(bootstrap)},
		{u.path(), "0644", u.render()},
	}, nil
}

func kubeProxyFiles(env *vmcontract.KubeEnv) ([]file, error) {
	kubeconfig, err := vmcontract.KubeProxyKubeconfigFile(env)
	if err != nil {
		return nil, err
	}
	// kube-proxy waits for the kubelet's client certificate: until the
	// kubelet has bootstrapped it fails, and systemd starts it again.
	u := unit{Name: "kube-proxy", Description: "kube-proxy", After: []string{"kubelet.service"},
		Exec: append([]string{path.Join(binDir, "kube-proxy")}, vmcontract.KubeProxy(env)...)}
	return []file{{vmcontract.KubeProxyKubeconfig, "0600", string(kubeconfig)}, {u.path(), "0644", u.render()}}, nil
}

// conflist is the pods' CNI network: a bridge on this VM's alias range,
// which the script puts in place of $range at boot.
func conflist() string {
	type obj = map[string]any
	c := obj{
		"cniVersion": "1.0.0",
		"name":       "hakube",
		"plugins": []obj{
			{"type": "bridge", "bridge": "cbr0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"ipam": obj{"type": "host-local", "ranges": [][]obj{{{"subnet": "$range"}}}, "routes": []obj{{"dst": "0.0.0.0/0"}}}},
			{"type": "portmap", "capabilities": obj{"portMappings": true}},
		},
	}
	b, _ := json.MarshalIndent(c, "", "  ") // maps of strings and bools: cannot fail
	return string(b) + "\n"
}

func render(d *data) (string, error) {
	for _, f := range allFiles(d) {
		if slices.Contains(strings.Split(f.Text, "\n"), heredoc) {
			return "", fmt.Errorf("startup script: %s holds a line %s", f.Path, heredoc)
		}
	}
	src, err := scripts.ReadFile("scripts/bootstrap.sh.tmpl")
	if err != nil {
		return "", err
	}
	t, err := template.New("bootstrap").Option("missingkey=error").Funcs(template.FuncMap{
		"shq":  shellQuote,
		"join": strings.Join,
		"put": func(f file) string {
			text := f.Text
			if !strings.HasSuffix(text, "\n") {
				text += "\n"
			}
			return fmt.Sprintf("put_file %s \"$ROOT\"%s <<'%s'\n%s%s", f.Mode, shellQuote(f.Path), heredoc, text, heredoc)
		},
	}).Parse(string(src))
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return "", err
	}
	return b.String(), nil
}

func allFiles(d *data) []file {
	all := []file{d.Containerd, {cniConf, "0644", d.CNIConflist}, {"rendered kube-env", "", d.RenderedEnv}}
	for _, fs := range [][]file{d.Kubeconfigs, d.ControlPlane, d.HealthAgent, d.Kubelet, d.KubeProxy} {
		all = append(all, fs...)
	}
	return all
}

// shellQuote quotes a word for bash: nothing in it is expanded.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=@,+%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
