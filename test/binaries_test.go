package test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests here run the binaries a user runs. Each is built once per test
// process, on first use, into a directory removed when the tests end.

var (
	binMu    sync.Mutex
	binDir   string
	binBuilt = map[string]error{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds cmd/<name> once and returns its path.
func binary(t *testing.T, name string) string {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if binDir == "" {
		dir, err := os.MkdirTemp("", "hakube-test-bin")
		if err != nil {
			t.Fatal(err)
		}
		binDir = dir
	}
	path := filepath.Join(binDir, name)
	err, done := binBuilt[name]
	if !done {
		if out, berr := exec.Command("go", "build", "-o", path, "../cmd/"+name).CombinedOutput(); berr != nil {
			err = fmt.Errorf("build %s: %v\n%s", name, berr, out)
		}
		binBuilt[name] = err
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// startEmulator runs gce-emulator with args until the test ends and returns
// the Compute endpoint it prints on its first line. Its stderr is shown when
// the test fails.
func startEmulator(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binary(t, "gce-emulator"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("gce-emulator stderr:\n%s", stderr.String())
		}
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case endpoint := <-line:
		if !strings.HasPrefix(endpoint, "http://127.0.0.1:") || !strings.HasSuffix(endpoint, "/compute/v1/") {
			t.Fatalf("gce-emulator's first line %q is not its Compute endpoint", endpoint)
		}
		return endpoint
	case <-time.After(30 * time.Second):
		t.Fatal("gce-emulator printed no endpoint within 30s")
	}
	return ""
}
