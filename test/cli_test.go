// Package test runs the built binaries as users and CI scripts run them.
package test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/emulator/emulatortest"
	"github.com/hakube/hakube/internal/emulator/emulatortest/kubevm"
)

// cliSSHPort is the emulated VMs' SSH port (no root needed).
const cliSSHPort = "2222"

// cliEmulator starts gce-emulator at realistic latency (sped up) on loopback
// ranges no other test process uses; its masters run the real control plane.
func cliEmulator(t *testing.T) (string, *emulator.Control) {
	t.Helper()
	ext, internal := emulatortest.ClaimRanges(t)
	endpoint := startEmulator(t, "--project", "cli-project", "--latency", "realistic", "--time-scale", "0.01",
		"--external-range", ext.String(), "--internal-range", internal.String(),
		"--kube-binary", kubevm.KubeBinary(t), "--state-dir", t.TempDir(), "--ssh-port", cliSSHPort)
	return endpoint, emulator.NewControl(endpoint)
}

// cliHome is one test's HOME: hakube's SSH key and the kubeconfig stay the
// same across its runs, as a user's do.
func cliHome(t *testing.T) string { return "HOME=" + t.TempDir() }

type cliResult struct {
	code           int
	stdout, stderr string
}

// cliRun runs hakube with exactly the given environment (plus PATH, and a
// HOME of its own unless env gives one).
func cliRun(t *testing.T, hakube string, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hakube, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "HOME=") }) {
		cmd.Env = append(cmd.Env, "HOME="+t.TempDir())
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return cliResult{code, out.String(), errb.String()}
}

func cliMutations(t *testing.T, ctl *emulator.Control, mark int) map[string]int64 {
	t.Helper()
	rc, err := ctl.RequestsSince(context.Background(), mark)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for m, n := range rc.Counts {
		switch m[strings.LastIndexByte(m, '.')+1:] {
		case "get", "list", "aggregatedList", "wait", "getHealth", "listManagedInstances", "getFromFamily":
		default:
			out[m] = n
		}
	}
	return out
}

// TestCLIKubeUpVariables drives hakube with kube-up's environment variables,
// as a CI script would: bad input fails with exit 2 before any change, a
// fresh up, an idempotent re-run, status as JSON, and a teardown that leaves
// the project as it was.
func TestCLIKubeUpVariables(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries; skipped with -short")
	}
	hakube := binary(t, "hakube")
	endpoint, ctl := cliEmulator(t)
	ctx := context.Background()
	base := []string{"PROJECT=cli-project", "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE=" + endpoint, "HAKUBE_APISERVER_PORT=16444",
		"HAKUBE_SSH_PORT=" + cliSSHPort, cliHome(t)}
	before, err := ctl.Inventory(ctx, "cli-project")
	if err != nil {
		t.Fatal(err)
	}
	badFile := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(badFile, []byte("numNodez: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		env  []string
		args []string
		say  string
	}{
		{"malformed number", []string{"NUM_NODES=abc"}, []string{"up"}, "NUM_NODES"},
		{"malformed boolean", []string{"MULTIZONE=maybe"}, []string{"up"}, "MULTIZONE"},
		{"other provider", []string{"KUBERNETES_PROVIDER=aws"}, []string{"up"}, "KUBERNETES_PROVIDER"},
		{"conflicting switches", []string{"KUBE_USE_EXISTING_MASTER=true", "KUBE_REPLICATE_EXISTING_MASTER=true"}, []string{"up"}, "KUBE_REPLICATE_EXISTING_MASTER"},
		{"zone syntax", []string{"KUBE_GCE_ZONE=europe-west1"}, []string{"up"}, "KUBE_GCE_ZONE"},
		{"unknown zone", []string{"KUBE_GCE_ZONE=europe-west1-a"}, []string{"up"}, "europe-west1-a"},
		{"unknown config key", []string{"HAKUBE_CONFIG=" + badFile}, []string{"up"}, "numNodez"},
		{"bad flag value", nil, []string{"up", "--num-nodes", "x"}, "--num-nodes"},
		{"pool without a cluster", []string{"KUBE_USE_EXISTING_MASTER=true", "KUBE_GCE_ZONE=europe-west1-c"}, []string{"up"}, "no cluster"},
	}
	for _, tt := range bad {
		t.Run("rejects/"+tt.name, func(t *testing.T) {
			m, _ := ctl.Mark(ctx)
			r := cliRun(t, hakube, append(append([]string{}, base...), tt.env...), tt.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tt.say) {
				t.Errorf("exit %d, stderr %q; want exit 2 naming %q", r.code, r.stderr, tt.say)
			}
			if strings.Count(r.stderr, "Error:") != 1 {
				t.Errorf("the error should be shown exactly once:\n%s", r.stderr)
			}
			if muts := cliMutations(t, ctl, m); len(muts) > 0 {
				t.Errorf("rejected input made changes: %v", muts)
			}
		})
	}

	up := append(append([]string{}, base...), "MULTIZONE=true", "ENABLE_ETCD_QUORUM_READ=true", "NUM_NODES=2", "KUBE_GCE_ZONE=europe-west1-b")
	r := cliRun(t, hakube, up, "up")
	if r.code != 0 {
		t.Fatalf("fresh up: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "Done: create cluster") || !strings.Contains(r.stderr, "✓ create instance kubernetes-master") {
		t.Errorf("fresh up output:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
	}
	m, _ := ctl.Mark(ctx)
	r = cliRun(t, hakube, up, "up")
	if r.code != 0 || !strings.Contains(r.stdout, "Nothing to do") {
		t.Errorf("re-run: exit %d, stdout %q", r.code, r.stdout)
	}
	if muts := cliMutations(t, ctl, m); len(muts) > 0 {
		t.Errorf("re-run made changes: %v", muts)
	}
	// The misspelt variable from kube-up's HA doc works, with a warning.
	r = cliRun(t, hakube, append(append([]string{}, base...), "ENABLE_ETCD_QUORUM_READS=true", "KUBE_GCE_ZONE=europe-west1-b"), "config", "view", "--show-origin")
	if r.code != 0 || !strings.Contains(r.stderr, "ENABLE_ETCD_QUORUM_READ") || !strings.Contains(r.stdout, "env ENABLE_ETCD_QUORUM_READS") {
		t.Errorf("misspelt variable: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}

	r = cliRun(t, hakube, base, "status", "-o", "json")
	if r.code != 0 {
		t.Fatalf("status: exit %d: %s", r.code, r.stderr)
	}
	var st struct {
		Mode     string `json:"mode"`
		StaticIP struct {
			Owner   string `json:"owner"`
			Serving bool   `json:"serving"`
		} `json:"staticIP"`
		Zones []struct {
			Zone    string `json:"zone"`
			Masters []struct {
				Name  string `json:"name"`
				Ready bool   `json:"ready"`
			} `json:"masters"`
			Pool struct {
				TargetSize int `json:"targetSize"`
				Running    int `json:"running"`
			} `json:"pool"`
		} `json:"zones"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, r.stdout)
	}
	if st.Mode != "single-master" || st.StaticIP.Owner != "instance kubernetes-master" || !st.StaticIP.Serving ||
		len(st.Zones) != 1 || len(st.Zones[0].Masters) != 1 || !st.Zones[0].Masters[0].Ready || st.Zones[0].Pool.Running != 2 {
		t.Errorf("status: %+v", st)
	}
	if r := cliRun(t, hakube, base, "validate"); r.code != 0 {
		t.Errorf("validate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = cliRun(t, hakube, base, "down", "--yes")
	if r.code != 0 {
		t.Fatalf("down: exit %d\n%s", r.code, r.stderr)
	}
	after, err := ctl.Inventory(ctx, "cli-project")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before.Names(), after.Names()); diff != "" {
		t.Errorf("after down the project differs from before up (-before +after):\n%s", diff)
	}
	if r := cliRun(t, hakube, base, "validate"); r.code != 1 || !strings.Contains(r.stderr, "there is no cluster") {
		t.Errorf("validate of a missing cluster: exit %d\n%s", r.code, r.stderr)
	}
}

// TestCLIConcurrentRunsRefused starts two mutating runs at once: exactly one
// proceeds, the other is refused naming the holder.
func TestCLIConcurrentRunsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries; skipped with -short")
	}
	hakube := binary(t, "hakube")
	endpoint, _ := cliEmulator(t)
	env := []string{"PROJECT=cli-project", "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE=" + endpoint, "HAKUBE_APISERVER_PORT=16445",
		"KUBE_GCE_ZONE=europe-west1-d", "NUM_NODES=1", "HAKUBE_SSH_PORT=" + cliSSHPort, cliHome(t)}
	var wg sync.WaitGroup
	results := make([]cliResult, 2)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = cliRun(t, hakube, env, "up")
		}(i)
	}
	wg.Wait()
	ok, refused := 0, 0
	for _, r := range results {
		switch {
		case r.code == 0:
			ok++
		case strings.Contains(r.stderr, "cluster is locked by"):
			refused++
		default:
			t.Errorf("unexpected outcome: exit %d\n%s", r.code, r.stderr)
		}
	}
	if ok != 1 || refused != 1 {
		t.Errorf("%d runs succeeded and %d were refused; want 1 and 1", ok, refused)
	}
	if r := cliRun(t, hakube, env, "up"); r.code != 0 || !strings.Contains(r.stdout, "Nothing to do") {
		t.Errorf("after the race, a re-run: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}
