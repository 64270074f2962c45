package startup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hakube/hakube/internal/vmcontract"
)

// The harness that runs a rendered startup-script under bash with a root
// prefix (HAKUBE_ROOT) and PATH pointing at recorders (testdata/stub.sh)
// in place of everything that would change the machine, the metadata
// server and the release downloads.

// stubbed are the commands the script may call that act on the machine.
var stubbed = []string{"curl", "systemctl", "apt-get", "dpkg-query", "blkid", "mkfs.ext4", "mountpoint", "mount",
	"iptables", "ip", "modprobe", "sysctl", "sleep", "sha256sum", "tar"}

// coreutils are the plain file tools the script (and the recorder) use for
// real, on files under the root; nothing else is on PATH.
var coreutils = []string{"cat", "cp", "mkdir", "chmod", "mv", "rm", "cmp", "stat", "base64", "mktemp", "head", "tr",
	"grep", "touch", "gzip", "sha256sum", "tar"}

type vm struct {
	t                                  *testing.T
	script, root, log, state, fix, bin string
	real                               string
	kubeEnv                            *vmcontract.KubeEnv
	aliasRange                         string
	// the instance as the metadata server describes it
	project, zone, name, machineType string
}

func newVM(t *testing.T, script string) *vm {
	t.Helper()
	dir := t.TempDir()
	v := &vm{t: t, root: dir + "/root", log: dir + "/log", state: dir + "/state", fix: dir + "/fixtures",
		bin: dir + "/bin", real: dir + "/real", script: dir + "/startup-script"}
	for _, d := range []string{v.root + "/dev", v.root + "/sys/fs/cgroup", v.root + "/etc", v.root + "/usr/bin",
		v.log, v.state + "/enabled", v.fix, v.bin, v.real} {
		must(t, os.MkdirAll(d, 0o755))
	}
	// The recorder is copied so that its mode does not depend on a checkout.
	src, err := os.ReadFile("testdata/stub.sh")
	must(t, err)
	stub := dir + "/stub"
	must(t, os.WriteFile(stub, src, 0o755))
	for _, c := range stubbed {
		must(t, os.Symlink(stub, filepath.Join(v.bin, c)))
	}
	for _, c := range coreutils {
		p, err := exec.LookPath(c)
		if err != nil {
			t.Fatalf("the harness needs %s: %v", c, err)
		}
		must(t, os.Symlink(p, filepath.Join(v.real, c)))
	}
	// The machine as a stock Debian 12 GCE image has it: a serial console
	// (a file here, to read what was logged), cgroup v2, an fstab, python3,
	// the guest agent enabled and its local route for the alias range.
	v.write("dev/ttyS0", "", 0o644)
	must(t, os.Symlink("/dev/zero", v.root+"/dev/zero"))
	v.write("sys/fs/cgroup/cgroup.controllers", "cpu memory pids\n", 0o644)
	v.write("etc/fstab", "# /etc/fstab: static file system information.\nUUID=0000-ROOT / ext4 defaults 0 1\n", 0o644)
	v.write("usr/bin/python3", "#!/bin/sh\n", 0o755)
	v.enable("google-guest-agent.service")
	v.aliasRange = "10.64.3.0/24"
	must(t, os.WriteFile(v.state+"/local-route", []byte("local 10.64.3.0/24 dev ens4 proto 66 scope host\n"), 0o644))
	must(t, os.WriteFile(v.script, []byte(script), 0o755))
	v.releases()
	return v
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// write puts a file under the VM's root.
func (v *vm) write(rel, content string, mode fs.FileMode) {
	p := filepath.Join(v.root, rel)
	must(v.t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(v.t, os.WriteFile(p, []byte(content), mode))
}

func (v *vm) enable(unit string) { must(v.t, os.WriteFile(v.state+"/enabled/"+unit, nil, 0o644)) }

// metadata sets what the metadata server answers for a path
// (instance/attributes/kube-env); "" removes it (404).
func (v *vm) metadata(path, value string) {
	p := filepath.Join(v.fix, "metadata", path)
	if value == "" {
		must(v.t, os.RemoveAll(p))
		return
	}
	must(v.t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(v.t, os.WriteFile(p, []byte(value), 0o644))
}

func (v *vm) serve(url string, content []byte) {
	p := filepath.Join(v.fix, "downloads", strings.TrimPrefix(url, "https://"))
	must(v.t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(v.t, os.WriteFile(p, content, 0o644))
}

func fakeBinary(name string) []byte { return []byte("#!/bin/sh\necho fake " + name + "\n") }

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// releases serves the Kubernetes binaries with their .sha256 files, and
// etcd's tarball with the release's SHA256SUMS.
func (v *vm) releases() {
	for _, b := range masterBinaries {
		v.serve(kubeRelease+"/"+b, fakeBinary(b))
		v.serve(kubeRelease+"/"+b+".sha256", []byte(sum(fakeBinary(b))))
	}
	tarball := etcdTarball(v.t)
	name := "etcd-" + vmcontract.EtcdVersion + "-linux-amd64.tar.gz"
	v.serve(etcdRelease+"/"+name, tarball)
	v.serve(etcdRelease+"/SHA256SUMS", []byte(strings.Repeat("0", 64)+"  etcd-"+vmcontract.EtcdVersion+"-darwin-amd64.zip\n"+
		sum(tarball)+"  "+name+"\n"))
}

func etcdTarball(t testing.TB) []byte {
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	dir := "etcd-" + vmcontract.EtcdVersion + "-linux-amd64/"
	for _, f := range []string{"etcd", "etcdctl", "etcdutl", "README.md"} {
		body := fakeBinary(f)
		must(t, tw.WriteHeader(&tar.Header{Name: dir + f, Mode: 0o755, Size: int64(len(body)), Uid: 1000, Gid: 1000}))
		_, err := tw.Write(body)
		must(t, err)
	}
	must(t, tw.Close())
	must(t, gz.Close())
	return b.Bytes()
}

// boot sets up a master's or a node's metadata.
func (v *vm) bootMaster(tm testMaster) {
	v.kubeEnv = tm.env()
	v.metadata("instance/attributes/kube-env", v.kubeEnv.String())
	v.metadata("instance/attributes/kube-master-certs", testCerts().Encode())
	v.metadata("instance/network-interfaces/0/ip-aliases/0", v.aliasRange)
	v.instance(tm.zone, tm.name, "e2-standard-2")
	// A new, blank data disk (1 MiB of zeros is what the script checks).
	v.write("dev/disk/by-id/google-master-pd", "", 0o600)
	must(v.t, os.Truncate(v.root+"/dev/disk/by-id/google-master-pd", 4<<20))
}

func (v *vm) bootNode() {
	v.kubeEnv = nodeEnv()
	v.metadata("instance/attributes/kube-env", v.kubeEnv.String())
	v.metadata("instance/network-interfaces/0/ip-aliases/0", v.aliasRange)
	v.instance("europe-west1-d", "kubernetes-minion-group-x1z2", "n2-standard-4")
}

// instance sets what the metadata server says of the VM itself, in the
// form GCE answers (zone and machine type as paths with the project number).
func (v *vm) instance(zone, name, machineType string) {
	v.project, v.zone, v.name, v.machineType = "hakube-test.example.com:ha", zone, name, machineType
	v.metadata("project/project-id", v.project)
	v.metadata("instance/zone", "projects/123456789012/zones/"+zone)
	v.metadata("instance/name", name)
	v.metadata("instance/machine-type", "projects/123456789012/machineTypes/"+machineType)
}

// run boots the VM: runs the script once, as GCE's guest agent would.
func (v *vm) run() (exit int, output string) {
	v.t.Helper()
	for _, f := range []string{"calls", "downloads", "guest-attributes"} {
		must(v.t, os.WriteFile(filepath.Join(v.log, f), nil, 0o644))
	}
	cmd := exec.Command("/bin/bash", v.script)
	cmd.Env = []string{
		"PATH=" + v.bin + ":" + v.real,
		"HAKUBE_ROOT=" + v.root,
		"HAKUBE_TEST_LOG=" + v.log, "HAKUBE_TEST_STATE=" + v.state, "HAKUBE_TEST_FIXTURES=" + v.fix, "HAKUBE_TEST_REAL=" + v.real,
		"HOME=" + v.root, "TMPDIR=" + v.root + "/tmp",
	}
	must(v.t, os.MkdirAll(v.root+"/tmp", 0o755))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	case err != nil:
		v.t.Fatal(err)
	}
	return 0, string(out)
}

func (v *vm) lines(f string) []string {
	b, err := os.ReadFile(filepath.Join(v.log, f))
	must(v.t, err)
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// calls are the recorded commands ("systemctl restart etcd.service").
func (v *vm) calls(prefix string) []string {
	var out []string
	for _, l := range v.lines("calls") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// attributes are the values of guest attribute hakube/bootstrap, in order.
func (v *vm) attributes() []string {
	var out []string
	for _, l := range v.lines("guest-attributes") {
		path, value, _ := strings.Cut(l, "\t")
		if path != "instance/guest-attributes/"+vmcontract.GuestAttrBootstrap {
			v.t.Errorf("guest attribute at %s", path)
		}
		out = append(out, value)
	}
	return out
}

func (v *vm) downloads() []string {
	var out []string
	for _, l := range v.lines("downloads") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// serial is what the VM wrote to its serial console.
func (v *vm) serial() string { return v.read("dev/ttyS0") }

func (v *vm) read(rel string) string {
	b, err := os.ReadFile(filepath.Join(v.root, rel))
	if err != nil {
		v.t.Errorf("%v", err)
	}
	return string(b)
}

func (v *vm) exists(rel string) bool {
	_, err := os.Lstat(filepath.Join(v.root, rel))
	return err == nil
}

func (v *vm) mode(rel string) fs.FileMode {
	st, err := os.Stat(filepath.Join(v.root, rel))
	if err != nil {
		v.t.Errorf("%v", err)
		return 0
	}
	return st.Mode().Perm()
}

// steps lists the steps the serial console shows, in the order they began.
func steps(serial string) []string {
	var out []string
	for _, l := range strings.Split(serial, "\n") {
		rest, ok := strings.CutPrefix(l, "hakube-bootstrap: ")
		if !ok {
			continue
		}
		step, _, _ := strings.Cut(rest, ": ")
		if len(out) == 0 || out[len(out)-1] != step {
			out = append(out, step)
		}
	}
	return out
}

// entry is what a second run must leave exactly as it was.
type entry struct {
	Mode  fs.FileMode
	Size  int64
	MTime int64
	Inode uint64
	Sum   string
}

// snapshot is every file and directory under the root but the serial
// console and the script's scratch directory (RUN_DIR).
func (v *vm) snapshot() map[string]entry {
	out := map[string]entry{}
	must(v.t, filepath.WalkDir(v.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(v.root, p)
		if rel == "dev/ttyS0" || rel == "run" || strings.HasPrefix(rel, "run/") || rel == "dev/zero" {
			return nil
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := entry{Mode: info.Mode(), Size: info.Size(), MTime: info.ModTime().UnixNano(), Inode: info.Sys().(*syscall.Stat_t).Ino}
		if info.Mode().IsRegular() && info.Size() < 1<<20 {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.Sum = sum(b)
		}
		out[rel] = e
		return nil
	}))
	return out
}
