package test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/hakube/hakube/internal/emulator/emulatortest"
)

// TestGcloudSerialPort reads a VM's serial console with gcloud, from the
// start and from the position it says to start from next. The VM runs the
// static guest (no Kubernetes binary needed), whose boot lines are enough.
func TestGcloudSerialPort(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs gcloud")
	}
	bin, err := exec.LookPath("gcloud")
	if err != nil {
		t.Fatal("gcloud is not on PATH: this test drives the real gcloud CLI against the emulator; install the Google Cloud CLI")
	}
	ext, internal := emulatortest.ClaimRanges(t)
	endpoint := startEmulator(t, "--project", gcloudProject, "--latency", "fast", "--kubernetes=false",
		"--external-range", ext.String(), "--internal-range", internal.String())
	g := (&gcloudCLI{bin: bin, endpoint: endpoint}).session(t)
	zone := "--zone=" + gcloudZone
	g.run(t, "compute", "instances", "create", "console-vm", zone, "--machine-type=e2-small")
	var out string
	for i := 0; i < 50 && !strings.Contains(out, "serving nothing"); i++ {
		out, _, err = g.exec(t, "compute", "instances", "get-serial-port-output", "console-vm", zone, "--format=value(contents)")
		if err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(out, "hakube-guest: boot 1 of console-vm") {
		t.Fatalf("serial port output:\n%s", out)
	}
	// "hakube-guest: " is 14 bytes.
	resp := g.object(t, "compute", "instances", "get-serial-port-output", "console-vm", zone, "--start=14")
	if resp["start"] != "14" || !strings.HasPrefix(resp["contents"].(string), "boot 1 of console-vm") ||
		resp["next"] != fmt.Sprint(14+len(resp["contents"].(string))) {
		t.Errorf("from byte 14: %v", resp)
	}
}
