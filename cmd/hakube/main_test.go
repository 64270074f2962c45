package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/cluster"
	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/emulator/emulatortest"
	"github.com/hakube/hakube/internal/emulator/emulatortest/kubevm"
	"github.com/hakube/hakube/internal/golden"
)

// clearEnv unsets every variable hakube reads, so the developer's own
// PROJECT, KUBE_GCE_ZONE or gcloud configuration cannot leak into a test.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range config.EnvironmentVariables() {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
	// hakube's SSH key and the kubeconfig live under the home directory.
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("KUBECONFIG", filepath.Join(home, "kubeconfig"))
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, streams{in: strings.NewReader(""), out: &out, err: &errb})
	return code, out.String(), errb.String()
}

func TestExitCodes(t *testing.T) {
	clearEnv(t)
	emu := emulatortest.Start(t, emulator.Options{Projects: []string{"cmd-project"}})
	base := []string{"--project", "cmd-project", "--endpoint", emu.Endpoint}
	tests := []struct {
		name string
		args []string
		code int
		say  string
	}{
		{"help", []string{"--help"}, 0, ""},
		{"unknown flag", []string{"up", "--bogus"}, 2, "unknown flag: --bogus"},
		{"positional argument", []string{"up", "foo"}, 2, `hakube up takes no arguments, got "foo"`},
		{"unknown command", []string{"upp"}, 2, `unknown command "upp" for "hakube"; did you mean up?`},
		{"another command's flag on status", []string{"status", "--replicate-master"}, 2, "hakube status does not take --replicate-master: it is a setting of hakube up"},
		{"another command's flag on down", []string{"down", "--replicate-master"}, 2, "hakube down does not take --replicate-master"},
		{"down's flag on up", []string{"up", "--replica", "kubernetes-master-abc"}, 2, "hakube up does not take --replica: it is a setting of hakube down"},
		{"bad output", []string{"status", "-o", "xml"}, 2, "-o/--output"},
		{"bad log format", []string{"status", "--log-format", "xml"}, 2, "--log-format"},
		{"conflicting switches", append([]string{"up", "--use-existing-master", "--replicate-master"}, base...), 2, "choose one"},
		{"no project", []string{"status"}, 2, "PROJECT"},
		{"unknown project", []string{"status", "--project", "nobody-here", "--endpoint", emu.Endpoint}, 1, "403"},
		{"validate a missing cluster", append([]string{"validate"}, base...), 1, "there is no cluster"},
		{"dry run", append([]string{"up", "--dry-run", "--zone", "europe-west1-b"}, base...), 0, ""},
		{"refused down of a replica without a zone", append([]string{"down", "--delete-nodes=false"}, base...), 2, "--zone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.say) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr, tt.code, tt.say)
			}
		})
	}
}

// A run refused by another run's lock exits 2, and its error is shown once.
func TestLockRefusalExitsTwoAndSaysItOnce(t *testing.T) {
	clearEnv(t)
	emu := emulatortest.Start(t, emulator.Options{Projects: []string{"cmd-project"}})
	svc := emu.Compute(t)
	op, err := svc.Addresses.Insert("cmd-project", "europe-west1", &compute.Address{Name: "kubernetes-master-ip"}).Do()
	if err != nil {
		t.Fatal(err)
	}
	emulatortest.WaitOp(t, svc, "cmd-project", op)
	a, err := svc.Addresses.Get("cmd-project", "europe-west1", "kubernetes-master-ip").Do()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"hakube-cluster": "kubernetes", "hakube-role": "static-ip", "hakube-mode": "standard",
		"hakube-lock-holder": "ci-elsewhere", "hakube-lock-pid": "7", "hakube-lock-op": "up", "hakube-lock-since": "1700000000"}
	op, err = svc.Addresses.SetLabels("cmd-project", "europe-west1", a.Name, &compute.RegionSetLabelsRequest{Labels: labels, LabelFingerprint: a.LabelFingerprint}).Do()
	if err != nil {
		t.Fatal(err)
	}
	emulatortest.WaitOp(t, svc, "cmd-project", op)

	code, _, stderr := runCLI(t, "up", "--zone", "europe-west1-b", "--project", "cmd-project", "--endpoint", emu.Endpoint)
	if code != 2 {
		t.Errorf("exit %d, want 2 (refused)\n%s", code, stderr)
	}
	if n := strings.Count(stderr, "cluster is locked by ci-elsewhere"); n != 1 {
		t.Errorf("the lock error appears %d times, want once:\n%s", n, stderr)
	}
}

func TestDryRunPrintsThePlanAndChangesNothing(t *testing.T) {
	clearEnv(t)
	emu := emulatortest.Start(t, emulator.Options{Projects: []string{"cmd-project"}})
	ctx := context.Background()
	m, _ := emu.Control.Mark(ctx)
	code, stdout, stderr := runCLI(t, "up", "--dry-run", "--zone", "europe-west1-b", "--project", "cmd-project",
		"--endpoint", emu.Endpoint, "--apiserver-port", "6443")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// The kubeconfig's path is the test's temporary one.
	golden.Check(t, "dry-run-fresh-up.txt", []byte(regexp.MustCompile(`merged into \S+ \(0600\)`).ReplaceAllString(stdout, "merged into $$HOME/.kube/config (0600)")))
	rc, _ := emu.Control.RequestsSince(ctx, m)
	for method := range rc.Counts {
		if !strings.HasSuffix(method, ".get") && !strings.HasSuffix(method, ".list") && !strings.HasSuffix(method, ".aggregatedList") && !strings.HasSuffix(method, ".getFromFamily") {
			t.Errorf("dry run called %s", method)
		}
	}
	// -o json carries the plan for machines.
	code, stdout, _ = runCLI(t, "up", "--dry-run", "-o", "json", "--zone", "europe-west1-b", "--project", "cmd-project", "--endpoint", emu.Endpoint)
	var rep struct {
		DryRun bool `json:"dryRun"`
		Plan   struct {
			Steps []struct {
				Action   string `json:"action"`
				Resource string `json:"resource"`
			} `json:"steps"`
		} `json:"plan"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &rep) != nil || !rep.DryRun || len(rep.Plan.Steps) != 17 {
		t.Errorf("dry run -o json: exit %d, %+v\n%s", code, rep, stdout)
	}
}

func TestConfigViewShowOrigin(t *testing.T) {
	clearEnv(t)
	t.Setenv("KUBE_GCE_ZONE", "europe-west1-c")
	t.Setenv("NUM_NODES", "5")
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("prefix: demo\nnumNodes: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "config", "view", "--show-origin", "--config", file, "--project", "p-123456", "--num-nodes", "7")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"project", "flag --project",
		"zone", "env KUBE_GCE_ZONE",
		"numNodes", "7", "flag --num-nodes",
		"prefix", "demo", "c.yaml:prefix",
		"network", "default",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("config view lacks %q:\n%s", want, stdout)
		}
	}
	// Without --show-origin it prints a config file that loads back the same.
	code, view, _ := runCLI(t, "config", "view", "--config", file, "--project", "p-123456")
	if code != 0 || !strings.Contains(view, "prefix: demo") || !strings.Contains(view, "numNodes: 5") {
		t.Errorf("config view: exit %d\n%s", code, view)
	}
}

func TestUpReportAsYAMLAndStatus(t *testing.T) {
	clearEnv(t)
	// The real control plane on the master, SSH and a kubelet on every VM.
	emu := kubevm.Start(t, emulator.Options{Projects: []string{"cmd-project"}, Latency: emulator.LatencyFast, SSHPort: 2222})
	base := []string{"--project", "cmd-project", "--endpoint", emu.Endpoint, "--apiserver-port", "16446", "--ssh-port", "2222"}
	code, stdout, stderr := runCLI(t, append([]string{"up", "--zone", "us-east1-c", "--num-nodes", "1", "-o", "yaml"}, base...)...)
	if code != 0 {
		t.Fatalf("up: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"flow: create cluster", "apiCalls:", "status: done"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("up -o yaml lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "✓ create address kubernetes-master-ip") {
		t.Errorf("no progress line per step on stderr:\n%s", stderr)
	}
	code, stdout, stderr = runCLI(t, append([]string{"status"}, base...)...)
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"single-master", "held by instance kubernetes-master, serving", "us-east1-c  master", "node-pool", "1/1"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, stdout)
		}
	}
	code, _, stderr = runCLI(t, append([]string{"down", "--yes", "--log-format", "json"}, base...)...)
	if code != 0 {
		t.Fatalf("down: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, `"msg":"step done"`) {
		t.Errorf("--log-format json: no structured step events:\n%s", stderr)
	}
	if strings.Contains(stderr, "BEGIN") || strings.Contains(stderr, "PRIVATE KEY") {
		t.Error("output contains key material")
	}
}

func TestMissingCredentialsSaysWhatToRun(t *testing.T) {
	clearEnv(t)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "missing.json"))
	code, _, stderr := runCLI(t, "status", "--project", "p-123456")
	if code != 1 || !strings.Contains(stderr, "gcloud auth application-default login") || !strings.Contains(stderr, "--endpoint") {
		t.Errorf("exit %d, stderr %q; want exit 1 telling the user to log in or use an emulator", code, stderr)
	}
}

// Output options apply to every command: version and config view speak
// JSON, origins use the documented field names, and a password in the
// endpoint URL is never printed.
func TestOutputFormatsAndRedaction(t *testing.T) {
	clearEnv(t)
	code, stdout, _ := runCLI(t, "version", "-o", "json")
	var v map[string]string
	if code != 0 || json.Unmarshal([]byte(stdout), &v) != nil || v["version"] == "" {
		t.Errorf("version -o json: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = runCLI(t, "config", "view", "-o", "json", "--project", "p-1", "--num-nodes", "4")
	var view map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &view) != nil || view["numNodes"] != float64(4) || view["project"] != "p-1" {
		t.Errorf("config view -o json: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = runCLI(t, "config", "view", "--show-origin", "-o", "json", "--project", "p-1")
	var settings []struct {
		Key    string `json:"key"`
		Value  string `json:"value"`
		Origin struct {
			Source string `json:"source"`
			Name   string `json:"name"`
		} `json:"origin"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &settings) != nil || len(settings) < 20 || settings[1].Key != "project" || settings[1].Origin.Source != "flag" || settings[1].Origin.Name != "--project" {
		t.Errorf("config view --show-origin -o json: exit %d\n%s", code, stdout)
	}
	for _, args := range [][]string{{"config", "view"}, {"config", "view", "--show-origin"}, {"config", "view", "-o", "json"}} {
		args = append(args, "--project", "p-1", "--endpoint", "http://admin:s3cret@127.0.0.1:9/compute/v1/")
		code, stdout, stderr := runCLI(t, args...)
		if code != 0 || strings.Contains(stdout+stderr, "s3cret") || !strings.Contains(stdout, "admin:xxxxx@127.0.0.1:9") {
			t.Errorf("%v: exit %d, the password shows or the endpoint is missing:\n%s%s", args, code, stdout, stderr)
		}
	}
}

// validate on a missing cluster says there is none and exits 1 (it could
// not tell the cluster's health), rather than calling it degraded.
func TestValidateMissingCluster(t *testing.T) {
	clearEnv(t)
	emu := emulatortest.Start(t, emulator.Options{Projects: []string{"cmd-project"}})
	code, _, stderr := runCLI(t, "validate", "--project", "cmd-project", "--endpoint", emu.Endpoint)
	if code != 1 || !strings.Contains(stderr, `there is no cluster "kubernetes" in project cmd-project`) || strings.Contains(stderr, "Degraded") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// With --log-format json, stderr carries only JSON events: the plan is one.
func TestLogFormatJSONKeepsStderrJSON(t *testing.T) {
	clearEnv(t)
	emu := emulatortest.Start(t, emulator.Options{Projects: []string{"cmd-project"}})
	code, _, stderr := runCLI(t, "down", "--log-format", "json", "--project", "cmd-project", "--endpoint", emu.Endpoint)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	plans := 0
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Errorf("stderr line is not JSON: %q", line)
			continue
		}
		if ev["msg"] == "plan" {
			plans++
		}
	}
	if plans != 1 {
		t.Errorf("%d plan events, want 1:\n%s", plans, stderr)
	}
}

func TestCompletion(t *testing.T) {
	clearEnv(t)
	code, stdout, _ := runCLI(t, "__complete", "up", "--zone", "europe-west1")
	if code != 0 || !strings.Contains(stdout, "europe-west1-b\neurope-west1-c\neurope-west1-d\n") || strings.Contains(stdout, "europe-west2") {
		t.Errorf("zone completion offline: exit %d\n%s", code, stdout)
	}
	emu := emulatortest.Start(t, emulator.Options{Projects: []string{"cmd-project"}})
	code, stdout, _ = runCLI(t, "__complete", "status", "--project", "cmd-project", "--endpoint", emu.Endpoint, "--zone", "us-central1")
	if code != 0 || !strings.Contains(stdout, "us-central1-a\nus-central1-b\nus-central1-c\nus-central1-f\n") {
		t.Errorf("zone completion from the API: exit %d\n%s", code, stdout)
	}
	for flag, want := range map[string]string{"-o": "text\njson\nyaml\n", "--log-format": "text\njson\n"} {
		code, stdout, _ := runCLI(t, "__complete", "status", flag, "")
		if code != 0 || !strings.HasPrefix(stdout, want) {
			t.Errorf("%s completion: exit %d\n%s", flag, code, stdout)
		}
	}
}

func TestConfirmBeforeAnOutage(t *testing.T) {
	grow := &cluster.Plan{Steps: []*cluster.Step{{Action: "create", Mutating: true}}}
	move := &cluster.Plan{Steps: []*cluster.Step{{Action: "create", Mutating: true}, {Action: "move", Mutating: true, Outage: true}}}
	if needsConfirm("up", grow) || !needsConfirm("up", move) || !needsConfirm("down", grow) {
		t.Error("up asks only before an outage, down always")
	}
	var out bytes.Buffer
	ok, err := confirm(strings.NewReader("y\n"), &out, move)
	if err != nil || !ok || !strings.Contains(out.String(), "moves the static IP") {
		t.Errorf("confirm: %v %v %q", ok, err, out.String())
	}
	if ok, _ := confirm(strings.NewReader("\n"), &out, move); ok {
		t.Error("an empty answer proceeds")
	}
}

// Each command's --help lists only its own flags, grouped.
func TestHelpShowsOnlyTheCommandsFlags(t *testing.T) {
	clearEnv(t)
	cases := []struct {
		cmd       string
		has, lack []string
	}{
		{"status", []string{"--zone", "--prefix", "--apiserver-port", "Cluster flags:", "Load balancer flags:", "Output flags (every command):"},
			[]string{"--replicate-master", "--num-nodes", "--max-downtime", "--dry-run", "--replica "}},
		{"up", []string{"--replicate-master", "--num-nodes", "--max-downtime", "Cluster flags:", "Sizes and images flags:", "Load balancer flags:", "Run flags:"},
			[]string{"--replica ", "--delete-nodes", "--delete-network"}},
		{"down", []string{"--replica ", "--delete-nodes", "--delete-network", "Run flags:"},
			[]string{"--replicate-master", "--num-nodes", "--lb-first", "Sizes and images flags:"}},
	}
	for _, tc := range cases {
		code, out, _ := runCLI(t, tc.cmd, "--help")
		if code != 0 {
			t.Fatalf("%s --help: exit %d", tc.cmd, code)
		}
		for _, s := range tc.has {
			if !strings.Contains(out, s) {
				t.Errorf("hakube %s --help lacks %q", tc.cmd, s)
			}
		}
		for _, s := range tc.lack {
			if strings.Contains(out, s) {
				t.Errorf("hakube %s --help lists %q, which it does not take", tc.cmd, s)
			}
		}
	}
}
