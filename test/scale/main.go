// Command scale runs hakube's fresh up, status, a pool resize and down on
// clusters of 500, 2,000 and 5,000 nodes (kube-up's largest), each against
// a fresh gce-emulator at --latency fast with the real control plane on the
// master and a kubelet stand-in on every node VM. It prints, per step,
// the wall time, the Compute requests (all / mutations / operation polls),
// and the peak RSS of hakube and of the emulator; requests must grow with
// zones and pages, never with nodes.
//
//	make bench   # or: bin/scale -nodes 500,2000,5000
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

type options struct {
	hakube, emulator, kubeBinary string
	nodes                        []int
	statusRuns                   int
	sshPort                      int
	verbose                      bool
}

func main() {
	var o options
	var nodes string
	flag.StringVar(&o.hakube, "hakube", "bin/hakube", "hakube binary")
	flag.StringVar(&o.emulator, "emulator", "bin/gce-emulator", "gce-emulator binary")
	flag.StringVar(&o.kubeBinary, "kube-binary", "bin/kube-rehearsal", "what the emulated master runs (make rehearsal)")
	flag.StringVar(&nodes, "nodes", "500,2000,5000", "the clusters' NUM_NODES, comma-separated (at most 5,000)")
	flag.IntVar(&o.statusRuns, "status-runs", 3, "how many times status is run on each cluster (the table shows the slowest)")
	flag.IntVar(&o.sshPort, "ssh-port", 2222, "SSH port of the emulated VMs")
	flag.BoolVar(&o.verbose, "v", false, "show each command's output and its requests per method")
	flag.Parse()
	var err error
	if o.nodes, err = parseNodes(nodes); err != nil {
		fmt.Fprintln(os.Stderr, "scale: -nodes:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func parseNodes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 || n > 5000 {
			return nil, fmt.Errorf("want sizes from 2 to 5000, got %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(ctx context.Context, o options, out io.Writer) error {
	var rows []row
	for _, n := range o.nodes {
		r, err := runSize(ctx, o, n, out)
		if err != nil {
			return fmt.Errorf("%d nodes: %w", n, err)
		}
		rows = append(rows, r...)
	}
	fmt.Fprintln(out)
	printTable(out, rows)
	return checkRequests(rows)
}
