package startup

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hakube/hakube/internal/vmcontract"
)

// Each failure stops the script at its step, reports "failed at <step>:
// <why>" as the guest attribute, and runs nothing after it.
func TestFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		node  bool
		setup func(v *vm)
		// replace swaps a recorder for a script of the test's own
		replace map[string]string
		step    string
		reason  string // in the reported reason
		// after the failure: none of these calls was made, none of these
		// files exists
		noCalls []string
		noFiles []string
	}{
		{
			name: "a Kubernetes binary whose checksum is wrong",
			setup: func(v *vm) {
				v.serve(kubeRelease+"/kubelet", []byte("tampered\n"))
			},
			step: "install", reason: "kubelet: checksum mismatch (got ",
			noCalls: []string{"systemctl", "mkfs.ext4", "tar"},
			noFiles: []string{"usr/local/bin/kubelet", "usr/local/bin/.kubelet.part", "usr/local/bin/kube-proxy", "var/lib/hakube/sha256/kubelet-" + vmcontract.KubeVersion},
		},
		{
			name: "etcd's tarball whose checksum is wrong",
			setup: func(v *vm) {
				v.serve(etcdRelease+"/etcd-"+vmcontract.EtcdVersion+"-linux-amd64.tar.gz", []byte("tampered\n"))
			},
			step: "install", reason: "etcd: checksum mismatch (got ",
			noCalls: []string{"systemctl", "tar"},
			noFiles: []string{"usr/local/bin/etcd", "var/lib/hakube/download"},
		},
		{
			name: "a .sha256 that is no checksum",
			node: true,
			setup: func(v *vm) {
				v.serve(kubeRelease+"/kubectl.sha256", []byte("<html>not found</html>"))
			},
			step: "install", reason: "kubectl.sha256 holds no SHA-256",
			noCalls: []string{"systemctl"},
			noFiles: []string{"usr/local/bin/kubectl"},
		},
		{
			name: "kube-env changed since the script was rendered",
			setup: func(v *vm) {
				v.kubeEnv.Set(vmcontract.EnvAPIServerPort, "6443")
				v.metadata("instance/attributes/kube-env", v.kubeEnv.String())
			},
			step: "metadata", reason: "kube-env APISERVER_PORT differs from the value this startup-script was rendered with",
			noCalls: []string{"apt-get", "systemctl", "sha256sum"},
		},
		{
			name: "kube-env with a key the script was not rendered with",
			node: true,
			setup: func(v *vm) {
				v.kubeEnv.Set("EXTRA", "1")
				v.metadata("instance/attributes/kube-env", v.kubeEnv.String())
			},
			step: "metadata", reason: "kube-env has EXTRA, which this startup-script was not rendered with",
			noCalls: []string{"apt-get"},
		},
		{
			name:  "no kube-env",
			node:  true,
			setup: func(v *vm) { v.metadata("instance/attributes/kube-env", "") },
			step:  "metadata", reason: "cannot read metadata kube-env",
			noCalls: []string{"apt-get"},
		},
		{
			name:  "a malformed kube-env line",
			node:  true,
			setup: func(v *vm) { v.metadata("instance/attributes/kube-env", v.kubeEnv.String()+"no colon here\n") },
			step:  "metadata", reason: "kube-env line 13: want KEY: 'value'",
		},
		{
			name:  "no kube-master-certs",
			setup: func(v *vm) { v.metadata("instance/attributes/kube-master-certs", "") },
			step:  "metadata", reason: "cannot read metadata kube-master-certs",
		},
		{
			name: "kube-master-certs without a key",
			setup: func(v *vm) {
				c := testCerts()
				delete(c, vmcontract.SchedulerKey.Key)
				v.metadata("instance/attributes/kube-master-certs", c.Encode())
			},
			step: "certs", reason: "kube-master-certs lacks SCHEDULER_KEY",
			noCalls: []string{"mkfs.ext4", "systemctl start etcd", "systemctl restart etcd"},
			noFiles: []string{"etc/systemd/system/etcd.service"},
		},
		{
			name: "a data disk with another filesystem",
			setup: func(v *vm) {
				must(v.t, os.WriteFile(v.state+"/fs-type", []byte("xfs\n"), 0o644))
			},
			step: "disk", reason: "the data disk holds a xfs filesystem, not ext4: not touching it",
			noCalls: []string{"mkfs.ext4", "mount ", "systemctl restart etcd"},
		},
		{
			name: "a data disk with no filesystem blkid knows, not blank",
			setup: func(v *vm) {
				v.write("dev/disk/by-id/google-master-pd", "LUKS\xba\xbe someone's data", 0o600)
			},
			step: "disk", reason: "not blank: not formatting it",
			noCalls: []string{"mkfs.ext4", "mount "},
		},
		{
			name: "no data disk",
			setup: func(v *vm) {
				must(v.t, os.Remove(v.root+"/dev/disk/by-id/google-master-pd"))
			},
			step: "disk", reason: "no data disk at /dev/disk/by-id/google-master-pd (device name master-pd)",
			noCalls: []string{"mkfs.ext4", "systemctl restart etcd"},
		},
		{
			name:  "no alias IP range",
			node:  true,
			setup: func(v *vm) { v.metadata("instance/network-interfaces/0/ip-aliases/0", "") },
			step:  "network", reason: "no alias IP range (metadata instance/network-interfaces/0/ip-aliases/0)",
			noCalls: []string{"systemctl restart kubelet", "iptables"},
			noFiles: []string{"etc/cni/net.d/10-hakube.conflist", "etc/systemd/system/kubelet.service"},
		},
		{
			name:  "an alias IP range outside the pods' range",
			setup: func(v *vm) { v.metadata("instance/network-interfaces/0/ip-aliases/0", "10.200.3.0/24") },
			step:  "network", reason: "alias IP range 10.200.3.0/24 is not inside CLUSTER_IP_RANGE 10.64.0.0/14",
			noFiles: []string{"etc/cni/net.d/10-hakube.conflist"},
		},
		{
			name:  "an alias IP range that is not a CIDR",
			node:  true,
			setup: func(v *vm) { v.metadata("instance/network-interfaces/0/ip-aliases/0", "10.64.3.0") },
			step:  "network", reason: "alias IP range '10.64.3.0' is not an IPv4 CIDR",
		},
		{
			name:  "cgroup v1",
			node:  true,
			setup: func(v *vm) { must(v.t, os.Remove(v.root+"/sys/fs/cgroup/cgroup.controllers")) },
			step:  "kubelet", reason: "no cgroup v2 at /sys/fs/cgroup",
			noFiles: []string{"etc/kubernetes/bootstrap-token"},
		},
		{
			name:  "no zone in the metadata",
			node:  true,
			setup: func(v *vm) { v.metadata("instance/zone", "") },
			step:  "kubelet", reason: "cannot read metadata instance/zone",
			noCalls: []string{"systemctl restart kubelet"},
			noFiles: []string{"etc/kubernetes/kubelet.env", "etc/systemd/system/kubelet.service"},
		},
		{
			name:  "a zone that is not one",
			node:  true,
			setup: func(v *vm) { v.metadata("instance/zone", "projects/1/zones/europe-west1-d\nx") },
			step:  "kubelet", reason: "is not a zone",
			noFiles: []string{"etc/kubernetes/kubelet.env"},
		},
		{
			name:    "apt-get failing",
			node:    true,
			replace: map[string]string{"apt-get": "echo \"apt-get $*\" >>\"$HAKUBE_TEST_LOG/calls\"\nexit 100"},
			step:    "install", reason: "apt-get update failed",
			noCalls: []string{"systemctl"},
		},
		{
			name:    "a command failing without its own message",
			node:    true,
			replace: map[string]string{"modprobe": "exit 1"},
			step:    "network", reason: "exit 1 from: modprobe -a br_netfilter overlay",
			noFiles: []string{"etc/sysctl.d/99-hakube.conf"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var v *vm
			if tc.node {
				v = newVM(t, mustNode(t, nodeEnv()))
				v.bootNode()
			} else {
				v = newVM(t, mustMaster(t, firstMaster.master()))
				v.bootMaster(firstMaster)
			}
			for c, body := range tc.replace {
				must(t, os.Remove(v.bin+"/"+c)) // a symlink to the recorder
				must(t, os.WriteFile(v.bin+"/"+c, []byte("#!/bin/bash\n"+body+"\n"), 0o755))
			}
			if tc.setup != nil {
				tc.setup(v)
			}
			rc, out := v.run()
			if rc == 0 {
				t.Fatalf("the script succeeded:\n%s", out)
			}
			attrs := v.attributes()
			last := attrs[len(attrs)-1]
			wantPrefix := vmcontract.BootstrapFailed + tc.step + ": "
			if !strings.HasPrefix(last, wantPrefix) || !strings.Contains(last, tc.reason) {
				t.Errorf("reported %q, want %q…%q", last, wantPrefix, tc.reason)
			}
			if got := vmcontract.ParseBootstrap(last); got.State != "failed" || got.Step != tc.step {
				t.Errorf("ParseBootstrap(%q) = %+v", last, got)
			}
			// The step that failed is the last one that began.
			s := steps(v.serial())
			if diff := cmp.Diff(tc.step, s[len(s)-1]); diff != "" {
				t.Errorf("last step on the console (-want +got):\n%s\n%s", diff, v.serial())
			}
			if attrs[len(attrs)-2] != vmcontract.BootstrapRunning+tc.step {
				t.Errorf("before the failure: %q", attrs)
			}
			for _, c := range tc.noCalls {
				if got := v.calls(c); len(got) > 0 {
					t.Errorf("called after the failure: %q", got)
				}
			}
			for _, f := range tc.noFiles {
				if v.exists(f) {
					t.Errorf("%s exists after the failure", f)
				}
			}
			checkNoSecrets(t, v, "failure")
		})
	}
}
