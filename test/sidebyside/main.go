// Command sidebyside runs each flow of kube-up's HA guide twice, side by
// side: kube-up's own gcloud sequence (bench/kube-up-sequence.sh) against
// one gce-emulator, and hakube against another with the same latency
// settings, alternating flow by flow. It prints, per flow, both wall times
// and their ratio, both tools' Compute requests (all, mutations, operation
// polls), both outages of the static IP (probed every 100 ms), the flow's
// true critical path (the chain of GCE operations it cannot do without,
// from the emulator's latency table), and the CPU each tool spent.
//
//	make bench   # or: bin/sidebyside -latency realistic
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/hakube/hakube/test/internal/harness"
)

type options struct {
	hakube, emulator, kubeBinary, script, gcloud string
	latency                                      string
	timeScale                                    float64
	apiPort, sshPort                             int
	reps                                         int
	verbose                                      bool
}

func main() {
	var o options
	flag.StringVar(&o.hakube, "hakube", "bin/hakube", "hakube binary")
	flag.StringVar(&o.emulator, "emulator", "bin/gce-emulator", "gce-emulator binary")
	flag.StringVar(&o.kubeBinary, "kube-binary", "bin/kube-rehearsal", "what hakube's emulated masters run (make rehearsal)")
	flag.StringVar(&o.script, "script", "bench/kube-up-sequence.sh", "kube-up's gcloud sequence")
	flag.StringVar(&o.gcloud, "gcloud", "gcloud", "gcloud binary (its directory goes first on the script's PATH)")
	flag.StringVar(&o.latency, "latency", "realistic", "the emulators' latency preset: realistic or fast")
	flag.Float64Var(&o.timeScale, "time-scale", 1, "the emulators' time scale (1: GCE's own durations)")
	flag.IntVar(&o.apiPort, "apiserver-port", 6443, "API server port of both tools' masters")
	flag.IntVar(&o.sshPort, "ssh-port", 2222, "SSH port of hakube's emulated VMs")
	flag.IntVar(&o.reps, "reps", 1, "run the whole guide this many times (each ends in teardown)")
	flag.BoolVar(&o.verbose, "v", false, "show each command's output")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sidebyside:", err)
		os.Exit(1)
	}
}

const (
	project = "hakube-bench"
	zoneB   = "europe-west1-b"
	zoneC   = "europe-west1-c"
	zoneD   = "europe-west1-d"
)

// flow is one step of the HA guide: kube-up's variables, and the command
// each tool runs with them.
type flow struct {
	name    string
	env     []string
	down    bool
	outage  bool // the static IP moves
	measure bool // a row of the table (a setup step is not)
}

var flows = []flow{
	{name: "fresh up", env: []string{"MULTIZONE=true", "NUM_NODES=" + strconv.Itoa(nodesPerPool), "KUBE_GCE_ZONE=" + zoneB}, measure: true},
	{name: "node pool", env: []string{"KUBE_USE_EXISTING_MASTER=true", "NUM_NODES=" + strconv.Itoa(nodesPerPool), "KUBE_GCE_ZONE=" + zoneC}, measure: true},
	{name: "node pool d", env: []string{"KUBE_USE_EXISTING_MASTER=true", "NUM_NODES=" + strconv.Itoa(nodesPerPool), "KUBE_GCE_ZONE=" + zoneD}},
	{name: "first replica", env: []string{"KUBE_REPLICATE_EXISTING_MASTER=true", "KUBE_GCE_ZONE=" + zoneC}, outage: true, measure: true},
	{name: "second replica", env: []string{"KUBE_REPLICATE_EXISTING_MASTER=true", "KUBE_GCE_ZONE=" + zoneD}, measure: true},
	{name: "remove replica", env: []string{"KUBE_DELETE_NODES=false", "KUBE_GCE_ZONE=" + zoneD}, down: true, measure: true},
	{name: "remove second-to-last replica", env: []string{"KUBE_DELETE_NODES=false", "KUBE_GCE_ZONE=" + zoneC}, down: true, outage: true, measure: true},
	{name: "remove node pool", env: []string{"KUBE_USE_EXISTING_MASTER=true", "KUBE_GCE_ZONE=" + zoneD}, down: true, measure: true},
	{name: "remove node pool c", env: []string{"KUBE_USE_EXISTING_MASTER=true", "KUBE_GCE_ZONE=" + zoneC}, down: true},
	{name: "teardown", env: []string{"KUBE_GCE_ZONE=" + zoneB}, down: true, measure: true},
}

// side is one tool and the emulator it runs against.
type side struct {
	name string
	emu  *harness.Emulator
	home string
	// command is the tool's invocation for a flow.
	command func(f flow) (bin string, args []string)
	env     []string
}

func run(ctx context.Context, o options, out io.Writer) error {
	for _, c := range chains {
		if err := c.check(); err != nil {
			return err
		}
	}
	home, err := os.MkdirTemp("", "hakube-sidebyside-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(home)
	scale := strconv.FormatFloat(o.timeScale, 'g', -1, 64)
	base := []string{"--project", project, "--latency", o.latency, "--time-scale", scale, "--seed", "1", "--dataplane"}
	// Two emulators, each on loopback ranges of its own.
	kubeUp, err := harness.Start(ctx, o.emulator, append(base, "--kubernetes=false",
		"--external-range", "127.64.0.0/11", "--internal-range", "127.128.0.0/10")...)
	if err != nil {
		return err
	}
	defer kubeUp.Stop()
	hk, err := harness.Start(ctx, o.emulator, append(base, "--kubernetes", "--kube-binary", o.kubeBinary,
		"--state-dir", filepath.Join(home, "emulator"), "--ssh-port", strconv.Itoa(o.sshPort),
		"--external-range", "127.96.0.0/11", "--internal-range", "127.192.0.0/10")...)
	if err != nil {
		return err
	}
	defer hk.Stop()

	script, err := filepath.Abs(o.script)
	if err != nil {
		return err
	}
	gcloud, err := exec.LookPath(o.gcloud)
	if err != nil {
		return fmt.Errorf("-gcloud: %w", err)
	}
	// kube-up's script is made of gcloud calls; both tools get the same PATH.
	common := []string{"PATH=" + filepath.Dir(gcloud) + ":" + os.Getenv("PATH"), "PROJECT=" + project}
	sides := []*side{
		{name: "kube-up", emu: kubeUp, home: filepath.Join(home, "kube-up"),
			command: func(f flow) (string, []string) {
				if f.down {
					return script, []string{"down"}
				}
				return script, []string{"up"}
			},
			env: slices.Concat(common, []string{"APISERVER_PORT=" + strconv.Itoa(o.apiPort)})},
		{name: "hakube", emu: hk, home: filepath.Join(home, "hakube"),
			command: func(f flow) (string, []string) {
				if f.down {
					return o.hakube, []string{"down", "--yes"}
				}
				return o.hakube, []string{"up"}
			},
			env: slices.Concat(common, []string{"HAKUBE_APISERVER_PORT=" + strconv.Itoa(o.apiPort),
				"HAKUBE_SSH_PORT=" + strconv.Itoa(o.sshPort)}, harness.KubeTestArgs)},
	}
	for _, s := range sides {
		if err := os.MkdirAll(s.home, 0o700); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "kube-up's sequence at %s, hakube at %s (latency %s ×%s), alternating\n\n", kubeUp.Endpoint, hk.Endpoint, o.latency, scale)

	rows := make([]row, len(flows))
	for rep := 1; rep <= max(o.reps, 1); rep++ {
		if o.reps > 1 {
			fmt.Fprintf(out, "repetition %d of %d\n", rep, o.reps)
		}
		for fi, f := range flows {
			r := &rows[fi]
			r.flow = f
			for i, s := range sides {
				m, err := s.run(ctx, o, f, out)
				if err != nil {
					return fmt.Errorf("%s, %s: %w", f.name, s.name, err)
				}
				r.m[i] = append(r.m[i], m)
			}
			fmt.Fprintf(out, "   %s: kube-up %s, hakube %s\n", f.name, r.m[0][rep-1].wall.Round(100*time.Millisecond), r.m[1][rep-1].wall.Round(100*time.Millisecond))
		}
	}
	var measuredRows []row
	for _, r := range rows {
		if c, ok := chains[r.flow.name]; ok {
			r.floor, r.floorPath = c.floor(50000, rand.New(rand.NewPCG(1, 2)))
		}
		if r.flow.measure {
			measuredRows = append(measuredRows, r)
		}
	}
	for _, s := range sides {
		if err := s.leftovers(ctx); err != nil {
			return err
		}
	}
	fmt.Fprintln(out)
	printTables(out, o, measuredRows)
	return nil
}
