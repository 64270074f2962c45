package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hakube/hakube/test/internal/harness"
)

const (
	project = "hakube-scale"
	zone    = "europe-west1-b"
)

// row is one step on one cluster.
type row struct {
	nodes                    int // the cluster's NUM_NODES before the step
	step                     string
	wall                     time.Duration
	requests, mutations, ops int64
	hakubeRSS, emulatorRSS   int64 // peak bytes during the step
	cpu                      time.Duration
}

// scaleEnv is what a cluster of n nodes needs beyond kube-up's defaults,
// as an operator of one would set it: a pods' range with a /24 for every
// VM (kube-up's 10.64.0.0/14 holds 1,024), and a controller-manager that
// approves and allocates for thousands of Nodes at once and waits longer
// than the kubelets' renewal interval, which the emulator's kubelets stretch
// beyond 1,000 nodes (docs/vm-contract.md).
func scaleEnv(n int) []string {
	env := []string{"CLUSTER_IP_RANGE=10.64.0.0/14"}
	if n > 1000 {
		env = []string{"CLUSTER_IP_RANGE=10.64.0.0/11",
			"CONTROLLER_MANAGER_TEST_ARGS=--kube-api-qps=200 --kube-api-burst=400 --node-monitor-grace-period=120s"}
	}
	return env
}

// runSize makes a cluster of n nodes on a fresh emulator, reads its status,
// shrinks its pool to four fifths and tears it down.
func runSize(ctx context.Context, o options, n int, out io.Writer) ([]row, error) {
	home, err := os.MkdirTemp("", "hakube-scale-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(home)
	emu, err := harness.Start(ctx, o.emulator, "--project", project, "--latency", "fast", "--seed", "1",
		"--dataplane", "--kubernetes", "--kube-binary", o.kubeBinary,
		"--state-dir", filepath.Join(home, "emulator"), "--ssh-port", strconv.Itoa(o.sshPort))
	if err != nil {
		return nil, err
	}
	defer emu.Stop()
	c := &cluster{o: o, emu: emu, home: home, out: out,
		nodes: n, env: slices.Concat(harness.CleanEnv(), []string{"HOME=" + home, "KUBECONFIG=" + filepath.Join(home, "kubeconfig"),
			"PROJECT=" + project, "KUBE_GCE_ZONE=" + zone, "HAKUBE_SSH_PORT=" + strconv.Itoa(o.sshPort)},
			harness.GcloudEnv(emu.Endpoint, project, filepath.Join(home, "gcloud")), scaleEnv(n))}
	fmt.Fprintf(out, "%d nodes (gce-emulator at %s, latency fast)\n", n, emu.Endpoint)

	var rows []row
	add := func(r row, err error) error {
		if err != nil {
			return err
		}
		r.nodes = n
		rows = append(rows, r)
		fmt.Fprintf(out, "   %s: %s, %d requests\n", r.step, r.wall.Round(10*time.Millisecond), r.requests)
		return nil
	}
	if err := add(c.run(ctx, "fresh up", "up")); err != nil {
		return nil, err
	}
	if err := add(c.status(ctx, n)); err != nil {
		return nil, err
	}
	c.nodes = n * 4 / 5
	if err := add(c.run(ctx, fmt.Sprintf("resize to %d", c.nodes), "up", "--use-existing-master")); err != nil {
		return nil, err
	}
	if err := add(c.run(ctx, "down", "down", "--yes")); err != nil {
		return nil, err
	}
	return rows, c.leftovers(ctx)
}

type cluster struct {
	o     options
	emu   *harness.Emulator
	home  string
	env   []string
	nodes int // NUM_NODES
	out   io.Writer
}

// run is step without its stdout.
func (c *cluster) run(ctx context.Context, name string, args ...string) (row, error) {
	r, _, err := c.step(ctx, name, args...)
	return r, err
}

// step runs hakube with args and NUM_NODES, measures it, and returns its
// stdout.
func (c *cluster) step(ctx context.Context, name string, args ...string) (row, []byte, error) {
	r := row{step: name}
	mark, err := c.emu.Control.Mark(ctx)
	if err != nil {
		return r, nil, err
	}
	if err := resetPeakRSS(c.emu.Pid()); err != nil {
		return r, nil, err
	}
	cmd := exec.CommandContext(ctx, c.o.hakube, args...)
	cmd.Env = append(slices.Clip(c.env), "NUM_NODES="+strconv.Itoa(c.nodes))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	r.wall = time.Since(start)
	if c.o.verbose || err != nil {
		fmt.Fprint(c.out, harness.Indent(stderr.String(), "   | "))
	}
	if err != nil {
		return r, nil, fmt.Errorf("hakube %s: %w", strings.Join(args, " "), err)
	}
	if r.emulatorRSS, err = peakRSS(c.emu.Pid()); err != nil {
		return r, nil, err
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.hakubeRSS = ru.Maxrss << 10 // KiB on Linux
	}
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	rc, err := c.emu.Control.RequestsSince(ctx, mark)
	if err != nil {
		return r, nil, err
	}
	r.requests, r.mutations, r.ops = harness.Classify(rc.Counts)
	if c.o.verbose {
		fmt.Fprintf(c.out, "   | requests: %s\n", harness.PerMethod(rc.Counts))
	}
	return r, stdout.Bytes(), nil
}

// status runs `hakube status -o json` o.statusRuns times and keeps the
// slowest; every run must show each VM's Node, Ready.
func (c *cluster) status(ctx context.Context, n int) (row, error) {
	var slowest row
	args := []string{"status", "-o", "json"}
	if c.o.verbose { // each call's and each read's duration
		args = append(args, "-vv")
	}
	for i := 0; i < max(c.o.statusRuns, 1); i++ {
		r, stdout, err := c.step(ctx, "status", args...)
		if err != nil {
			return r, err
		}
		var st struct {
			Nodes []struct {
				Name  string `json:"name"`
				Ready bool   `json:"ready"`
			} `json:"nodes"`
		}
		if err := json.Unmarshal(stdout, &st); err != nil {
			return r, fmt.Errorf("hakube status -o json: %w", err)
		}
		ready := 0
		for _, nd := range st.Nodes {
			if nd.Ready {
				ready++
			}
		}
		if want := n + 1; len(st.Nodes) != want || ready != want {
			return r, fmt.Errorf("hakube status shows %d Nodes, %d Ready; want %d (the master and %d nodes), all Ready", len(st.Nodes), ready, want, n)
		}
		if r.wall > slowest.wall {
			slowest = r
		}
	}
	slowest.step = fmt.Sprintf("status (slowest of %d)", max(c.o.statusRuns, 1))
	return slowest, nil
}

// leftovers fails when down left anything of the cluster behind.
func (c *cluster) leftovers(ctx context.Context) error {
	left, err := c.emu.Leftovers(ctx, project, "kubernetes")
	if err != nil {
		return err
	}
	if len(left) > 0 {
		return fmt.Errorf("down left %s behind", strings.Join(left, ", "))
	}
	return nil
}
