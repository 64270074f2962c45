package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/emulator/emulatortest"
	"github.com/hakube/hakube/internal/emulator/emulatortest/kubevm"
)

// TestWalkthrough runs kube-up's HA guide end to end with the built
// binaries, exactly as `make demo` does, and fails on any inventory or
// reachability check.
func TestWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("the walkthrough builds and runs the binaries; skipped with -short")
	}
	bin := t.TempDir()
	for _, pkg := range []string{"hakube", "gce-emulator"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, pkg), "../../cmd/"+pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var out bytes.Buffer
	ext, internal := emulatortest.ClaimRanges(t)
	err := run(ctx, options{
		hakube: filepath.Join(bin, "hakube"), emulator: filepath.Join(bin, "gce-emulator"),
		project: "hakube-demo", timeScale: 0.02, apiPort: 16443,
		externalRange: ext.String(), internalRange: internal.String(),
		kubeBinary: kubevm.KubeBinary(t), kubectl: tool(t, "kubectl"), gcloud: tool(t, "gcloud"), sshPort: 2222,
	}, &out)
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Summary", "nothing to do", "the project holds exactly what it held before the first up"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("walkthrough output lacks %q", want)
		}
	}
}

// tool is a program the walkthrough checks the cluster with; the test
// fails (never skips) without it: kubectl and gcloud are its referees.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: the walkthrough checks the cluster with the real %s", name, name)
	}
	return p
}

// TestStatusCheckWantsHealthyMasters runs the walkthrough's status check
// against a stand-in for hakube that prints a fixed status: with the load
// balancer, every master must be in the pool and HEALTHY (the check waits
// its bound for that, then fails naming what it saw).
func TestStatusCheckWantsHealthyMasters(t *testing.T) {
	tests := []struct {
		name  string
		zoneC string // the zone-c master's health and pool membership, as status prints them
		want  string // "" for success, else what the error says
	}{
		{"all healthy", `"health": "HEALTHY", "inPool": true`, ""},
		{"one unhealthy", `"health": "UNHEALTHY", "inPool": true`, "kubernetes-master-abc:UNHEALTHY"},
		{"one out of the pool", `"inPool": false`, "kubernetes-master-abc:not in the pool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := `{"mode": "load-balanced",
 "staticIP": {"owner": "forwarding-rule kubernetes-master", "serving": true},
 "loadBalancer": {"forwardingRule": "kubernetes-master"},
 "zones": [
  {"zone": "europe-west1-b", "masters": [{"name": "kubernetes-master", "health": "HEALTHY", "inPool": true}],
   "pool": {"targetSize": 3, "running": 3}},
  {"zone": "europe-west1-c", "masters": [{"name": "kubernetes-master-abc", ` + tt.zoneC + `}]}]}`
			fake := filepath.Join(t.TempDir(), "hakube")
			if err := os.WriteFile(fake, []byte("#!/bin/sh\ncat <<'EOF'\n"+status+"\nEOF\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			w := &walk{o: options{hakube: fake, healthWait: 300 * time.Millisecond}}
			c := cluster{exists: true, lb: true, masters: map[string]bool{zoneB: true, zoneC: true}, pools: map[string]bool{zoneB: true}}
			err := w.statusCheck(context.Background(), c)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("status check: %v, want success", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("status check: %v, want an error saying %q", err, tt.want)
			}
		})
	}
}
