package startup

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hakube/hakube/internal/vmcontract"
)

var (
	masterSteps = []string{"metadata", "install", "containerd", "certs", "disk", "control-plane", "health-agent",
		"network", "kubelet", "kube-proxy", "guest-agent", "done"}
	nodeSteps = []string{"metadata", "install", "containerd", "network", "kubelet", "kube-proxy", "done"}
)

// running is what a successful boot reports, step by step.
func running(steps []string) []string {
	var out []string
	for _, s := range steps[:len(steps)-1] {
		out = append(out, vmcontract.BootstrapRunning+s)
	}
	return append(out, vmcontract.BootstrapOK)
}

func TestMasterBoots(t *testing.T) {
	for _, tm := range []testMaster{firstMaster, replica} {
		t.Run(tm.name, func(t *testing.T) {
			t.Parallel()
			m := tm.master()
			v := newVM(t, mustMaster(t, m))
			v.bootMaster(tm)
			if rc, out := v.run(); rc != 0 {
				t.Fatalf("exit %d:\n%s", rc, out)
			}
			if diff := cmp.Diff(masterSteps, steps(v.serial())); diff != "" {
				t.Errorf("steps on the serial console (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(running(masterSteps), v.attributes()); diff != "" {
				t.Errorf("guest attribute %s (-want +got):\n%s", vmcontract.GuestAttrBootstrap, diff)
			}
			checkMasterFiles(t, v, m)
			checkMasterCalls(t, v)
			checkNoSecrets(t, v, "first boot")
			verifyUnits(t, v)

			// A reboot runs the script again: nothing is downloaded,
			// formatted, mounted, written or restarted again.
			before, logged := v.snapshot(), len(v.serial())
			if rc, out := v.run(); rc != 0 {
				t.Fatalf("second run: exit %d:\n%s", rc, out)
			}
			if diff := cmp.Diff(before, v.snapshot()); diff != "" {
				t.Errorf("the second run changed files (-before +after):\n%s", diff)
			}
			checkQuietRerun(t, v, v.serial()[logged:])
			if diff := cmp.Diff(running(masterSteps), v.attributes()); diff != "" {
				t.Errorf("second run's guest attribute (-want +got):\n%s", diff)
			}
			checkNoSecrets(t, v, "second boot")
		})
	}
}

func checkMasterFiles(t *testing.T, v *vm, m vmcontract.Master) {
	t.Helper()
	for _, dir := range []string{"etc/kubernetes/pki", "etc/kubernetes/pki/etcd"} {
		if got := v.mode(dir); got != 0o700 {
			t.Errorf("%s is %o, want 0700", dir, got)
		}
	}
	certs := testCerts()
	for _, it := range vmcontract.MasterItems() {
		rel := strings.TrimPrefix(it.Path(m.Host.PKIDir), "/")
		if got := v.mode(rel); got != 0o600 {
			t.Errorf("%s is %o, want 0600", rel, got)
		}
		if got := v.read(rel); got != string(certs.Get(it)) {
			t.Errorf("%s holds %q, want kube-master-certs' %s", rel, got, it.Key)
		}
	}
	kubeconfigs, err := m.Kubeconfigs()
	must(t, err)
	for p, want := range kubeconfigs {
		rel := strings.TrimPrefix(p, "/")
		if v.mode(rel) != 0o600 || v.read(rel) != string(want) {
			t.Errorf("%s: mode %o, content differs from vmcontract's: %v", rel, v.mode(rel), v.read(rel) != string(want))
		}
	}
	// Every unit runs exactly vmcontract's command line.
	components, err := m.Components()
	must(t, err)
	for _, c := range components {
		got := execStart(t, v.read("etc/systemd/system/"+c.Name+".service"))
		if diff := cmp.Diff(append([]string{"/usr/local/bin/" + c.Name}, c.Args...), got); diff != "" {
			t.Errorf("%s's ExecStart (-vmcontract +unit):\n%s", c.Name, diff)
		}
	}
	etcd := v.read("etc/systemd/system/etcd.service")
	if !strings.Contains(etcd, "RequiresMountsFor=/mnt/disks/master-pd\n") {
		t.Errorf("etcd may start without its data disk:\n%s", etcd)
	}
	if !strings.Contains(v.read("etc/systemd/system/kube-apiserver.service"), "After=etcd.service\n") {
		t.Error("kube-apiserver is not ordered after etcd")
	}
	health := execStart(t, v.read("etc/systemd/system/hakube-health-agent.service"))
	want := []string{"/usr/bin/python3", "/usr/local/lib/hakube/health-agent.py", "--listen=0.0.0.0", "--port=3990",
		"--readyz=https://127.0.0.1:443/readyz", "--ca=/etc/kubernetes/pki/ca.crt"}
	if diff := cmp.Diff(want, health); diff != "" {
		t.Errorf("health agent's ExecStart (-want +got):\n%s", diff)
	}
	checkKubeletFiles(t, v)
	// The data disk: formatted once, mounted, in fstab by UUID, the image's
	// own lines kept.
	fstab := v.read("etc/fstab")
	if !strings.Contains(fstab, "UUID=0000-ROOT / ext4 defaults 0 1\n") ||
		!strings.HasSuffix(fstab, "UUID=5f1e2d3c-aaaa-4bbb-8ccc-0123456789ab /mnt/disks/master-pd ext4 defaults,discard,nofail 0 2\n") {
		t.Errorf("fstab:\n%s", fstab)
	}
	for _, b := range []string{"etcd", "etcdctl", "kube-apiserver", "kubectl"} {
		if v.mode("usr/local/bin/"+b) != 0o755 || v.read("usr/local/bin/"+b) != string(fakeBinary(b)) {
			t.Errorf("/usr/local/bin/%s not installed 0755 from the verified download", b)
		}
	}
}

// checkKubeletFiles checks what every VM writes for its kubelet,
// kube-proxy, containerd and pods.
func checkKubeletFiles(t *testing.T, v *vm) {
	t.Helper()
	env := v.kubeEnv
	if diff := cmp.Diff(append([]string{"/usr/local/bin/kubelet"}, vmcontract.Kubelet(env)...), execStart(t, v.read("etc/systemd/system/kubelet.service"))); diff != "" {
		t.Errorf("kubelet's ExecStart (-vmcontract +unit):\n%s", diff)
	}
	if diff := cmp.Diff(append([]string{"/usr/local/bin/kube-proxy"}, vmcontract.KubeProxy(env)...), execStart(t, v.read("etc/systemd/system/kube-proxy.service"))); diff != "" {
		t.Errorf("kube-proxy's ExecStart (-vmcontract +unit):\n%s", diff)
	}
	config, err := vmcontract.KubeletConfig(env).Marshal()
	must(t, err)
	bootstrap, err := vmcontract.KubeletBootstrapKubeconfig(env, vmcontract.BootstrapTokenFile)
	must(t, err)
	proxy, err := vmcontract.KubeProxyKubeconfigFile(env)
	must(t, err)
	for _, f := range []struct {
		rel  string
		mode os.FileMode
		want string
	}{
		{"var/lib/kubelet/config.yaml", 0o644, string(config)},
		{"etc/kubernetes/bootstrap-kubelet.conf", 0o600, string(bootstrap)},
		{"etc/kubernetes/bootstrap-token", 0o600, testToken},
		{"etc/kubernetes/kubelet.env", 0o644, vmcontract.KubeletNodeLabelsVar + "=" + vmcontract.KubeletNodeLabels(v.zone, v.machineType) + "\n" +
			vmcontract.KubeletProviderIDVar + "=" + vmcontract.ProviderID(v.project, v.zone, v.name) + "\n"},
		{"etc/kubernetes/kube-proxy.conf", 0o600, string(proxy)},
		{"etc/kubernetes/pki/ca.crt", 0o600, string(testCA)},
	} {
		if got := v.mode(f.rel); got != f.mode {
			t.Errorf("%s is %o, want %o", f.rel, got, f.mode)
		}
		if diff := cmp.Diff(f.want, v.read(f.rel)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", f.rel, diff)
		}
	}
	if got := v.read("etc/containerd/config.toml"); !strings.Contains(got, "SystemdCgroup = true") || !strings.Contains(got, `bin_dir = "/usr/lib/cni"`) {
		t.Errorf("containerd's config:\n%s", got)
	}
	var cni struct {
		Plugins []struct {
			Type      string
			IsGateway bool
			IPAM      struct {
				Type   string
				Ranges [][]struct{ Subnet string }
			}
		}
	}
	if err := json.Unmarshal([]byte(v.read("etc/cni/net.d/10-hakube.conflist")), &cni); err != nil {
		t.Fatalf("CNI conflist: %v", err)
	}
	if len(cni.Plugins) != 2 || cni.Plugins[0].Type != "bridge" || !cni.Plugins[0].IsGateway || cni.Plugins[0].IPAM.Type != "host-local" ||
		cni.Plugins[0].IPAM.Ranges[0][0].Subnet != v.aliasRange || cni.Plugins[1].Type != "portmap" {
		t.Errorf("CNI conflist: %+v", cni)
	}
	if got := v.read("etc/default/instance_configs.cfg"); !strings.HasSuffix(got, "[IpForwarding]\nip_aliases = false\n") {
		t.Errorf("the guest agent still routes alias ranges locally:\n%s", got)
	}
	rule := "POSTROUTING -s " + v.aliasRange + " ! -d 10.64.0.0/14 -m comment --comment hakube: pod traffic leaving the pod range -j MASQUERADE"
	if got, err := os.ReadFile(v.state + "/iptables"); err != nil || string(got) != rule+"\n" {
		t.Errorf("iptables nat rules: %q, want %q", got, rule)
	}
	if v.exists("../state/local-route") {
		t.Error("the guest agent's local route for the alias range is still there")
	}
}

func checkMasterCalls(t *testing.T, v *vm) {
	t.Helper()
	var want []string
	for _, b := range masterBinaries {
		want = append(want, kubeRelease+"/"+b+".sha256", kubeRelease+"/"+b)
	}
	want = append(want, etcdRelease+"/SHA256SUMS", etcdRelease+"/etcd-"+vmcontract.EtcdVersion+"-linux-amd64.tar.gz")
	if diff := cmp.Diff(want, v.downloads()); diff != "" {
		t.Errorf("downloads (-want +got):\n%s", diff)
	}
	apt := "apt-get -q -o DPkg::Lock::Timeout=300 "
	if diff := cmp.Diff([]string{apt + "update", apt + "install -y --no-install-recommends containerd containernetworking-plugins"}, v.calls("apt-get")); diff != "" {
		t.Errorf("apt-get (-want +got):\n%s", diff)
	}
	if got := v.calls("mkfs.ext4"); len(got) != 1 || !strings.HasSuffix(got[0], "/dev/disk/by-id/google-master-pd") {
		t.Errorf("mkfs.ext4 calls: %q", got)
	}
	if got := v.calls("mount "); len(got) != 1 || !strings.HasSuffix(got[0], "/dev/disk/by-id/google-master-pd "+v.root+"/mnt/disks/master-pd") {
		t.Errorf("mount calls: %q", got)
	}
	// Units start in order, each after its files are in place.
	var starts []string
	for _, c := range v.calls("systemctl restart") {
		starts = append(starts, strings.TrimPrefix(c, "systemctl restart "))
	}
	wantStarts := []string{"containerd.service", "etcd.service", "kube-apiserver.service", "kube-controller-manager.service",
		"kube-scheduler.service", "hakube-health-agent.service", "google-guest-agent.service", "kubelet.service", "kube-proxy.service"}
	if diff := cmp.Diff(wantStarts, starts); diff != "" {
		t.Errorf("services (re)started (-want +got):\n%s", diff)
	}
	if got := v.calls("ip -4 route del"); len(got) != 1 {
		t.Errorf("local route removals: %q", got)
	}
}

// checkQuietRerun: a second run reads and checks, and changes nothing.
func checkQuietRerun(t *testing.T, v *vm, serial string) {
	t.Helper()
	if got := v.downloads(); len(got) > 0 {
		t.Errorf("the second run downloaded %q", got)
	}
	for _, c := range []string{"apt-get", "mkfs.ext4", "mount ", "systemctl restart", "systemctl daemon-reload", "iptables -w -t nat -A", "ip -4 route del"} {
		if got := v.calls(c); len(got) > 0 {
			t.Errorf("the second run called %q", got)
		}
	}
	if strings.Contains(serial, ": wrote /") {
		t.Errorf("the second run logged a write:\n%s", serial)
	}
}

// checkNoSecrets: no key, certificate body or token on the console or in
// any command line.
func checkNoSecrets(t *testing.T, v *vm, when string) {
	t.Helper()
	secrets := []string{testToken, strings.Split(testToken, ".")[1]}
	for _, it := range vmcontract.MasterItems() {
		pem := testCerts().Get(it)
		secrets = append(secrets, base64.StdEncoding.EncodeToString(pem), strings.Split(string(pem), "\n")[1])
	}
	calls, err := os.ReadFile(filepath.Join(v.log, "calls"))
	must(t, err)
	for _, s := range secrets {
		for where, text := range map[string]string{"the serial console": v.serial(), "a command line": string(calls)} {
			if strings.Contains(text, s) {
				t.Errorf("%s: a secret (%.12s…) is in %s", when, s, where)
			}
		}
	}
}

// verifyUnits has systemd 252 (Debian 12's) check every unit written, when
// systemd-analyze is here.
func verifyUnits(t *testing.T, v *vm) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("no systemd-analyze: units not verified by systemd")
		return
	}
	// systemd looks for the targets the units name under the same root.
	must(t, os.MkdirAll(v.root+"/usr/lib/systemd", 0o755))
	if _, err := os.Stat("/lib/systemd/system/multi-user.target"); err != nil {
		t.Log("no systemd units on this machine: units not verified by systemd")
		return
	}
	must(t, os.Symlink("/lib/systemd/system", v.root+"/usr/lib/systemd/system"))
	units, err := filepath.Glob(v.root + "/etc/systemd/system/*.service")
	must(t, err)
	if len(units) < 2 {
		t.Fatalf("units: %q", units)
	}
	for _, u := range units {
		if out, err := exec.Command(analyze, "verify", "--root="+v.root, filepath.Base(u)).CombinedOutput(); err != nil {
			t.Errorf("systemd-analyze verify %s: %v\n%s", filepath.Base(u), err, out)
		}
	}
	must(t, os.Remove(v.root+"/usr/lib/systemd/system"))
}

func TestNodeBoots(t *testing.T) {
	v := newVM(t, mustNode(t, nodeEnv()))
	v.bootNode()
	if rc, out := v.run(); rc != 0 {
		t.Fatalf("exit %d:\n%s", rc, out)
	}
	if diff := cmp.Diff(nodeSteps, steps(v.serial())); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(running(nodeSteps), v.attributes()); diff != "" {
		t.Errorf("guest attribute (-want +got):\n%s", diff)
	}
	checkKubeletFiles(t, v)
	var want []string
	for _, b := range nodeBinaries {
		want = append(want, kubeRelease+"/"+b+".sha256", kubeRelease+"/"+b)
	}
	if diff := cmp.Diff(want, v.downloads()); diff != "" {
		t.Errorf("downloads (-want +got):\n%s", diff)
	}
	for _, absent := range []string{"usr/local/bin/etcd", "usr/local/bin/kube-apiserver", "etc/systemd/system/etcd.service", "mnt/disks"} {
		if v.exists(absent) {
			t.Errorf("a node has %s", absent)
		}
	}
	if v.mode("etc/kubernetes/pki") != 0o700 {
		t.Errorf("pki is %o", v.mode("etc/kubernetes/pki"))
	}
	checkNoSecrets(t, v, "first boot")
	verifyUnits(t, v)

	before, logged := v.snapshot(), len(v.serial())
	if rc, out := v.run(); rc != 0 {
		t.Fatalf("second run: exit %d:\n%s", rc, out)
	}
	if diff := cmp.Diff(before, v.snapshot()); diff != "" {
		t.Errorf("the second run changed files (-before +after):\n%s", diff)
	}
	checkQuietRerun(t, v, v.serial()[logged:])
}

// A master on an image without GCE's guest agent boots, warning that the
// load balancer's traffic will not reach it.
func TestMasterWithoutGuestAgent(t *testing.T) {
	v := newVM(t, mustMaster(t, firstMaster.master()))
	v.bootMaster(firstMaster)
	must(t, os.Remove(v.state+"/enabled/google-guest-agent.service"))
	if rc, out := v.run(); rc != 0 {
		t.Fatalf("exit %d:\n%s", rc, out)
	}
	if !strings.Contains(v.serial(), "hakube-bootstrap: guest-agent: warning: google-guest-agent is not enabled") {
		t.Errorf("no warning:\n%s", v.serial())
	}
	if got := v.calls("systemctl restart google-guest-agent"); len(got) > 0 {
		t.Errorf("restarted a disabled agent: %q", got)
	}
	if got := v.attributes(); got[len(got)-1] != vmcontract.BootstrapOK {
		t.Errorf("reported %q", got)
	}
}

// A VM whose guest attributes are off still boots; it says why it cannot
// report, once.
func TestNodeBootsWithoutGuestAttributes(t *testing.T) {
	v := newVM(t, mustNode(t, nodeEnv()))
	v.bootNode()
	must(t, os.WriteFile(v.fix+"/guest-attributes-off", nil, 0o644))
	if rc, out := v.run(); rc != 0 {
		t.Fatalf("exit %d:\n%s", rc, out)
	}
	if n := strings.Count(v.serial(), "warning: cannot set guest attribute hakube/bootstrap"); n != 1 {
		t.Errorf("%d warnings about guest attributes, want 1:\n%s", n, v.serial())
	}
}

func TestExecStartRoundTrip(t *testing.T) {
	args := []string{"/usr/local/bin/x", "plain", "--a=b c", "it's", `say "hi"`, `back\slash`, "100%", "$HOME", "${X}", ";", "--x=;", "", "tab\there", "*,glob"}
	u := unit{Name: "x", Description: "x", Exec: args}
	if diff := cmp.Diff(args, execStart(t, u.render())); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze")
	}
	dir := t.TempDir()
	must(t, os.MkdirAll(dir+"/etc/systemd/system", 0o755))
	must(t, os.MkdirAll(dir+"/usr/local/bin", 0o755))
	must(t, os.MkdirAll(dir+"/usr/lib/systemd", 0o755))
	must(t, os.Symlink("/lib/systemd/system", dir+"/usr/lib/systemd/system"))
	must(t, os.WriteFile(dir+"/usr/local/bin/x", []byte("#!/bin/sh\n"), 0o755))
	must(t, os.WriteFile(dir+"/etc/systemd/system/x.service", []byte(u.render()), 0o644))
	if out, err := exec.Command(analyze, "verify", "--root="+dir, "x.service").CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze rejects the quoting: %v\n%s", err, out)
	}
}

// execStart reads a unit's ExecStart= back into words as systemd.service(5)
// says systemd does: continued lines, double quotes with C escapes, "\;",
// then %% and $$.
func execStart(t *testing.T, unitText string) []string {
	t.Helper()
	var line string
	lines := strings.Split(unitText, "\n")
	for i := 0; i < len(lines); i++ {
		rest, ok := strings.CutPrefix(lines[i], "ExecStart=")
		if !ok {
			continue
		}
		line = rest
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, `\`) + " " + lines[i]
		}
		break
	}
	if line == "" {
		t.Fatalf("no ExecStart in:\n%s", unitText)
	}
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	unescape := map[byte]string{'\\': `\`, '"': `"`, 'n': "\n", 't': "\t", ';': ";", '\'': "'"}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && i+1 < len(line):
			i++
			s, ok := unescape[line[i]]
			if !ok {
				t.Fatalf("unexpected escape \\%c in %q", line[i], line)
			}
			w.WriteString(s)
			inWord = true
		case c == '"' && !quoted && !inWord:
			quoted, inWord = true, true
		case c == '"' && quoted:
			quoted = false
		case (c == ' ' || c == '\t') && !quoted:
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quotes in %q", line)
	}
	if inWord {
		words = append(words, w.String())
	}
	for i := range words {
		words[i] = strings.NewReplacer("%%", "%", "$$", "$").Replace(words[i])
	}
	return slices.Clip(words)
}
