package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/emulator/emulatortest"
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
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out bytes.Buffer
	ext, internal := emulatortest.ClaimRanges(t)
	err := run(ctx, options{
		hakube: filepath.Join(bin, "hakube"), emulator: filepath.Join(bin, "gce-emulator"),
		project: "hakube-demo", timeScale: 0.02, apiPort: 16443,
		externalRange: ext.String(), internalRange: internal.String(),
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
