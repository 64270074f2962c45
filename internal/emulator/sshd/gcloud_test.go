package sshd_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/emulator/sshd"
)

// TestGcloudComputeSSH is the HA guide's `gcloud compute ssh <vm> --zone <z>
// --command 'sudo halt'`, with the installed gcloud and OpenSSH against the
// emulator and its VMs' SSH servers on port 22: gcloud makes a key, adds
// it to the project's ssh-keys (projects.setCommonInstanceMetadata),
// trusts the host key the VM published as guest attributes, waits for the
// key to work and runs the command; the VM is TERMINATED. --internal-ip:
// the external IP's port 22 reaches the VM through the data plane's NAT,
// which is not this package's (the VM's internal IP is where sshd listens).
func TestGcloudComputeSSH(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: gcloud takes several seconds per command")
	}
	bin, err := exec.LookPath("gcloud")
	if err != nil {
		t.Fatal("gcloud is not on PATH: this test drives the real gcloud CLI and OpenSSH against the emulator; install the Google Cloud CLI")
	}
	e := startEmu(t, extraProject)
	attachSSH(t, e, extraProject, sshd.NewExtra(sshd.ExtraConfig{Port: sshd.DefaultPort}))
	vm := insertVM(t, e, "master-1", map[string]string{"enable-guest-attributes": "TRUE"})

	insertVM(t, e, "node-1", nil)
	g := &gcloudSSH{bin: bin, endpoint: e.endpoint, home: t.TempDir(), config: t.TempDir()}
	if _, stderr, err := g.run("master-1", "sudo halt"); err != nil {
		t.Fatalf("gcloud compute ssh master-1 --command 'sudo halt': %v\n%s", err, stderr)
	}
	waitStatus(t, e, "master-1", "TERMINATED")

	// gcloud trusted the key the VM published, under its alias compute.<id>.
	known, err := os.ReadFile(filepath.Join(g.home, ".ssh", "google_compute_known_hosts"))
	if err != nil {
		t.Fatal(err)
	}
	ga, err := e.svc.Instances.GetGuestAttributes(extraProject, extraZone, "master-1").QueryPath("hostkeys/ssh-ed25519").Do()
	if err != nil {
		t.Fatal(err)
	}
	want := "compute." + strconv.FormatUint(vm.Id, 10) + " ssh-ed25519 " + ga.QueryValue.Items[0].Value
	if !strings.Contains(string(known), want) {
		t.Errorf("google_compute_known_hosts:\n%s\nlacks %q", known, want)
	}
	// Its key went into the project's metadata as tester's.
	p, err := e.svc.Projects.Get(extraProject).Do()
	if err != nil {
		t.Fatal(err)
	}
	var keys string
	for _, it := range p.CommonInstanceMetadata.Items {
		if it.Key == "ssh-keys" {
			keys = *it.Value
		}
	}
	if !strings.HasPrefix(keys, "tester:ssh-rsa ") {
		t.Errorf("project ssh-keys %q, want gcloud's key for tester", keys)
	}

	// A VM without guest attributes (hakube's nodes): gcloud has no host
	// key to trust, so it first checks the VM's instance id over SSH.
	out, stderr, err := g.run("node-1", "hostname")
	if err != nil || out != "node-1\n" {
		t.Errorf("gcloud compute ssh node-1 --command hostname: %q, %v\n%s", out, err, stderr)
	}
}

// gcloudSSH runs gcloud compute ssh with its own HOME (~/.ssh) and
// configuration.
type gcloudSSH struct {
	bin, endpoint, home, config string
}

func (g *gcloudSSH) run(vm, command string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.bin, "compute", "ssh", vm, "--zone", extraZone, "--internal-ip",
		"--command", command, "--quiet", "--verbosity=debug", "--log-http")
	cmd.Env = append(os.Environ(),
		"HOME="+g.home, "USER=tester", "LOGNAME=tester", "SSH_AUTH_SOCK=",
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE="+g.endpoint,
		"CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true",
		"CLOUDSDK_CORE_PROJECT="+extraProject,
		"CLOUDSDK_CONFIG="+g.config,
		"CLOUDSDK_CORE_DISABLE_PROMPTS=1",
		"CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true",
		"CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true",
		"CLOUDSDK_SURVEY_DISABLE_PROMPTS=true",
		"CLOUDSDK_CORE_CHECK_GCE_METADATA=false",
		"CLOUDSDK_CORE_DISABLE_FILE_LOGGING=true",
	)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}
