// Package harness is what the programs under test/ that drive the built
// binaries (the walkthrough, the side-by-side benchmark) share: the
// gce-emulator process, the environment hakube, gcloud and kubectl run
// with, and the indentation of what they print.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/option"

	"github.com/hakube/hakube/internal/emulator"
)

// Emulator is a running gce-emulator process.
type Emulator struct {
	Endpoint string // http://127.0.0.1:PORT/compute/v1/
	Control  *emulator.Control
	Compute  *compute.Service
	cmd      *exec.Cmd
}

// Start runs bin with args and reads its endpoint from stdout's first line.
func Start(ctx context.Context, bin string, args ...string) (*Emulator, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	e := &Emulator{cmd: cmd}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		e.Stop()
		return nil, fmt.Errorf("gce-emulator printed no endpoint: %v\n%s", err, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	e.Endpoint = strings.TrimSpace(line)
	e.Control = emulator.NewControl(e.Endpoint)
	e.Compute, err = compute.NewService(ctx, option.WithEndpoint(e.Endpoint), option.WithoutAuthentication())
	if err != nil {
		e.Stop()
		return nil, err
	}
	return e, nil
}

// Leftovers lists what the emulator still holds in project whose name
// starts with prefix (as "<collection path>/<name>", sorted): what a
// teardown left behind.
func (e *Emulator) Leftovers(ctx context.Context, project, prefix string) ([]string, error) {
	inv, err := e.Control.Inventory(ctx, project)
	if err != nil {
		return nil, err
	}
	var left []string
	for _, link := range inv.Names() { // projects/p/<collection path>/<name>
		if strings.HasPrefix(link[strings.LastIndexByte(link, '/')+1:], prefix) {
			left = append(left, strings.TrimPrefix(link, "projects/"+project+"/"))
		}
	}
	sort.Strings(left)
	return left, nil
}

// Pid is the emulator's process id.
func (e *Emulator) Pid() int { return e.cmd.Process.Pid }

// Stop interrupts the emulator (it ends its VMs' processes) and kills it
// if it has not exited within 5 s.
func (e *Emulator) Stop() {
	_ = e.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = e.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = e.cmd.Process.Kill()
	}
}
